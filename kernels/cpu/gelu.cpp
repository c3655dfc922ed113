#include "kernels/cpu/gelu.hpp"

#include <cmath>
#include <numbers>

namespace kiln::kernels::cpu {

void gelu(const float* x, float* y, std::int64_t count, bool tanh_approx) {
  // The same expressions as ref::unary, so that only the final rounding to float remains.
  if (tanh_approx) {
    const double k = std::numbers::sqrt2 * std::numbers::inv_sqrtpi;  // sqrt(2/pi)
    for (std::int64_t i = 0; i < count; ++i) {
      const double v = x[i];
      y[i] = static_cast<float>(0.5 * v * (1 + std::tanh(k * (v + 0.044715 * v * v * v))));
    }
    return;
  }
  for (std::int64_t i = 0; i < count; ++i) {
    const double v = x[i];
    y[i] = static_cast<float>(0.5 * v * (1 + std::erf(v * (std::numbers::sqrt2 / 2))));
  }
}

}  // namespace kiln::kernels::cpu
