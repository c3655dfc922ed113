// Softmax with AVX-512: a vectorized float exp (Cephes' expf scheme: about 1 ulp), sums in
// double. Only intrinsics and functions with internal linkage here: this file is compiled
// with AVX-512 flags, and an inline library function instantiated here could be picked by
// the linker for callers on machines without AVX-512.
#include "kernels/cpu/intrinsics.hpp"

#include "kernels/cpu/softmax.hpp"

namespace kiln::kernels::cpu::avx512 {

namespace {

constexpr std::int64_t kLanes = 16;

// exp(x) for x <= 0 (x - max): e^x = 2^n * e^r with n = round(x / ln 2), |r| <= ln2 / 2,
// e^r by a degree-7 polynomial. Below -87.3 the result is 0 (the true value is subnormal,
// under 1.2e-38); NaN stays NaN.
__m512 exp_nonpositive(__m512 x) {
  const __m512 lo = _mm512_set1_ps(-87.33654f);
  const __mmask16 underflow = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
  x = _mm512_max_ps(lo, x);  // max_ps returns its second operand for NaN, so NaN survives
  const __m512 fx = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // ln 2 split in two so that x - n ln2 is exact for the n that occur.
  __m512 r = _mm512_fnmadd_ps(fx, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(fx, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  const __m512 r2 = _mm512_mul_ps(r, r);
  p = _mm512_fmadd_ps(p, r2, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  const __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(fx), _mm512_set1_epi32(127)), 23);
  const __m512 result = _mm512_mul_ps(p, _mm512_castsi512_ps(bits));
  return _mm512_mask_mov_ps(result, underflow, _mm512_setzero_ps());
}

__mmask16 tail_mask(std::int64_t count) { return static_cast<__mmask16>((1u << count) - 1u); }

float row_max(const float* x, std::int64_t n) {
  // A NaN may be lost here; it still reaches every output through exp(NaN - m) in the sum.
  __m512 m = _mm512_set1_ps(-__builtin_inff());
  std::int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) m = _mm512_max_ps(m, _mm512_loadu_ps(x + i));
  if (i < n) m = _mm512_max_ps(m, _mm512_mask_loadu_ps(_mm512_set1_ps(-__builtin_inff()), tail_mask(n - i), x + i));
  return _mm512_reduce_max_ps(m);
}

__m512d add_as_double(__m512d sum, __m512 v) {
  sum = _mm512_add_pd(sum, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
  return _mm512_add_pd(sum, _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)));
}

// y = exp(x - m); returns the sum of y in double.
double exp_row(const float* x, float* y, std::int64_t n, float m) {
  const __m512 mv = _mm512_set1_ps(m);
  __m512d sum = _mm512_setzero_pd();
  std::int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const __m512 e = exp_nonpositive(_mm512_sub_ps(_mm512_loadu_ps(x + i), mv));
    _mm512_storeu_ps(y + i, e);
    sum = add_as_double(sum, e);
  }
  if (i < n) {
    const __mmask16 k = tail_mask(n - i);
    const __m512 e = _mm512_maskz_mov_ps(k, exp_nonpositive(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), mv)));
    _mm512_mask_storeu_ps(y + i, k, e);
    sum = add_as_double(sum, e);
  }
  return _mm512_reduce_add_pd(sum);
}

void scale_row(float* y, std::int64_t n, float s) {
  const __m512 sv = _mm512_set1_ps(s);
  std::int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_loadu_ps(y + i), sv));
  if (i < n) {
    const __mmask16 k = tail_mask(n - i);
    _mm512_mask_storeu_ps(y + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, y + i), sv));
  }
}

__m512 scaled(__m512 v, ScoreScaling scaling, __m512 s) {
  if (scaling == ScoreScaling::divide) return _mm512_div_ps(v, s);
  if (scaling == ScoreScaling::multiply) return _mm512_mul_ps(v, s);
  return v;
}

// v as it is, rounded: the compiler may not fuse the scaling before it with the mask's
// addition after it into one FMA (GCC contracts across intrinsics), which would round once
// where the unfused ops round twice.
__m512 rounded(__m512 v) {
  __asm__("" : "+v"(v));
  return v;
}

}  // namespace

void attention_softmax_row(float* x, std::int64_t n, ScoreScaling scaling, float s, const float* mask,
                           bool zero_if_masked) {
  const __m512 sv = _mm512_set1_ps(s);
  __m512 m = _mm512_set1_ps(-__builtin_inff());
  std::int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    __m512 v = rounded(scaled(_mm512_loadu_ps(x + i), scaling, sv));
    if (mask) v = _mm512_add_ps(v, _mm512_loadu_ps(mask + i));
    _mm512_storeu_ps(x + i, v);
    m = _mm512_max_ps(m, v);
  }
  if (i < n) {
    const __mmask16 k = tail_mask(n - i);
    __m512 v = rounded(scaled(_mm512_maskz_loadu_ps(k, x + i), scaling, sv));
    if (mask) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, mask + i));
    _mm512_mask_storeu_ps(x + i, k, v);
    m = _mm512_max_ps(m, _mm512_mask_mov_ps(_mm512_set1_ps(-__builtin_inff()), k, v));
  }
  const float max = _mm512_reduce_max_ps(m);
  if (zero_if_masked && max == -__builtin_inff() && all_negative_infinity(x, n)) {
    for (std::int64_t j = 0; j < n; ++j) x[j] = 0.0f;
    return;
  }
  const double total = exp_row(x, x, n, max);
  scale_row(x, n, static_cast<float>(1.0 / total));
}

void softmax_rows(const float* x, float* y, std::int64_t rows, std::int64_t n) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    const float m = row_max(xr, n);
    const double total = exp_row(xr, yr, n, m);
    scale_row(yr, n, static_cast<float>(1.0 / total));
  }
}

}  // namespace kiln::kernels::cpu::avx512
