// The per-instruction-set halves of kernels/cpu/elementwise.hpp: elementwise_<isa>.cpp,
// each compiled with its set's flags (kernels/cpu/fast.hpp explains the rules those units
// follow). elementwise.cpp checks shapes and dtypes, walks strides and splits the work
// over threads; these only run flat loops.
#pragma once

#include <cstdint>

namespace kiln::kernels::cpu {

// What binary_row computes for each element: y = a + b, a - b, a * b, a / b, or
// fma(b, alpha, a) rounded once (add and sub with alpha != 1: sub passes -alpha).
enum class BinaryKernel { add, sub, mul, div, add_scaled };

// The rational approximation of gelu_rows (erf mode): G(t) = P(t) / Q(t) approximates
// erfc(t / sqrt 2) exp(t^2 / 2) / 2 for t in [0, 16] with relative error below 1.3e-10
// (a linearized least-squares fit on 6000 Chebyshev nodes; extrapolated to [16, 40] it is
// still within 1e-7, and beyond 16 the factor exp(-t^2/2) < 1e-55 makes it irrelevant).
// With it, gelu(x) = x - x e^(-x^2/2) G(x) for x > 0 and x e^(-x^2/2) G(-x) for x <= 0:
// the second form keeps full relative accuracy in the far negative tail.
// Internal linkage (const), so each unit has its own copy of the data and no symbol.
namespace gelu_coefficients {
constexpr double kP[] = {0.4999999999351177,   0.5124047839111836,   0.25495359689314656,
                         0.07318285002246497,  0.012070890029435732, 0.0009348673305578092};
constexpr double kQ[] = {1.0,                  1.8226941166097228,  1.4642068672646522, 0.669247174666879,
                         0.1857900591240499,   0.030257092313875578, 0.0023433668665874263};
// (e^s - 1 - s) / s^2 for s in [-ln2/2, ln2/2], relative error 2.7e-9 (times s^2 < 0.13 in
// e^s, so e^s is good to 4e-10).
constexpr double kExp[] = {0.5000000013379525,    0.16666666532347738,   0.04166646552769335,
                           0.008333360720966933,  0.0013933597578237832, 0.0001985779518441119};
constexpr double kLog2e = 1.4426950408889634;
constexpr double kLn2 = 0.6931471805599453;
// The exp argument is capped here: e^-700 is still a normal double, and anything it
// multiplies (|x| < 2^128) then rounds to 0 in float.
constexpr double kMaxExpArg = 700;
constexpr double kTanhScale = 2 * 0.7978845608028654;  // 2 sqrt(2/pi): gelu_tanh = x sigmoid(2u)
constexpr double kTanhCubic = 0.044715;
}  // namespace gelu_coefficients

namespace scalar {
// y[i] = a[i * sa] op b[i * sb] for i in [0, n); sa, sb are 0 (broadcast), 1 or any
// stride. y does not overlap a or b.
void binary_row(BinaryKernel op, const float* a, std::int64_t sa, const float* b, std::int64_t sb, float* y,
                std::int64_t n, float alpha);
// GELU of n contiguous floats (erf or tanh form).
void gelu_f32(const float* x, float* y, std::int64_t n, bool tanh_approx);
}  // namespace scalar
namespace avx2 {
void binary_row(BinaryKernel op, const float* a, std::int64_t sa, const float* b, std::int64_t sb, float* y,
                std::int64_t n, float alpha);
void gelu_f32(const float* x, float* y, std::int64_t n, bool tanh_approx);
}  // namespace avx2
namespace avx512 {
void binary_row(BinaryKernel op, const float* a, std::int64_t sa, const float* b, std::int64_t sb, float* y,
                std::int64_t n, float alpha);
void gelu_f32(const float* x, float* y, std::int64_t n, bool tanh_approx);
}  // namespace avx512

}  // namespace kiln::kernels::cpu
