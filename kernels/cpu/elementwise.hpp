// Fast float32 elementwise kernels: add/sub/mul/div with broadcasting, GELU and the
// embedding gather, behind the same door as fast.hpp: each entry point returns true with
// `out` a new contiguous tensor (from Tensor::empty, so the executor's arena is used), or
// false, leaving `out` alone, for any case it does not handle; the caller then runs the
// reference kernel (kernels/reference/reference.hpp), which also produces PyTorch's errors.
//
// Results match the reference kernels bitwise for add, sub, mul and div (alpha 1) and for
// embedding, and within 1 ulp for GELU (see gelu), at every instruction set level and
// for every thread count (work is split over independent outputs only).
#pragma once

#include <cstdint>

#include "kernels/cpu/isa.hpp"
#include "kernels/tensor.hpp"

namespace kiln::kernels::fast {

using cpu::Isa;

enum class BinaryOp { add, sub, mul, div };

// out = a op b with PyTorch's broadcasting over any strides (0-stride expanded views,
// permuted inputs), as IEEE float32 operations: add is a + b, sub a - b, mul a * b, div
// a / b (true division, never a multiplication by a reciprocal), so results are
// bitwise PyTorch's. For add and sub, alpha scales b; with (float)alpha != 1 the result
// is fma(b, ±(float)alpha, a), rounded once, as PyTorch's vectorized CPU kernel computes it
// (ufunc::add: vec::fmadd(other, alpha, self); sub is add with -alpha). mul and div ignore
// alpha.
//
// Handles a and b both float32, or one float32 tensor with at least one dim and the other
// a 0-dim float64 tensor (a Python float TorchScript stored as a constant), which is
// rounded to float first as PyTorch does with a CPU scalar; the result is float32 in both
// cases, whatever the tensors' `wrapped` flags. Returns false for any other dtype mix, for
// shapes that do not broadcast, and for tensors without a buffer.
bool binary(BinaryOp op, const Tensor& a, const Tensor& b, double alpha, Tensor& out, Isa isa = cpu::active_isa());

// out = a op scalar (aten::add.Scalar, div.Scalar...): a float32 (any shape and strides),
// the scalar a Python number, rounded to float first as PyTorch (and ref::binary_scalar)
// does for a float32 tensor. An integer Scalar must be passed as a double only when it is
// exact in double (|i| <= 2^53); otherwise call the reference. Returns false when a is not
// float32.
bool binary_scalar(BinaryOp op, const Tensor& a, double scalar, double alpha, Tensor& out,
                   Isa isa = cpu::active_isa());

// GELU of a contiguous float32 tensor (any rank, 0-dim included): exact (erf) or, with
// tanh_approx, x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). Vector code whose inner
// arithmetic is double (e^-y by range reduction and a polynomial, erfc by a rational
// approximation of relative error 1.3e-10; see elementwise_isa.hpp), rounded once to
// float: within 0.51 ulp of the exact value for every float at every level (checked over
// all 2^32), the far negative tail included, where x/2 (1 + erf) cancels: ref::unary
// loses that tail below about -6.5 (absolute errors under 1e-16), PyTorch from about -3
// (its 1 + erff: gelu(-5) gives -1.19e-6, -1.43e-6 exactly; -0 from about -5.9). +inf gives
// +inf, -inf and NaN give NaN, as the reference (PyTorch's erf mode gives NaN for +inf).
// Returns false when x is not float32 or not contiguous.
bool gelu(const Tensor& x, bool tanh_approx, Tensor& out, Isa isa = cpu::active_isa());

// torch.embedding forward: out[..., :] = weight[indices[...], :], weight float32 [rows,
// dim] contiguous, indices int64 or int32 of any shape and strides; out has shape
// indices.sizes + [dim]. padding_idx only affects the gradient, so the forward has none
// (as ref::embedding). Returns false when an index is outside [0, rows) (the reference then
// names it) or the types or layout differ.
bool embedding(const Tensor& weight, const Tensor& indices, Tensor& out);

}  // namespace kiln::kernels::fast
