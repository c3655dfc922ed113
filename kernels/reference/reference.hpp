// Reference kernels — one plain, obviously right implementation of every op kiln runs.
//
// They are the oracle every fast kernel is tested against, so they favour clarity over
// speed: elementwise work goes through load_double/load_int (any strides, any dtype),
// reductions accumulate in double, and nothing here uses approximations. Shapes follow
// PyTorch's rules (broadcasting, negative dims); the caller (the executor) has already
// decided result dtypes with PyTorch's promotion rules and passes them in. Every kernel
// checks its arguments and throws kiln::Error (bad_input) with PyTorch-like wording on a
// mismatch ("the size of tensor a (3) must match the size of tensor b (7) at
// non-singleton dimension 1"); gathers are bounds-checked.
//
// View kernels (view, permute, transpose, expand, unsqueeze, squeeze, select, slice,
// narrow, split, flatten when possible) return tensors sharing the input's buffer, as
// PyTorch's do; everything else returns a new contiguous tensor.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "kernels/tensor.hpp"

namespace kiln::kernels::ref {

// A Python number as TorchScript passes it (`x + 1`, `masked_fill(m, -inf)`).
struct Scalar {
  enum class Kind { integer, floating, boolean } kind = Kind::integer;
  std::int64_t i = 0;
  double f = 0;
  bool b = false;

  static Scalar of_int(std::int64_t v) { return Scalar{Kind::integer, v, 0, false}; }
  static Scalar of_double(double v) { return Scalar{Kind::floating, 0, v, false}; }
  static Scalar of_bool(bool v) { return Scalar{Kind::boolean, 0, 0, v}; }
  double as_double() const { return kind == Kind::floating ? f : kind == Kind::integer ? static_cast<double>(i) : b; }
  std::int64_t as_int() const { return kind == Kind::integer ? i : kind == Kind::floating ? static_cast<std::int64_t>(f) : b; }
};

// --- shapes ---
// The broadcast of two shapes; throws with PyTorch's message when they do not broadcast.
std::vector<std::int64_t> broadcast_shapes(const std::vector<std::int64_t>& a, const std::vector<std::int64_t>& b);
// `d` wrapped into [0, rank); throws "Dimension out of range (expected to be in range of
// [-2, 1], but got 2)" otherwise. rank 0 is treated as rank 1, as PyTorch does.
std::int64_t wrap_dim(std::int64_t d, std::int64_t rank);

// --- elementwise ---
enum class BinaryOp {
  add, sub, mul, div,       // div is true division (compute dtype floating)
  div_trunc, div_floor,     // rounding_mode 'trunc' / 'floor'
  remainder, pow,
  eq, ne, lt, le, gt, ge,   // results are bool; compared in the compute dtype
  logical_and, logical_or,
  maximum, minimum,
};
// a op b with broadcasting, computed in `compute` (PyTorch's result_type of the operands)
// and stored as `out` (bool for comparisons, else compute). `alpha` scales b (add, sub).
// Operands convert to `compute` first, except 0-dim tensors and scalars, which go to its
// opmath type (float for float16/bfloat16), as PyTorch's CPU kernels take them. Integer
// compute dtypes wrap on overflow; integer div_trunc, div_floor and remainder by zero
// throw "ZeroDivisionError"; integer pow with a tensor exponent gives 1/x rounded toward
// zero for negative exponents (PyTorch's powi), with a negative Scalar exponent it throws.
Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b, DType compute, DType out, double alpha = 1);
// The same with b a scalar (it does not take part in broadcasting).
Tensor binary_scalar(BinaryOp op, const Tensor& a, Scalar b, DType compute, DType out, double alpha = 1);
// b op a, for rsub and pow(Scalar, Tensor).
Tensor binary_scalar_left(BinaryOp op, Scalar a, const Tensor& b, DType compute, DType out, double alpha = 1);

enum class UnaryOp {
  neg, abs, relu, tanh, sigmoid, silu, gelu_erf, gelu_tanh,
  sqrt, rsqrt, exp, log, erf, logical_not, bitwise_not,
};
// Computed in `out` (float ops on integer inputs: the caller passes float32).
Tensor unary(UnaryOp op, const Tensor& a, DType out);

// The result keeps a's dtype: where PyTorch would promote (an integer tensor, a fractional
// bound) the executor casts a first. On integer tensors the bounds truncate to int64.
Tensor clamp(const Tensor& a, std::optional<double> lo, std::optional<double> hi);
// where(cond, a, b) with broadcasting of all three.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b, DType out);
// self with value where mask is true; mask broadcasts to self (the result has self's
// shape broadcast with mask's, as PyTorch's out-of-place masked_fill).
Tensor masked_fill(const Tensor& self, const Tensor& mask, Scalar value);
Tensor masked_fill(const Tensor& self, const Tensor& mask, const Tensor& value);  // 0-dim value
// A contiguous copy converted to `dtype` (aten::to, type_as, contiguous).
Tensor cast(const Tensor& a, DType dtype);
Tensor contiguous(const Tensor& a);

