// GEMM with AVX-512 (see gemm.hpp): an 8x32 register tile (16 zmm accumulators, two zmm of
// packed B and one broadcast of A per k step: FMA-bound on two FMA ports), K cut in
// blocks of kKc so that one packed panel (kKc x 32 floats, 32 KiB) stays in L1/L2 while
// every row block of A streams past it. Single-threaded.
//
// Only intrinsics and internal functions here: this file is compiled with AVX-512 flags,
// and an inline library function instantiated here could be picked by the linker for
// callers on machines without AVX-512.
#include "kernels/cpu/intrinsics.hpp"

#include "kernels/cpu/gemm.hpp"
#include "kernels/cpu/gemm_blocking.hpp"

namespace kiln::kernels::cpu::avx512 {

namespace {

constexpr std::int64_t kMr = 8, kNr = 32, kKc = 256;

// c[R x 32] += a[R x kc] * panel[kc x 32]; a has row stride lda, c row stride ldc.
template <int R>
void tile(const float* a, std::int64_t lda, const float* panel, std::int64_t kc, float* c, std::int64_t ldc) {
  __m512 lo[R], hi[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    lo[r] = _mm512_loadu_ps(c + r * ldc);
    hi[r] = _mm512_loadu_ps(c + r * ldc + 16);
  }
  for (std::int64_t p = 0; p < kc; ++p) {
    const __m512 b0 = _mm512_loadu_ps(panel + p * kNr), b1 = _mm512_loadu_ps(panel + p * kNr + 16);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512 av = _mm512_set1_ps(a[r * lda + p]);
      lo[r] = _mm512_fmadd_ps(av, b0, lo[r]);
      hi[r] = _mm512_fmadd_ps(av, b1, hi[r]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    _mm512_storeu_ps(c + r * ldc, lo[r]);
    _mm512_storeu_ps(c + r * ldc + 16, hi[r]);
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
    case 6: return tile<6>(a, lda, panel, kc, c, ldc);
    case 7: return tile<7>(a, lda, panel, kc, c, ldc);
    default: return tile<8>(a, lda, panel, kc, c, ldc);
  }
}

// A tile narrower than 32 columns (the last panel) goes through a full-width copy, so the
// microkernel never reads or writes past row ends of c.
void narrow_tile(std::int64_t rows, std::int64_t cols, const float* a, std::int64_t lda, const float* panel,
                 std::int64_t kc, float* c, std::int64_t ldc) {
  const __mmask16 k0 = static_cast<__mmask16>(cols >= 16 ? 0xFFFF : (1u << cols) - 1u);
  const __mmask16 k1 = static_cast<__mmask16>(cols <= 16 ? 0 : (1u << (cols - 16)) - 1u);
  float buf[kMr * kNr];
  for (std::int64_t r = 0; r < rows; ++r) {
    _mm512_storeu_ps(buf + r * kNr, _mm512_maskz_loadu_ps(k0, c + r * ldc));
    _mm512_storeu_ps(buf + r * kNr + 16, _mm512_maskz_loadu_ps(k1, c + r * ldc + 16));
  }
  tile_rows(rows, a, lda, panel, kc, buf, kNr);
  for (std::int64_t r = 0; r < rows; ++r) {
    _mm512_mask_storeu_ps(c + r * ldc, k0, _mm512_loadu_ps(buf + r * kNr));
    _mm512_mask_storeu_ps(c + r * ldc + 16, k1, _mm512_loadu_ps(buf + r * kNr + 16));
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

}  // namespace kiln::kernels::cpu::avx512
