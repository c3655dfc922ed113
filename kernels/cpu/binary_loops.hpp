// The loops behind binary_row, for elementwise_<isa>.cpp only: each includes this file
// and gets its own copy (an unnamed namespace: internal linkage, no symbol the linker could
// share between units), which its compiler flags vectorize. Plain loops, no library calls:
// the compiler turns them into SSE2, AVX2 or AVX-512 code for the contiguous and broadcast
// cases; a strided operand takes the scalar loop.
#pragma once

#include <cstdint>

#include "kernels/cpu/elementwise_isa.hpp"

namespace kiln::kernels::cpu {
namespace {

// y[i] = f(a[i * sa], b[i * sb]), with the stride-1 and stride-0 cases spelled out so that
// each is a simple vectorizable loop. y never overlaps a or b (a fresh output).
template <class F>
inline void binary_loop(const float* __restrict a, std::int64_t sa, const float* __restrict b, std::int64_t sb,
                        float* __restrict y, std::int64_t n, F f) {
  if (sa == 1 && sb == 1) {
    for (std::int64_t i = 0; i < n; ++i) y[i] = f(a[i], b[i]);
  } else if (sa == 1 && sb == 0) {
    const float s = *b;
    for (std::int64_t i = 0; i < n; ++i) y[i] = f(a[i], s);
  } else if (sa == 0 && sb == 1) {
    const float s = *a;
    for (std::int64_t i = 0; i < n; ++i) y[i] = f(s, b[i]);
  } else {
    for (std::int64_t i = 0; i < n; ++i) y[i] = f(a[i * sa], b[i * sb]);
  }
}

// One rounding per element in every case, so the result does not depend on the vector
// width: __builtin_fmaf is a fused multiply-add (an instruction under -mfma, libm's
// correctly rounded fmaf otherwise), never a multiply then an add.
inline void binary_row_loops(BinaryKernel op, const float* a, std::int64_t sa, const float* b, std::int64_t sb,
                             float* y, std::int64_t n, float alpha) {
  switch (op) {
    case BinaryKernel::add: return binary_loop(a, sa, b, sb, y, n, [](float u, float v) { return u + v; });
    case BinaryKernel::sub: return binary_loop(a, sa, b, sb, y, n, [](float u, float v) { return u - v; });
    case BinaryKernel::mul: return binary_loop(a, sa, b, sb, y, n, [](float u, float v) { return u * v; });
    case BinaryKernel::div: return binary_loop(a, sa, b, sb, y, n, [](float u, float v) { return u / v; });
    case BinaryKernel::add_scaled:
      return binary_loop(a, sa, b, sb, y, n, [alpha](float u, float v) { return __builtin_fmaf(v, alpha, u); });
  }
}

}  // namespace
}  // namespace kiln::kernels::cpu
