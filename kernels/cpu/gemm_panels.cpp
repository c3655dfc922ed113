// The panel GEMM's driver (see gemm_panels.hpp): packs A once, k-major in 16-row chunks,
// then gives each thread a contiguous range of panels, walked in memory order one K block
// at a time so that each block's prefetch of "the next block" fetches what comes next.
#include "kernels/cpu/gemm_panels.hpp"

#include <algorithm>

#include "kernels/cpu/parallel.hpp"
#include "kernels/cpu/scratch.hpp"

namespace kiln::kernels::cpu {

namespace {

constexpr std::int64_t kChunkRows = 16;
// A K block of a panel is 64 KiB: it and the block being prefetched stay in L1/L2.
constexpr std::int64_t kBlockK = 256;
// Threads take at least this many multiply-adds each (see fast.cpp's kGemmMacsPerRange).
constexpr std::int64_t kMacsPerRange = std::int64_t{1} << 18;

// A packed k-major, and a strided or broadcast bias made contiguous.
thread_local Scratch t_rows, t_bias;

void tile(Isa isa, const float* ap, std::int64_t rows, const float* panel, std::int64_t kc, float* c, std::int64_t ldc,
          std::int64_t cols, bool accumulate, const float* bias, std::uintptr_t prefetch) {
  if (isa == Isa::avx512) return avx512::panel_tile(ap, rows, panel, kc, c, ldc, cols, accumulate, bias, prefetch);
  scalar::panel_tile(ap, rows, panel, kc, c, ldc, cols, accumulate, bias, prefetch);
}

}  // namespace

bool panel_gemm_suits(std::int64_t m, Isa isa) {
  return isa == Isa::avx512 && m >= kPanelRowsMin && m <= kPanelRowsMax;
}

void panel_linear(Isa isa, const float* a, std::int64_t lda, std::int64_t lda_k, std::int64_t m, const PanelWeight& w,
                  const float* bias, std::int64_t bias_stride, float* c, std::int64_t ldc, Epilogue epilogue) {
  const std::int64_t k = w.k, n = w.n;
  const std::int64_t chunks = (m + kChunkRows - 1) / kChunkRows;
  float* packed_rows = t_rows.get(chunks * k * kChunkRows);
  for (std::int64_t ch = 0; ch < chunks; ++ch) {
    const std::int64_t rows = std::min(kChunkRows, m - ch * kChunkRows);
    float* to = packed_rows + ch * k * kChunkRows;
    for (std::int64_t r = 0; r < rows; ++r) {
      const float* from = a + (ch * kChunkRows + r) * lda;
      for (std::int64_t p = 0; p < k; ++p) to[p * kChunkRows + r] = from[p * lda_k];
    }
  }
  if (bias && bias_stride != 1) {
    float* whole = t_bias.get(n);
    for (std::int64_t j = 0; j < n; ++j) whole[j] = bias[j * bias_stride];
    bias = whole;
  }
  const std::int64_t panels = (n + kPanelWidth - 1) / kPanelWidth;
  const std::int64_t grain = std::max<std::int64_t>(1, kMacsPerRange / std::max<std::int64_t>(1, m * k * kPanelWidth));
  parallel_for(panels, grain, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t pn = begin; pn < end; ++pn) {
      const std::int64_t j0 = pn * kPanelWidth, cols = std::min(kPanelWidth, n - j0);
      const float* panel = w.data + pn * w.panel_stride;
      for (std::int64_t k0 = 0; k0 < k; k0 += kBlockK) {
        const std::int64_t kc = std::min(kBlockK, k - k0);
        const float* block = panel + k0 * kPanelWidth;
        // What this thread reads next: the panel's next block, or the next panel's first
        // (after the last panel, memory past the weight: an address only, see the header).
        const std::int64_t next_floats = k0 + kc < k ? (k0 + kc) * kPanelWidth : w.panel_stride;
        const std::uintptr_t next = reinterpret_cast<std::uintptr_t>(panel) +
                                    static_cast<std::uintptr_t>(next_floats) * sizeof(float);
        const bool last = k0 + kc == k;
        for (std::int64_t ch = 0; ch < chunks; ++ch) {
          const std::int64_t rows = std::min(kChunkRows, m - ch * kChunkRows);
          tile(isa, packed_rows + ch * k * kChunkRows + k0 * kChunkRows, rows, block, kc, c + ch * kChunkRows * ldc + j0,
               ldc, cols, k0 > 0, last && bias ? bias + j0 : nullptr, next);
        }
      }
      if (epilogue != Epilogue::none) {
        for (std::int64_t i = 0; i < m; ++i) apply_epilogue(isa, epilogue, c + i * ldc + j0, cols);
      }
    }
  });
}

}  // namespace kiln::kernels::cpu
