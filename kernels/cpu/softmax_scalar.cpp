// The baseline softmax: the reference's arithmetic (double exp and sum) on float rows.
#include <cmath>
#include <limits>

#include "kernels/cpu/softmax.hpp"

namespace kiln::kernels::cpu::scalar {

namespace {

void softmax_row(const float* x, float* y, std::int64_t n) {
  // Any NaN wins (the whole row becomes NaN below), as in the reference.
  double m = -std::numeric_limits<double>::infinity();
  for (std::int64_t i = 0; i < n; ++i) m = std::isnan(m) || x[i] <= m ? m : x[i];
  double total = 0;
  for (std::int64_t i = 0; i < n; ++i) total += std::exp(x[i] - m);
  for (std::int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(std::exp(x[i] - m) / total);
}

}  // namespace

void attention_softmax_row(float* x, std::int64_t n, ScoreScaling scaling, float s, const float* mask,
                           bool zero_if_masked) {
  bool masked = zero_if_masked;
  for (std::int64_t i = 0; i < n; ++i) {
    float v = scaling == ScoreScaling::divide ? x[i] / s : scaling == ScoreScaling::multiply ? x[i] * s : x[i];
    if (mask) v += mask[i];
    x[i] = v;
    masked = masked && v == -std::numeric_limits<float>::infinity();
  }
  if (masked) {
    for (std::int64_t i = 0; i < n; ++i) x[i] = 0.0f;
    return;
  }
  softmax_row(x, x, n);
}

void softmax_rows(const float* x, float* y, std::int64_t rows, std::int64_t n) {
  for (std::int64_t r = 0; r < rows; ++r) softmax_row(x + r * n, y + r * n, n);
}

}  // namespace kiln::kernels::cpu::scalar

namespace kiln::kernels::cpu {

bool all_negative_infinity(const float* x, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    if (!(x[i] == -std::numeric_limits<float>::infinity())) return false;
  }
  return true;
}

}  // namespace kiln::kernels::cpu
