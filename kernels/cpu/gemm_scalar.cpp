// The baseline GEMM: one float dot product per output, with four partial sums so that the
// additions are not one serial dependency chain. Used where no vector unit is allowed.
#include "kernels/cpu/gemm.hpp"

namespace kiln::kernels::cpu::scalar {

namespace {

float dot(const float* a, const float* b, std::int64_t k) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  std::int64_t p = 0;
  for (; p + 4 <= k; p += 4) {
    s0 += a[p] * b[p];
    s1 += a[p + 1] * b[p + 1];
    s2 += a[p + 2] * b[p + 2];
    s3 += a[p + 3] * b[p + 3];
  }
  for (; p < k; ++p) s0 += a[p] * b[p];
  return (s0 + s1) + (s2 + s3);
}

}  // namespace

void gemm_abt(const float* a, const float* b, const float* bias, float* c, std::int64_t m, std::int64_t n,
              std::int64_t k) {
  for (std::int64_t i = 0; i < m; ++i) {
    for (std::int64_t j = 0; j < n; ++j) c[i * n + j] = dot(a + i * k, b + j * k, k) + (bias ? bias[j] : 0.0f);
  }
}

}  // namespace kiln::kernels::cpu::scalar
