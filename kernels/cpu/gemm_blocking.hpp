// The cache blocking every vector GEMM shares (gemm_avx2.cpp, gemm_avx512.cpp): B packed
// into zero-padded panels of NR columns ([k][NR]), C started from the bias, and the loop
// over K blocks, column panels and row blocks that calls the ISA's microkernels.
//
// Everything here is in an unnamed namespace: each per-ISA translation unit gets its own
// copy, compiled with its own flags, with internal linkage, so the linker can never pick
// an AVX-512 instantiation for a caller on a machine without AVX-512 (see fast.hpp).
#pragma once

#include <cstdint>

namespace kiln::kernels::cpu {
namespace {

inline std::int64_t min_i64(std::int64_t a, std::int64_t b) { return a < b ? a : b; }

template <std::int64_t Nr>
std::int64_t packed_floats(std::int64_t n, std::int64_t k) {
  return (n + Nr - 1) / Nr * Nr * k;
}

// Panel p holds columns [p * Nr, p * Nr + Nr) of B^T as [k][Nr], zeros past n.
template <std::int64_t Nr>
void pack_b(const float* b, std::int64_t n, std::int64_t k, float* pack) {
  for (std::int64_t j0 = 0; j0 < n; j0 += Nr) {
    float* panel = pack + j0 * k;
    for (std::int64_t j = 0; j < Nr; ++j) {
      const float* row = j0 + j < n ? b + (j0 + j) * k : nullptr;
      for (std::int64_t p = 0; p < k; ++p) panel[p * Nr + j] = row ? row[p] : 0.0f;
    }
  }
}

// C = A * B^T + bias. `full(rows, a, lda, panel, kc, c, ldc)` accumulates a rows x Nr tile;
// `narrow(rows, cols, a, lda, panel, kc, c, ldc)` the last panel's cols < Nr columns.
template <std::int64_t Mr, std::int64_t Nr, std::int64_t Kc, class Full, class Narrow>
void blocked_gemm(const float* a, const float* b, const float* bias, float* c, std::int64_t m, std::int64_t n,
                  std::int64_t k, float* pack, Full full, Narrow narrow) {
  pack_b<Nr>(b, n, k, pack);
  for (std::int64_t i = 0; i < m; ++i) {
    for (std::int64_t j = 0; j < n; ++j) c[i * n + j] = bias ? bias[j] : 0.0f;
  }
  for (std::int64_t k0 = 0; k0 < k; k0 += Kc) {
    const std::int64_t kc = min_i64(Kc, k - k0);
    for (std::int64_t j0 = 0; j0 < n; j0 += Nr) {
      const float* panel = pack + j0 * k + k0 * Nr;
      const std::int64_t cols = min_i64(Nr, n - j0);
      for (std::int64_t i0 = 0; i0 < m; i0 += Mr) {
        const std::int64_t rows = min_i64(Mr, m - i0);
        const float* ab = a + i0 * k + k0;
        float* cb = c + i0 * n + j0;
        if (cols == Nr) {
          full(rows, ab, k, panel, kc, cb, n);
        } else {
          narrow(rows, cols, ab, k, panel, kc, cb, n);
        }
      }
    }
  }
}

}  // namespace
}  // namespace kiln::kernels::cpu
