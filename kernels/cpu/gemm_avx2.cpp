// GEMM with AVX2 and FMA (see gemm.hpp): a 6x16 register tile (12 ymm accumulators, two
// ymm of packed B and one broadcast of A: 15 of the 16 ymm registers), K cut in blocks of
// kKc so that one packed panel (kKc x 16 floats, 16 KiB) stays in L1 while every row block
// of A streams past it. Single-threaded.
//
// Only intrinsics and internal functions here (ODR: see gemm_avx512.cpp).
#include "kernels/cpu/intrinsics.hpp"

#include "kernels/cpu/gemm.hpp"
#include "kernels/cpu/gemm_blocking.hpp"

namespace kiln::kernels::cpu::avx2 {

namespace {

constexpr std::int64_t kMr = 6, kNr = 16, kKc = 256;

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

}  // namespace

std::int64_t gemm_pack_floats(std::int64_t n, std::int64_t k) { return packed_floats<kNr>(n, k); }

void gemm_abt(const float* a, const float* b, const float* bias, float* c, std::int64_t m, std::int64_t n,
              std::int64_t k, float* pack) {
  blocked_gemm<kMr, kNr, kKc>(a, b, bias, c, m, n, k, pack, tile_rows, narrow_tile);
}

void gemm_pack_nk(const float* b, std::int64_t ldb, std::int64_t n, std::int64_t k, float* pack) {
  pack_b_nk<kNr>(b, ldb, n, k, pack);
}

void gemm_pack_kn(const float* b, std::int64_t ldb, std::int64_t n, std::int64_t k, float* pack) {
  pack_b_kn<kNr>(b, ldb, n, k, pack);
}

void gemm_packed(const float* a, std::int64_t lda, const float* pack, float* c, std::int64_t ldc, std::int64_t m,
                 std::int64_t n, std::int64_t k) {
  strided_gemm<kMr, kNr, kKc>(a, lda, pack, c, ldc, m, n, k, tile_rows, narrow_tile);
}

}  // namespace kiln::kernels::cpu::avx2
