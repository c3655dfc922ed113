// GELU on `count` contiguous float32 values: x/2 * (1 + erf(x/sqrt 2)), or with
// tanh_approx x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))). The oracle is ref::unary
// (gelu_erf, gelu_tanh).
//
// One version for every instruction set, on purpose: the transcendental is computed per
// element in double with libm's erf and tanh (as the reference does) and rounded once, so
// results match the reference exactly. A vectorized float erf/tanh would be faster, but
// proving it within 2 ulp over all floats is work for later; GELU is a small share of a
// BERT layer next to its four GEMMs.
#pragma once

#include <cstdint>

namespace kiln::kernels::cpu {
void gelu(const float* x, float* y, std::int64_t count, bool tanh_approx);
}  // namespace kiln::kernels::cpu
