// The panel GEMM's microkernel with AVX-512 (see gemm_panels.hpp): for each 16-column
// quarter of a 64-column panel, up to 16 rows of accumulators (one zmm each), one load of
// weight and 16 FMAs with A broadcast from memory per k: FMA-bound, with the load ports
// free for the prefetch of the next block, one cache line per k step.
//
// Only intrinsics and internal functions here (see gemm_avx512.cpp on why).
#include "kernels/cpu/intrinsics.hpp"

#include "kernels/cpu/gemm_panels.hpp"

namespace kiln::kernels::cpu::avx512 {

namespace {

__mmask16 column_mask(std::int64_t cols) {
  return static_cast<__mmask16>(cols >= 16 ? 0xFFFF : (1u << cols) - 1u);
}

template <int R>
void quarters(const float* ap, const float* panel, std::int64_t kc, float* c, std::int64_t ldc, std::int64_t cols,
              bool accumulate, const float* bias, std::uintptr_t prefetch) {
  for (std::int64_t q = 0; q * 16 < cols; ++q) {
    const __mmask16 mask = column_mask(cols - q * 16);
    __m512 acc[R];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) acc[r] = accumulate ? _mm512_maskz_loadu_ps(mask, c + r * ldc + q * 16) : _mm512_setzero_ps();
    const float* b = panel + q * 16;
    // The next block is kc * 4 cache lines; quarter q fetches its q-th quarter of them.
    const std::uintptr_t fetch = prefetch + static_cast<std::uintptr_t>(q * kc * 64);
    for (std::int64_t p = 0; p < kc; ++p) {
      _mm_prefetch(reinterpret_cast<const char*>(fetch + static_cast<std::uintptr_t>(p * 64)), _MM_HINT_T0);
      const __m512 bv = _mm512_loadu_ps(b + p * kPanelWidth);
      const float* a = ap + p * 16;
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(a[r]), bv, acc[r]);
    }
    if (bias) {
      const __m512 bv = _mm512_maskz_loadu_ps(mask, bias + q * 16);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) acc[r] = _mm512_add_ps(acc[r], bv);
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) _mm512_mask_storeu_ps(c + r * ldc + q * 16, mask, acc[r]);
  }
}

template <int R>
void dispatch(std::int64_t rows, const float* ap, const float* panel, std::int64_t kc, float* c, std::int64_t ldc,
              std::int64_t cols, bool accumulate, const float* bias, std::uintptr_t prefetch) {
  if (rows == R) return quarters<R>(ap, panel, kc, c, ldc, cols, accumulate, bias, prefetch);
  if constexpr (R > 1) dispatch<R - 1>(rows, ap, panel, kc, c, ldc, cols, accumulate, bias, prefetch);
}

}  // namespace

void panel_tile(const float* ap, std::int64_t rows, const float* panel, std::int64_t kc, float* c, std::int64_t ldc,
                std::int64_t cols, bool accumulate, const float* bias, std::uintptr_t prefetch) {
  dispatch<16>(rows, ap, panel, kc, c, ldc, cols, accumulate, bias, prefetch);
}

}  // namespace kiln::kernels::cpu::avx512
