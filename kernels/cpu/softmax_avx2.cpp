// Softmax with AVX2 and FMA: the same scheme as softmax_avx512.cpp on 8 lanes. A row's
// last n % 8 values go through a small buffer padded with -inf (exp gives 0 there), so
// they take the vector code too. Only intrinsics and internal functions here (ODR: see
// softmax_avx512.cpp).
#include "kernels/cpu/intrinsics.hpp"

#include "kernels/cpu/softmax.hpp"

namespace kiln::kernels::cpu::avx2 {

namespace {

constexpr std::int64_t kLanes = 8;

// exp(x) for x <= 0; see softmax_avx512.cpp.
__m256 exp_nonpositive(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-87.33654f);
  const __m256 underflow = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
  x = _mm256_max_ps(lo, x);  // max_ps returns its second operand for NaN, so NaN survives
  const __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  const __m256 r2 = _mm256_mul_ps(r, r);
  p = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
  const __m256 result = _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
  return _mm256_andnot_ps(underflow, result);
}

// The row's last `count` (< 8) values, padded with `fill`.
__m256 load_tail(const float* x, std::int64_t count, float fill) {
  float buf[kLanes];
  for (std::int64_t j = 0; j < kLanes; ++j) buf[j] = j < count ? x[j] : fill;
  return _mm256_loadu_ps(buf);
}

void store_tail(float* y, std::int64_t count, __m256 v) {
  float buf[kLanes];
  _mm256_storeu_ps(buf, v);
  for (std::int64_t j = 0; j < count; ++j) y[j] = buf[j];
}

float horizontal_max(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

double horizontal_sum(__m256d v) {
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
  return _mm_cvtsd_f64(s);
}

float row_max(const float* x, std::int64_t n) {
  // A NaN may be lost here; it still reaches every output through exp(NaN - m) in the sum.
  const float neg_inf = -__builtin_inff();
  __m256 m = _mm256_set1_ps(neg_inf);
  std::int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
  if (i < n) m = _mm256_max_ps(m, load_tail(x + i, n - i, neg_inf));
  return horizontal_max(m);
}

__m256d add_as_double(__m256d sum, __m256 v) {
  sum = _mm256_add_pd(sum, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
  return _mm256_add_pd(sum, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}

// y = exp(x - m); returns the sum of y in double.
double exp_row(const float* x, float* y, std::int64_t n, float m) {
  const __m256 mv = _mm256_set1_ps(m);
  __m256d sum = _mm256_setzero_pd();
  std::int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const __m256 e = exp_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv));
    _mm256_storeu_ps(y + i, e);
    sum = add_as_double(sum, e);
  }
  if (i < n) {
    // Padding -inf minus a finite or +inf max gives exp 0; a -inf max makes the row NaN anyway.
    const __m256 e = exp_nonpositive(_mm256_sub_ps(load_tail(x + i, n - i, -__builtin_inff()), mv));
    store_tail(y + i, n - i, e);
    sum = add_as_double(sum, e);
  }
  return horizontal_sum(sum);
}

void scale_row(float* y, std::int64_t n, float s) {
  const __m256 sv = _mm256_set1_ps(s);
  std::int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), sv));
  for (; i < n; ++i) y[i] *= s;
}

__m256 scaled(__m256 v, ScoreScaling scaling, __m256 s) {
  if (scaling == ScoreScaling::divide) return _mm256_div_ps(v, s);
  if (scaling == ScoreScaling::multiply) return _mm256_mul_ps(v, s);
  return v;
}

float scaled(float v, ScoreScaling scaling, float s) {
  if (scaling == ScoreScaling::divide) v = v / s;
  if (scaling == ScoreScaling::multiply) v = v * s;
  __asm__("" : "+x"(v));  // rounded here, as rounded() below
  return v;
}

// v as it is, rounded: the compiler may not fuse the scaling before it with the mask's
// addition after it into one FMA (GCC contracts across intrinsics), which would round once
// where the unfused ops round twice.
__m256 rounded(__m256 v) {
  __asm__("" : "+x"(v));
  return v;
}

}  // namespace

void attention_softmax_row(float* x, std::int64_t n, ScoreScaling scaling, float s, const float* mask,
                           bool zero_if_masked) {
  const __m256 sv = _mm256_set1_ps(s);
  std::int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    __m256 v = rounded(scaled(_mm256_loadu_ps(x + i), scaling, sv));
    if (mask) v = _mm256_add_ps(v, _mm256_loadu_ps(mask + i));
    _mm256_storeu_ps(x + i, v);
  }
  for (; i < n; ++i) x[i] = mask ? scaled(x[i], scaling, s) + mask[i] : scaled(x[i], scaling, s);
  const float max = row_max(x, n);
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

}  // namespace kiln::kernels::cpu::avx2
