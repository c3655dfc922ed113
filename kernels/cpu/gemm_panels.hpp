// GEMM of a few rows (kPanelRowsMin to kPanelRowsMax) against a linear weight already packed
// in column panels of 64: [ceil(n/64)][k_padded][64] floats, the blocking oneDNN's AVX-512
// matmul gives packed fp32 weights (BA16a64b). That is every linear layer at short sequences,
// where the time is spent reading the weight from memory, not multiplying: oneDNN's GEMM
// there reads BERT-base's weights at about 17 GB/s on one core, this one at about 23.
//
// Why it is faster: each panel is read once, whole K at a time, with the rows of A packed
// k-major ([k][16], one cache line per k) so the microkernel is 16 broadcast FMAs per line of
// weight; and while it computes on one block of a panel it prefetches the next block (the
// next piece of memory, since blocks are taken in memory order), so DRAM never waits for
// the arithmetic. K is cut in blocks of 256 so that a block plus the one being fetched sit
// in L1/L2.
//
// Every output element is one FMA chain over k = 0..k-1 in order, then + bias, whatever the
// thread count or block: results are bitwise the same at any number of threads, and the
// scalar kernel (std::fma) gives the AVX-512 kernel's bits.
#pragma once

#include <cstdint>

#include "kernels/cpu/gemm_epilogue.hpp"
#include "kernels/cpu/isa.hpp"

namespace kiln::kernels::cpu {

constexpr std::int64_t kPanelWidth = 64;
// Below 8 rows oneDNN's GEMM streams the weight as fast; from about 48 rows the work is
// bound by arithmetic, where oneDNN's larger tiles do better.
constexpr std::int64_t kPanelRowsMin = 8, kPanelRowsMax = 48;

// A weight of logical shape [k, n] (the transpose of torch.linear's [n, k]) in 64-column
// panels: column j, row p at data[(j / 64) * panel_stride + p * 64 + j % 64].
struct PanelWeight {
  const float* data = nullptr;
  std::int64_t k = 0, n = 0;
  std::int64_t panel_stride = 0;  // floats from one panel to the next, >= k * 64
};

// Whether panel_linear serves m rows at this instruction set level (AVX-512 only: the
// panel layout is the AVX-512 one).
bool panel_gemm_suits(std::int64_t m, Isa isa);

// c[i, j] = epilogue(sum_p a[i * lda + p * lda_k] * w[p, j] + bias[j * bias_stride]) for i
// < m, j < w.n; c has row stride ldc. bias may be null; bias_stride 0 broadcasts one value.
// Threads (cpu::max_threads()) take contiguous ranges of panels.
void panel_linear(Isa isa, const float* a, std::int64_t lda, std::int64_t lda_k, std::int64_t m, const PanelWeight& w,
                  const float* bias, std::int64_t bias_stride, float* c, std::int64_t ldc, Epilogue epilogue);

// The microkernel, per instruction set: c[r, j] (+)= sum_p ap[p * 16 + r] * panel[p * 64 + j]
// for r < rows <= 16, j < cols <= 64, p < kc. `accumulate` adds to c's values, else starts
// from zero; a non-null `bias` (cols contiguous floats) is added after the sum. `prefetch`
// is the address of the next block the caller will pass (kc * 64 floats are fetched from
// it). An address, not a pointer: after the last block it lies past the weight, where a
// prefetch is harmless (it never faults) but a pointer may not point.
namespace scalar {
void panel_tile(const float* ap, std::int64_t rows, const float* panel, std::int64_t kc, float* c, std::int64_t ldc,
                std::int64_t cols, bool accumulate, const float* bias, std::uintptr_t prefetch);
}
namespace avx512 {
void panel_tile(const float* ap, std::int64_t rows, const float* panel, std::int64_t kc, float* c, std::int64_t ldc,
                std::int64_t cols, bool accumulate, const float* bias, std::uintptr_t prefetch);
}

}  // namespace kiln::kernels::cpu
