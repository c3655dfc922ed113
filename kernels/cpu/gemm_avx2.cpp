// GEMM with AVX2 and FMA (see gemm.hpp): a 6x16 register tile (12 ymm accumulators, two
// ymm of packed B and one broadcast of A: 15 of the 16 ymm registers), K cut in blocks of
// kKc so that one packed panel (kKc x 16 floats, 16 KiB) stays in L1 while every row block
// of A streams past it. Single-threaded.
//
// Only intrinsics and internal functions here (ODR: see gemm_avx512.cpp).
#include "kernels/cpu/intrinsics.hpp"

#include "kernels/cpu/gemm.hpp"

namespace kiln::kernels::cpu::avx2 {

namespace {

constexpr std::int64_t kMr = 6, kNr = 16, kKc = 256;

std::int64_t min(std::int64_t a, std::int64_t b) { return a < b ? a : b; }

// Panel p holds columns [p * kNr, p * kNr + kNr) of B^T as [k][kNr], zeros past n.
void pack_b(const float* b, std::int64_t n, std::int64_t k, float* pack) {
  for (std::int64_t j0 = 0; j0 < n; j0 += kNr) {
    float* panel = pack + j0 * k;
    for (std::int64_t j = 0; j < kNr; ++j) {
      const float* row = j0 + j < n ? b + (j0 + j) * k : nullptr;
      for (std::int64_t p = 0; p < k; ++p) panel[p * kNr + j] = row ? row[p] : 0.0f;
    }
  }
}

// c[R x 16] += a[R x kc] * panel[kc x 16]; a has row stride lda, c row stride ldc.
template <int R>
void tile(const float* a, std::int64_t lda, const float* panel, std::int64_t kc, float* c, std::int64_t ldc) {
  __m256 lo[R], hi[R];
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
    lo[r] = _mm256_loadu_ps(c + r * ldc);
    hi[r] = _mm256_loadu_ps(c + r * ldc + 8);
  }
  for (std::int64_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_loadu_ps(panel + p * kNr), b1 = _mm256_loadu_ps(panel + p * kNr + 8);
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      const __m256 av = _mm256_broadcast_ss(a + r * lda + p);
      lo[r] = _mm256_fmadd_ps(av, b0, lo[r]);
      hi[r] = _mm256_fmadd_ps(av, b1, hi[r]);
    }
  }
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
    _mm256_storeu_ps(c + r * ldc, lo[r]);
    _mm256_storeu_ps(c + r * ldc + 8, hi[r]);
  }
}

void tile_rows(std::int64_t rows, const float* a, std::int64_t lda, const float* panel, std::int64_t kc, float* c,
               std::int64_t ldc) {
  switch (rows) {
    case 1: return tile<1>(a, lda, panel, kc, c, ldc);
    case 2: return tile<2>(a, lda, panel, kc, c, ldc);
    case 3: return tile<3>(a, lda, panel, kc, c, ldc);
    case 4: return tile<4>(a, lda, panel, kc, c, ldc);
    case 5: return tile<5>(a, lda, panel, kc, c, ldc);
    default: return tile<6>(a, lda, panel, kc, c, ldc);
  }
}

// A tile narrower than 16 columns (the last panel) goes through a full-width copy, so the
// microkernel never reads or writes past row ends of c.
void narrow_tile(std::int64_t rows, std::int64_t cols, const float* a, std::int64_t lda, const float* panel,
                 std::int64_t kc, float* c, std::int64_t ldc) {
  float buf[kMr * kNr] = {};
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t j = 0; j < cols; ++j) buf[r * kNr + j] = c[r * ldc + j];
  }
  tile_rows(rows, a, lda, panel, kc, buf, kNr);
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t j = 0; j < cols; ++j) c[r * ldc + j] = buf[r * kNr + j];
  }
}

void init_c(const float* bias, float* c, std::int64_t m, std::int64_t n) {
  for (std::int64_t i = 0; i < m; ++i) {
    for (std::int64_t j = 0; j < n; ++j) c[i * n + j] = bias ? bias[j] : 0.0f;
  }
}

}  // namespace

std::int64_t gemm_pack_floats(std::int64_t n, std::int64_t k) { return (n + kNr - 1) / kNr * kNr * k; }

void gemm_abt(const float* a, const float* b, const float* bias, float* c, std::int64_t m, std::int64_t n,
              std::int64_t k, float* pack) {
  pack_b(b, n, k, pack);
  init_c(bias, c, m, n);
  for (std::int64_t k0 = 0; k0 < k; k0 += kKc) {
    const std::int64_t kc = min(kKc, k - k0);
    for (std::int64_t j0 = 0; j0 < n; j0 += kNr) {
      const float* panel = pack + j0 * k + k0 * kNr;
      const std::int64_t cols = min(kNr, n - j0);
      for (std::int64_t i0 = 0; i0 < m; i0 += kMr) {
        const std::int64_t rows = min(kMr, m - i0);
        const float* ab = a + i0 * k + k0;
        float* cb = c + i0 * n + j0;
        if (cols == kNr) {
          tile_rows(rows, ab, k, panel, kc, cb, n);
        } else {
          narrow_tile(rows, cols, ab, k, panel, kc, cb, n);
        }
      }
    }
  }
}

}  // namespace kiln::kernels::cpu::avx2
