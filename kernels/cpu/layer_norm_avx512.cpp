// Layer norm with AVX-512: 8 floats at a time widened to doubles (see layer_norm.hpp), the
// row's tail under a mask. Only intrinsics and internal functions here (ODR: see
// softmax_avx512.cpp).
#include "kernels/cpu/intrinsics.hpp"

#include "kernels/cpu/layer_norm.hpp"

namespace kiln::kernels::cpu::avx512 {

namespace {

constexpr std::int64_t kLanes = 8;  // doubles per zmm

__mmask8 lanes(std::int64_t i, std::int64_t n) {
  return n - i >= kLanes ? static_cast<__mmask8>(0xFF) : static_cast<__mmask8>((1u << (n - i)) - 1u);
}

__m512d load(const float* p, __mmask8 k) { return _mm512_cvtps_pd(_mm256_maskz_loadu_ps(k, p)); }

double row_mean(const float* x, std::int64_t n) {
  __m512d sum = _mm512_setzero_pd();
  for (std::int64_t i = 0; i < n; i += kLanes) sum = _mm512_add_pd(sum, load(x + i, lanes(i, n)));
  return _mm512_reduce_add_pd(sum) / static_cast<double>(n);
}

double row_variance(const float* x, std::int64_t n, double mean) {
  const __m512d mv = _mm512_set1_pd(mean);
  __m512d sum = _mm512_setzero_pd();
  for (std::int64_t i = 0; i < n; i += kLanes) {
    const __mmask8 k = lanes(i, n);
    const __m512d d = _mm512_maskz_sub_pd(k, load(x + i, k), mv);  // padding lanes stay 0
    sum = _mm512_fmadd_pd(d, d, sum);
  }
  return _mm512_reduce_add_pd(sum) / static_cast<double>(n);
}

void normalize_row(const float* x, const float* w, const float* b, float* y, std::int64_t n, double mean,
                   double rstd) {
  const __m512d mv = _mm512_set1_pd(mean), sv = _mm512_set1_pd(rstd);
  for (std::int64_t i = 0; i < n; i += kLanes) {
    const __mmask8 k = lanes(i, n);
    __m512d v = _mm512_mul_pd(_mm512_sub_pd(load(x + i, k), mv), sv);
    if (w) v = _mm512_mul_pd(v, load(w + i, k));
    if (b) v = _mm512_add_pd(v, load(b + i, k));
    _mm256_mask_storeu_ps(y + i, k, _mm512_cvtpd_ps(v));
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

}  // namespace kiln::kernels::cpu::avx512
