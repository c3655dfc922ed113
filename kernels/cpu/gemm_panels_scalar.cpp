// The panel GEMM's reference microkernel (see gemm_panels.hpp): the AVX-512 kernel's
// arithmetic one element at a time, so the two agree bit for bit. It needs no prefetch.
#include <cmath>

#include "kernels/cpu/gemm_panels.hpp"

namespace kiln::kernels::cpu::scalar {

void panel_tile(const float* ap, std::int64_t rows, const float* panel, std::int64_t kc, float* c, std::int64_t ldc,
                std::int64_t cols, bool accumulate, const float* bias, std::uintptr_t /*prefetch*/) {
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t j = 0; j < cols; ++j) {
      float acc = accumulate ? c[r * ldc + j] : 0.0f;
      for (std::int64_t p = 0; p < kc; ++p) acc = std::fma(ap[p * 16 + r], panel[p * kPanelWidth + j], acc);
      if (bias) acc += bias[j];
      c[r * ldc + j] = acc;
    }
  }
}

}  // namespace kiln::kernels::cpu::scalar
