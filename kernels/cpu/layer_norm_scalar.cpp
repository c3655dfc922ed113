// The baseline layer norm: the reference's arithmetic (two passes in double) on float rows.
#include <cmath>

#include "kernels/cpu/layer_norm.hpp"

namespace kiln::kernels::cpu::scalar {

void layer_norm_rows(const float* x, const float* w, const float* b, float* y, std::int64_t rows, std::int64_t n,
                     double eps) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    double mean = 0;
    for (std::int64_t i = 0; i < n; ++i) mean += xr[i];
    mean /= static_cast<double>(n);
    double var = 0;
    for (std::int64_t i = 0; i < n; ++i) var += (xr[i] - mean) * (xr[i] - mean);
    var /= static_cast<double>(n);
    const double rstd = 1 / std::sqrt(var + eps);
    for (std::int64_t i = 0; i < n; ++i) {
      double v = (xr[i] - mean) * rstd;
      if (w) v *= w[i];
      if (b) v += b[i];
      yr[i] = static_cast<float>(v);
    }
  }
}

}  // namespace kiln::kernels::cpu::scalar
