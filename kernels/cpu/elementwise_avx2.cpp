// Elementwise loops with AVX2 and FMA: binary_row (binary_loops.hpp, vectorized by the
// compiler under this unit's flags) and GELU on 8 floats at a time, each half widened to 4
// doubles for the arithmetic (see elementwise_isa.hpp for the method). Only intrinsics and
// functions with internal linkage here (kernels/cpu/fast.hpp says why).
#include "kernels/cpu/intrinsics.hpp"

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/binary_loops.hpp"
#include "kernels/cpu/elementwise_isa.hpp"

namespace kiln::kernels::cpu::avx2 {

namespace {

namespace c = gelu_coefficients;

constexpr std::int64_t kLanes = 8;

template <std::size_t N>
__m256d horner(const double (&k)[N], __m256d t) {
  __m256d p = _mm256_set1_pd(k[N - 1]);
  for (std::size_t i = N - 1; i-- > 0;) p = _mm256_fmadd_pd(p, t, _mm256_set1_pd(k[i]));
  return p;
}

__m256d abs_pd(__m256d x) { return _mm256_andnot_pd(_mm256_set1_pd(-0.0), x); }

// e^-y for y in [0, kMaxExpArg] (NaN lanes give anything): 2^k e^s, k = round(-y / ln 2)
// by the add-1.5*2^52 trick (its low bits are k), s = -y - k ln 2 in [-ln2/2, ln2/2].
__m256d exp_neg(__m256d y) {
  const __m256d magic = _mm256_set1_pd(0x1.8p52);
  const __m256d t = _mm256_fmadd_pd(y, _mm256_set1_pd(-c::kLog2e), magic);
  const __m256d k = _mm256_sub_pd(t, magic);
  const __m256d s = _mm256_fnmadd_pd(k, _mm256_set1_pd(c::kLn2), _mm256_sub_pd(_mm256_setzero_pd(), y));
  const __m256d p = horner(c::kExp, s);
  const __m256d es = _mm256_add_pd(_mm256_fmadd_pd(_mm256_mul_pd(s, s), p, s), _mm256_set1_pd(1.0));
  const __m256i ki = _mm256_sub_epi64(_mm256_castpd_si256(t), _mm256_castpd_si256(magic));
  const __m256i bits = _mm256_slli_epi64(_mm256_add_epi64(ki, _mm256_set1_epi64x(1023)), 52);
  return _mm256_mul_pd(es, _mm256_castsi256_pd(bits));
}

// 1/d for d >= 1 (at most about 1e5 here): the float rcp (12 bits) and two Newton steps
// in double (relative error about 2^-46).
__m256d reciprocal(__m256d d) {
  const __m256d one = _mm256_set1_pd(1.0);
  __m256d r = _mm256_cvtps_pd(_mm_rcp_ps(_mm256_cvtpd_ps(d)));
  r = _mm256_fmadd_pd(r, _mm256_fnmadd_pd(d, r, one), r);
  return _mm256_fmadd_pd(r, _mm256_fnmadd_pd(d, r, one), r);
}

__m256d gelu_erf(__m256d x) {
  const __m256d e = exp_neg(_mm256_min_pd(_mm256_mul_pd(_mm256_mul_pd(x, x), _mm256_set1_pd(0.5)),
                                          _mm256_set1_pd(c::kMaxExpArg)));
  const __m256d t = _mm256_min_pd(abs_pd(x), _mm256_set1_pd(16.0));
  const __m256d g = _mm256_mul_pd(horner(c::kP, t), reciprocal(horner(c::kQ, t)));
  const __m256d corr = _mm256_mul_pd(x, _mm256_mul_pd(e, g));  // x erfc(|x|/sqrt 2) / 2
  const __m256d positive = _mm256_cmp_pd(x, _mm256_setzero_pd(), _CMP_GT_OQ);
  return _mm256_blendv_pd(corr, _mm256_sub_pd(x, corr), positive);
}

__m256d gelu_tanh(__m256d x) {
  const __m256d inner = _mm256_fmadd_pd(_mm256_mul_pd(x, x), _mm256_set1_pd(c::kTanhCubic), _mm256_set1_pd(1.0));
  const __m256d v = abs_pd(_mm256_mul_pd(_mm256_mul_pd(x, _mm256_set1_pd(c::kTanhScale)), inner));
  const __m256d w = exp_neg(_mm256_min_pd(v, _mm256_set1_pd(c::kMaxExpArg)));
  const __m256d nonnegative = _mm256_cmp_pd(x, _mm256_setzero_pd(), _CMP_GE_OQ);
  const __m256d num = _mm256_blendv_pd(_mm256_mul_pd(x, w), x, nonnegative);
  return _mm256_mul_pd(num, reciprocal(_mm256_add_pd(w, _mm256_set1_pd(1.0))));
}

template <bool Tanh>
__m256 gelu8(__m256 x) {
  const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(x));
  const __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1));
  const __m256d ylo = Tanh ? gelu_tanh(lo) : gelu_erf(lo);
  const __m256d yhi = Tanh ? gelu_tanh(hi) : gelu_erf(hi);
  const __m256 y = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm256_cvtpd_ps(ylo)), _mm256_cvtpd_ps(yhi), 1);
  // inf gives inf, -inf and NaN give NaN: x * (x > 0 ? 1 : 0).
  const __m256 abs_x = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
  const __m256 non_finite = _mm256_cmp_ps(abs_x, _mm256_set1_ps(__builtin_inff()), _CMP_NLT_UQ);
  const __m256 step = _mm256_and_ps(_mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ), _mm256_set1_ps(1.0f));
  return _mm256_blendv_ps(y, _mm256_mul_ps(x, step), non_finite);
}

template <bool Tanh>
void gelu_loop(const float* x, float* y, std::int64_t n) {
  std::int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) _mm256_storeu_ps(y + i, gelu8<Tanh>(_mm256_loadu_ps(x + i)));
  if (i < n) {
    // The tail through a zero-padded buffer.
    alignas(32) float buffer[kLanes] = {};
    for (std::int64_t j = 0; j < n - i; ++j) buffer[j] = x[i + j];
    _mm256_store_ps(buffer, gelu8<Tanh>(_mm256_load_ps(buffer)));
    for (std::int64_t j = 0; j < n - i; ++j) y[i + j] = buffer[j];
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

}  // namespace kiln::kernels::cpu::avx2
