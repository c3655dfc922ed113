// Softmax over each row of a contiguous [rows, n] float32 buffer, one implementation per
// instruction set (softmax_<isa>.cpp, each compiled with its own flags; fast.hpp picks
// one). The oracle is ref::softmax (kernels/reference/normalization.cpp).
//
// Like the reference, a row holding NaN, +inf, or only -inf comes out all NaN. The sum of
// exponentials is accumulated in double, so the only float errors are exp's (about 1 ulp)
// and the final scaling.
#pragma once

#include <cstdint>

namespace kiln::kernels::cpu {
namespace scalar {
void softmax_rows(const float* x, float* y, std::int64_t rows, std::int64_t n);
}
namespace avx2 {
void softmax_rows(const float* x, float* y, std::int64_t rows, std::int64_t n);
}
namespace avx512 {
void softmax_rows(const float* x, float* y, std::int64_t rows, std::int64_t n);
}
}  // namespace kiln::kernels::cpu
