// Layer norm with AVX2: 4 floats at a time widened to doubles (see layer_norm.hpp); the
// row's last n % 4 values through a zero-padded buffer. Only intrinsics and internal
// functions here (ODR: see softmax_avx512.cpp).
#include "kernels/cpu/intrinsics.hpp"

#include "kernels/cpu/layer_norm.hpp"

namespace kiln::kernels::cpu::avx2 {

namespace {

constexpr std::int64_t kLanes = 4;  // doubles per ymm

// Up to 4 floats from p as doubles, zeros past `count`.
__m256d load(const float* p, std::int64_t count) {
  if (count >= kLanes) return _mm256_cvtps_pd(_mm_loadu_ps(p));
  float buf[kLanes] = {0, 0, 0, 0};
  for (std::int64_t j = 0; j < count; ++j) buf[j] = p[j];
  return _mm256_cvtps_pd(_mm_loadu_ps(buf));
}

void store(float* p, std::int64_t count, __m256d v) {
  const __m128 f = _mm256_cvtpd_ps(v);
  if (count >= kLanes) {
    _mm_storeu_ps(p, f);
    return;
  }
  float buf[kLanes];
  _mm_storeu_ps(buf, f);
  for (std::int64_t j = 0; j < count; ++j) p[j] = buf[j];
}

double horizontal_sum(__m256d v) {
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
  return _mm_cvtsd_f64(s);
}

double row_mean(const float* x, std::int64_t n) {
  __m256d sum = _mm256_setzero_pd();
  for (std::int64_t i = 0; i < n; i += kLanes) sum = _mm256_add_pd(sum, load(x + i, n - i));
  return horizontal_sum(sum) / static_cast<double>(n);
}

double row_variance(const float* x, std::int64_t n, double mean) {
  const __m256d mv = _mm256_set1_pd(mean);
  __m256d sum = _mm256_setzero_pd();
  std::int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const __m256d d = _mm256_sub_pd(load(x + i, kLanes), mv);
    sum = _mm256_fmadd_pd(d, d, sum);
  }
  double total = horizontal_sum(sum);
  for (; i < n; ++i) total += (x[i] - mean) * (x[i] - mean);
  return total / static_cast<double>(n);
}

void normalize_row(const float* x, const float* w, const float* b, float* y, std::int64_t n, double mean,
                   double rstd) {
  const __m256d mv = _mm256_set1_pd(mean), sv = _mm256_set1_pd(rstd);
  for (std::int64_t i = 0; i < n; i += kLanes) {
    __m256d v = _mm256_mul_pd(_mm256_sub_pd(load(x + i, n - i), mv), sv);
    if (w) v = _mm256_mul_pd(v, load(w + i, n - i));
    if (b) v = _mm256_add_pd(v, load(b + i, n - i));
    store(y + i, n - i, v);
  }
}

}  // namespace

void layer_norm_rows(const float* x, const float* w, const float* b, float* y, std::int64_t rows, std::int64_t n,
                     double eps) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    const double mean = row_mean(xr, n);
    const double var = row_variance(xr, n, mean);
    const double rstd = 1 / _mm_cvtsd_f64(_mm_sqrt_pd(_mm_set_sd(var + eps)));
    normalize_row(xr, w, b, y + r * n, n, mean, rstd);
  }
}

}  // namespace kiln::kernels::cpu::avx2