// --- normalization, activation over a dim ---
Tensor softmax(const Tensor& a, std::int64_t dim, DType out);
Tensor log_softmax(const Tensor& a, std::int64_t dim, DType out);
// Normalizes over the last `normalized_ndim` dims, whose sizes must equal `normalized_shape`.
Tensor layer_norm(const Tensor& x, const std::vector<std::int64_t>& normalized_shape, const Tensor* weight,
                  const Tensor* bias, double eps);

// --- linear algebra ---
// x @ w^T + b; x [..., in], w [out, in], b [out] (or broadcastable to it), one dtype.
Tensor linear(const Tensor& x, const Tensor& w, const Tensor* b);
// torch.matmul semantics (1-D and batched broadcasting cases).
Tensor matmul(const Tensor& a, const Tensor& b);
// rows of `weight` by `indices` (any integer dtype, any shape); throws naming the bad
// index and the table size when an index is outside [0, rows).
Tensor embedding(const Tensor& weight, const Tensor& indices);
// softmax(q k^T * scale + mask) v over the last two dims; mask bool (true keeps) or
// float (float32 or q's dtype; added), broadcast to [..., Lq, Lk]; scale defaults to
// 1/sqrt(head size); is_causal keeps key j <= query i. A query row whose scores are all
// -inf (fully masked, or no keys) gives zeros, as PyTorch 2.x's math path
// (_safe_softmax), not the NaN a plain softmax would give.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor* mask,
                                    bool is_causal, std::optional<double> scale);

// --- reductions and scans ---
// Sum over `dims` (empty: all), keeping reduced dims as size 1 when keepdim.
Tensor sum(const Tensor& a, const std::vector<std::int64_t>& dims, bool keepdim, DType out);
Tensor mean(const Tensor& a, const std::vector<std::int64_t>& dims, bool keepdim, DType out);
// p-norm (p = 2 default) over dims (empty: all).
Tensor norm(const Tensor& a, double p, const std::vector<std::int64_t>& dims, bool keepdim);
Tensor max_all(const Tensor& a);
Tensor min_all(const Tensor& a);
// Index of the maximum over `dim` (nullopt: flattened), int64.
Tensor argmax(const Tensor& a, std::optional<std::int64_t> dim, bool keepdim);
Tensor cumsum(const Tensor& a, std::int64_t dim, DType out);

// --- making tensors ---
Tensor full(const std::vector<std::int64_t>& sizes, Scalar value, DType dtype);
Tensor arange(double start, double end, double step, DType dtype);
Tensor cat(const std::vector<Tensor>& tensors, std::int64_t dim);
Tensor stack(const std::vector<Tensor>& tensors, std::int64_t dim);
Tensor index_select(const Tensor& a, std::int64_t dim, const Tensor& index);

// --- views (share the buffer) ---
// view: sizes may hold one -1; needs strides compatible with the new shape (PyTorch's
// "view size is not compatible with input tensor's size and stride" otherwise).
Tensor view(const Tensor& a, std::vector<std::int64_t> sizes);
// reshape: a view when possible, else a contiguous copy.
Tensor reshape(const Tensor& a, std::vector<std::int64_t> sizes);
Tensor permute(const Tensor& a, const std::vector<std::int64_t>& dims);
Tensor transpose(const Tensor& a, std::int64_t d0, std::int64_t d1);
// sizes may hold -1 (keep) and new leading dims; a non-1 dim must match.
Tensor expand(const Tensor& a, const std::vector<std::int64_t>& sizes);
Tensor unsqueeze(const Tensor& a, std::int64_t dim);
Tensor squeeze(const Tensor& a, std::optional<std::int64_t> dim);
Tensor select(const Tensor& a, std::int64_t dim, std::int64_t index);
// Python slicing: start/end clamp to the size, nullopt means the edge; step >= 1.
Tensor slice(const Tensor& a, std::int64_t dim, std::optional<std::int64_t> start, std::optional<std::int64_t> end,
             std::int64_t step);
Tensor narrow(const Tensor& a, std::int64_t dim, std::int64_t start, std::int64_t length);
std::vector<Tensor> split(const Tensor& a, std::int64_t split_size, std::int64_t dim);
std::vector<Tensor> chunk(const Tensor& a, std::int64_t chunks, std::int64_t dim);
// flatten(start, end): a view when the dims are contiguous among themselves, else a copy.
Tensor flatten(const Tensor& a, std::int64_t start_dim, std::int64_t end_dim);

}  // namespace kiln::kernels::ref
