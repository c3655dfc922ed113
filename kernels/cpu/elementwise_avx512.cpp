// Elementwise loops with AVX-512: binary_row (binary_loops.hpp, vectorized by the compiler
// under this unit's flags) and GELU on 16 floats at a time, each half widened to 8
// doubles for the arithmetic (see elementwise_isa.hpp for the method). Only intrinsics and
// functions with internal linkage here (kernels/cpu/fast.hpp says why).
#include "kernels/cpu/intrinsics.hpp"

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/binary_loops.hpp"
#include "kernels/cpu/elementwise_isa.hpp"

namespace kiln::kernels::cpu::avx512 {

namespace {

namespace c = gelu_coefficients;

constexpr std::int64_t kLanes = 16;

// The maskz_ forms with every lane set, where GCC 12's plain forms (their _mm512_undefined_
// operand) trip -Wuninitialized once inlined here (GCC bug 105593).
constexpr __mmask8 kAll = 0xFF;
__m512d min_pd(__m512d a, __m512d b) { return _mm512_maskz_min_pd(kAll, a, b); }

template <std::size_t N>
__m512d horner(const double (&k)[N], __m512d t) {
  __m512d p = _mm512_set1_pd(k[N - 1]);
  for (std::size_t i = N - 1; i-- > 0;) p = _mm512_fmadd_pd(p, t, _mm512_set1_pd(k[i]));
  return p;
}

// e^-y for y in [0, kMaxExpArg] (NaN lanes give anything): 2^k e^s, k = round(-y / ln 2)
// by the add-1.5*2^52 trick (its low bits are k), s = -y - k ln 2 in [-ln2/2, ln2/2].
__m512d exp_neg(__m512d y) {
  const __m512d magic = _mm512_set1_pd(0x1.8p52);
  const __m512d t = _mm512_fmadd_pd(y, _mm512_set1_pd(-c::kLog2e), magic);
  const __m512d k = _mm512_sub_pd(t, magic);
  const __m512d s = _mm512_fnmadd_pd(k, _mm512_set1_pd(c::kLn2), _mm512_sub_pd(_mm512_setzero_pd(), y));
  const __m512d p = horner(c::kExp, s);
  const __m512d es = _mm512_add_pd(_mm512_fmadd_pd(_mm512_mul_pd(s, s), p, s), _mm512_set1_pd(1.0));
  const __m512i ki = _mm512_sub_epi64(_mm512_castpd_si512(t), _mm512_castpd_si512(magic));
  const __m512i bits = _mm512_maskz_slli_epi64(kAll, _mm512_add_epi64(ki, _mm512_set1_epi64(1023)), 52);
  return _mm512_mul_pd(es, _mm512_castsi512_pd(bits));
}

// 1/d for d >= 1 (at most about 1e5 here): rcp14 and two Newton steps (relative error about 2^-56).
__m512d reciprocal(__m512d d) {
  const __m512d one = _mm512_set1_pd(1.0);
  __m512d r = _mm512_maskz_rcp14_pd(kAll, d);
  r = _mm512_fmadd_pd(r, _mm512_fnmadd_pd(d, r, one), r);
  return _mm512_fmadd_pd(r, _mm512_fnmadd_pd(d, r, one), r);
}

__m512d gelu_erf(__m512d x) {
  const __m512d e = exp_neg(min_pd(_mm512_mul_pd(_mm512_mul_pd(x, x), _mm512_set1_pd(0.5)),
                                          _mm512_set1_pd(c::kMaxExpArg)));
  const __m512d t = min_pd(_mm512_abs_pd(x), _mm512_set1_pd(16.0));
  const __m512d g = _mm512_mul_pd(horner(c::kP, t), reciprocal(horner(c::kQ, t)));
  const __m512d corr = _mm512_mul_pd(x, _mm512_mul_pd(e, g));  // x erfc(|x|/sqrt 2) / 2
  const __mmask8 positive = _mm512_cmp_pd_mask(x, _mm512_setzero_pd(), _CMP_GT_OQ);
  return _mm512_mask_blend_pd(positive, corr, _mm512_sub_pd(x, corr));
}

__m512d gelu_tanh(__m512d x) {
  const __m512d inner = _mm512_fmadd_pd(_mm512_mul_pd(x, x), _mm512_set1_pd(c::kTanhCubic), _mm512_set1_pd(1.0));
  const __m512d v = _mm512_abs_pd(_mm512_mul_pd(_mm512_mul_pd(x, _mm512_set1_pd(c::kTanhScale)), inner));
  const __m512d w = exp_neg(min_pd(v, _mm512_set1_pd(c::kMaxExpArg)));
  const __mmask8 nonnegative = _mm512_cmp_pd_mask(x, _mm512_setzero_pd(), _CMP_GE_OQ);
  const __m512d num = _mm512_mask_blend_pd(nonnegative, _mm512_mul_pd(x, w), x);
  return _mm512_mul_pd(num, reciprocal(_mm512_add_pd(w, _mm512_set1_pd(1.0))));
}

template <bool Tanh>
__m512 gelu16(__m512 x) {
  const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(x));
  const __m512d hi = _mm512_cvtps_pd(_mm512_extractf32x8_ps(x, 1));
  const __m512d ylo = Tanh ? gelu_tanh(lo) : gelu_erf(lo);
  const __m512d yhi = Tanh ? gelu_tanh(hi) : gelu_erf(hi);
  const __m512 y = _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(ylo)), _mm512_cvtpd_ps(yhi), 1);
  // inf gives inf, -inf and NaN give NaN: x * (x > 0 ? 1 : 0).
  const __mmask16 non_finite = _mm512_cmp_ps_mask(_mm512_abs_ps(x), _mm512_set1_ps(__builtin_inff()), _CMP_NLT_UQ);
  const __m512 step = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ), _mm512_set1_ps(1.0f));
  return _mm512_mask_mov_ps(y, non_finite, _mm512_mul_ps(x, step));
}

template <bool Tanh>
void gelu_loop(const float* x, float* y, std::int64_t n) {
  std::int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) _mm512_storeu_ps(y + i, gelu16<Tanh>(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const auto k = static_cast<__mmask16>((1u << (n - i)) - 1u);
    _mm512_mask_storeu_ps(y + i, k, gelu16<Tanh>(_mm512_maskz_loadu_ps(k, x + i)));
  }
}

}  // namespace

void binary_row(BinaryKernel op, const float* a, std::int64_t sa, const float* b, std::int64_t sb, float* y,
                std::int64_t n, float alpha) {
  binary_row_loops(op, a, sa, b, sb, y, n, alpha);
}

void gelu_f32(const float* x, float* y, std::int64_t n, bool tanh_approx) {
  if (tanh_approx) return gelu_loop<true>(x, y, n);
  gelu_loop<false>(x, y, n);
}

}  // namespace kiln::kernels::cpu::avx512
