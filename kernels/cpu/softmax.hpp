// Softmax over each row of a contiguous [rows, n] float32 buffer, one implementation per
// instruction set (softmax_<isa>.cpp, each compiled with its own flags; fast.hpp picks
// one). The oracle is ref::softmax (kernels/reference/normalization.cpp).
//
// Like the reference, a row holding NaN, +inf, or only -inf comes out all NaN. The sum of
// exponentials is accumulated in double, so the only float errors are exp's (about 1 ulp)
// and the final scaling.
//
// attention_softmax_row is attention's row of scores in one call, in place: each score
// scaled (x / s or x * s, or left), plus the mask's element (a contiguous row, or none), in
// float as the unfused ops did, then softmax exactly as softmax_rows; with `zero_if_masked`
// a row whose every value is -inf becomes zeros (scaled_dot_product_attention's safe softmax).
#pragma once

#include <cstdint>

namespace kiln::kernels::cpu {

enum class ScoreScaling { none, divide, multiply };

// Whether all n values of x are -inf: attention_softmax_row's test for a fully masked row,
// which the vector kernels make only when a row's maximum is -inf. Defined once, in the
// baseline unit (softmax_scalar.cpp), so the ISA units share it without instantiating it.
bool all_negative_infinity(const float* x, std::int64_t n);

namespace scalar {
void softmax_rows(const float* x, float* y, std::int64_t rows, std::int64_t n);
void attention_softmax_row(float* x, std::int64_t n, ScoreScaling scaling, float s, const float* mask,
                           bool zero_if_masked);
}
namespace avx2 {
void softmax_rows(const float* x, float* y, std::int64_t rows, std::int64_t n);
void attention_softmax_row(float* x, std::int64_t n, ScoreScaling scaling, float s, const float* mask,
                           bool zero_if_masked);
}
namespace avx512 {
void softmax_rows(const float* x, float* y, std::int64_t rows, std::int64_t n);
void attention_softmax_row(float* x, std::int64_t n, ScoreScaling scaling, float s, const float* mask,
                           bool zero_if_masked);
}
}  // namespace kiln::kernels::cpu
