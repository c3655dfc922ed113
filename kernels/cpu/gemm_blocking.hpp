// The cache blocking every vector GEMM shares (gemm_avx2.cpp, gemm_avx512.cpp): B packed
// into zero-padded panels of NR columns ([k][NR]), C started from the bias or zeros, and
// the loop over K blocks, column panels and row blocks that calls the ISA's microkernels.
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

// Panel p holds columns [p * Nr, p * Nr + Nr) of B as [k][Nr], zeros past n. B given as
// [n, k] (torch.linear's weight, K^T in attention): row j of it is column j of B.
template <std::int64_t Nr>
void pack_b_nk(const float* b, std::int64_t ldb, std::int64_t n, std::int64_t k, float* pack) {
  for (std::int64_t j0 = 0; j0 < n; j0 += Nr) {
    float* panel = pack + j0 * k;
    for (std::int64_t j = 0; j < Nr; ++j) {
      const float* row = j0 + j < n ? b + (j0 + j) * ldb : nullptr;
      for (std::int64_t p = 0; p < k; ++p) panel[p * Nr + j] = row ? row[p] : 0.0f;
    }
  }
}

// The same panels from B given as [k, n] (attention's V): each panel row is a slice of a row.
template <std::int64_t Nr>
void pack_b_kn(const float* b, std::int64_t ldb, std::int64_t n, std::int64_t k, float* pack) {
  for (std::int64_t j0 = 0; j0 < n; j0 += Nr) {
    float* panel = pack + j0 * k;
    const std::int64_t cols = min_i64(Nr, n - j0);
    for (std::int64_t p = 0; p < k; ++p) {
      const float* from = b + p * ldb + j0;
      float* to = panel + p * Nr;
      for (std::int64_t j = 0; j < cols; ++j) to[j] = from[j];
      for (std::int64_t j = cols; j < Nr; ++j) to[j] = 0.0f;
    }
  }
}

// C += A * B with B packed (pack_b_*), A and C of any row strides. `full(rows, a, lda,
// panel, kc, c, ldc)` accumulates a rows x Nr tile; `narrow(rows, cols, a, lda, panel, kc,
// c, ldc)` the last panel's cols < Nr columns. K is cut in blocks of Kc so that one panel
// stays in cache while every row block of A streams past it.
template <std::int64_t Mr, std::int64_t Nr, std::int64_t Kc, class Full, class Narrow>
void packed_gemm(const float* a, std::int64_t lda, const float* pack, float* c, std::int64_t ldc, std::int64_t m,
                 std::int64_t n, std::int64_t k, Full full, Narrow narrow) {
  for (std::int64_t k0 = 0; k0 < k; k0 += Kc) {
    const std::int64_t kc = min_i64(Kc, k - k0);
    for (std::int64_t j0 = 0; j0 < n; j0 += Nr) {
      const float* panel = pack + j0 * k + k0 * Nr;
      const std::int64_t cols = min_i64(Nr, n - j0);
      for (std::int64_t i0 = 0; i0 < m; i0 += Mr) {
        const std::int64_t rows = min_i64(Mr, m - i0);
        const float* ab = a + i0 * lda + k0;
        float* cb = c + i0 * ldc + j0;
        if (cols == Nr) {
          full(rows, ab, lda, panel, kc, cb, ldc);
        } else {
          narrow(rows, cols, ab, lda, panel, kc, cb, ldc);
        }
      }
    }
  }
}

// C = A * B^T + bias, all contiguous, B stored [n, k].
template <std::int64_t Mr, std::int64_t Nr, std::int64_t Kc, class Full, class Narrow>
void blocked_gemm(const float* a, const float* b, const float* bias, float* c, std::int64_t m, std::int64_t n,
                  std::int64_t k, float* pack, Full full, Narrow narrow) {
  pack_b_nk<Nr>(b, k, n, k, pack);
  for (std::int64_t i = 0; i < m; ++i) {
    for (std::int64_t j = 0; j < n; ++j) c[i * n + j] = bias ? bias[j] : 0.0f;
  }
  packed_gemm<Mr, Nr, Kc>(a, k, pack, c, n, m, n, k, full, narrow);
}

// The exported strided entry points of one ISA (gemm.hpp), over its microkernels.
template <std::int64_t Mr, std::int64_t Nr, std::int64_t Kc, class Full, class Narrow>
void strided_gemm(const float* a, std::int64_t lda, const float* pack, float* c, std::int64_t ldc, std::int64_t m,
                  std::int64_t n, std::int64_t k, Full full, Narrow narrow) {
  for (std::int64_t i = 0; i < m; ++i) {
    for (std::int64_t j = 0; j < n; ++j) c[i * ldc + j] = 0.0f;
  }
  packed_gemm<Mr, Nr, Kc>(a, lda, pack, c, ldc, m, n, k, full, narrow);
}

}  // namespace
}  // namespace kiln::kernels::cpu
