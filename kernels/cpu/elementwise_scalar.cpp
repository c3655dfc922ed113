// The baseline (x86-64, SSE2) elementwise loops: binary_row from binary_loops.hpp, and GELU
// one element at a time with the same double arithmetic as the vector versions (without
// FMA, so the last bit may differ from theirs; every version is within 1 ulp of the exact
// value).
#include <bit>
#include <cmath>
#include <cstdint>

#include "kernels/cpu/binary_loops.hpp"
#include "kernels/cpu/elementwise_isa.hpp"

namespace kiln::kernels::cpu::scalar {

namespace {

namespace c = gelu_coefficients;

// e^-y for finite y in [0, kMaxExpArg]: 2^k e^s with k = round(-y / ln 2), |s| <= ln2/2
// (a hair more from the roundings here, which the polynomial tolerates).
double exp_neg(double y) {
  constexpr double magic = 0x1.8p52;  // adding it rounds to an integer, ties to even
  const double k = (y * -c::kLog2e + magic) - magic;
  const double s = -y - k * c::kLn2;
  double p = c::kExp[5];
  for (int i = 4; i >= 0; --i) p = p * s + c::kExp[i];
  const double es = (s * s * p + s) + 1;
  const auto bits = static_cast<std::uint64_t>(static_cast<std::int64_t>(k) + 1023) << 52;
  return es * std::bit_cast<double>(bits);
}

template <std::size_t N>
double horner(const double (&k)[N], double t) {
  double p = k[N - 1];
  for (std::size_t i = N - 1; i-- > 0;) p = p * t + k[i];
  return p;
}

// +inf gives +inf; -inf and NaN give NaN (the reference's 0.5 x (1 + erf x/sqrt 2)).
float non_finite(float x) { return x > 0 ? x : x * 0.0f; }

float gelu_erf(float x) {
  if (!(std::fabs(x) < INFINITY)) return non_finite(x);
  const double v = x;
  const double e = exp_neg(std::fmin(0.5 * v * v, c::kMaxExpArg));
  const double t = std::fmin(std::fabs(v), 16.0);
  const double corr = v * (e * (horner(c::kP, t) / horner(c::kQ, t)));  // x erfc(|x|/sqrt 2) / 2
  return static_cast<float>(x > 0 ? v - corr : corr);
}

float gelu_tanh(float x) {
  if (!(std::fabs(x) < INFINITY)) return non_finite(x);
  const double v = x;
  // gelu_tanh(x) = x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3); w = e^-|2u| <= 1.
  const double w = exp_neg(std::fmin(std::fabs(c::kTanhScale * v * (c::kTanhCubic * v * v + 1)), c::kMaxExpArg));
  return static_cast<float>((x >= 0 ? v : v * w) / (1 + w));
}

}  // namespace

void binary_row(BinaryKernel op, const float* a, std::int64_t sa, const float* b, std::int64_t sb, float* y,
                std::int64_t n, float alpha) {
  binary_row_loops(op, a, sa, b, sb, y, n, alpha);
}

void gelu_f32(const float* x, float* y, std::int64_t n, bool tanh_approx) {
  if (tanh_approx) {
    for (std::int64_t i = 0; i < n; ++i) y[i] = gelu_tanh(x[i]);
  } else {
    for (std::int64_t i = 0; i < n; ++i) y[i] = gelu_erf(x[i]);
  }
}

}  // namespace kiln::kernels::cpu::scalar
