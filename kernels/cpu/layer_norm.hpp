// Layer norm over each row of a contiguous [rows, n] float32 buffer: (x - mean) / sqrt(var
// + eps) * w + b, with the biased variance; w and b (n floats each) may be null. One
// implementation per instruction set (layer_norm_<isa>.cpp); the oracle is ref::layer_norm.
//
// Mean, variance and the normalization itself are computed in double with two passes over
// the row, as the reference does, so each output is rounded to float once: the vector
// versions differ from the reference only by the order of the sums. The kernel is
// memory-bound, so the wider arithmetic costs little.
#pragma once

#include <cstdint>

namespace kiln::kernels::cpu {
namespace scalar {
void layer_norm_rows(const float* x, const float* w, const float* b, float* y, std::int64_t rows, std::int64_t n,
                     double eps);
}
namespace avx2 {
void layer_norm_rows(const float* x, const float* w, const float* b, float* y, std::int64_t rows, std::int64_t n,
                     double eps);
}
namespace avx512 {
void layer_norm_rows(const float* x, const float* w, const float* b, float* y, std::int64_t rows, std::int64_t n,
                     double eps);
}
}  // namespace kiln::kernels::cpu
