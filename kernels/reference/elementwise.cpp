// Elementwise kernels: binary and unary ops, clamp, where, masked_fill, casts.
//
// Floating compute dtypes compute in double and round the result to the compute dtype:
// for +, -, *, / and sqrt that is exactly PyTorch's float32 result, for transcendental
// functions the correctly rounded one (PyTorch's own are within an ulp or so). Operands are
// first converted to the compute dtype as PyTorch's TensorIterator does, except 0-dim
// tensors and Python scalars, which its CPU kernels take in opmath (float for half and
// bfloat16: half(3) * 0.1 is 0.30005, not 0.29980). Integer compute dtypes compute in int64
// through uint64, so overflow wraps as PyTorch's does and large values stay exact.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

#include "kernels/reference/checks.hpp"
#include "kernels/reference/indexing.hpp"
#include "kernels/reference/reference.hpp"

namespace kiln::kernels::ref {

namespace {

using Offsets2 = std::array<std::int64_t, 2>;

bool gives_bool(BinaryOp op) {
  switch (op) {
    case BinaryOp::eq:
    case BinaryOp::ne:
    case BinaryOp::lt:
    case BinaryOp::le:
    case BinaryOp::gt:
    case BinaryOp::ge:
    case BinaryOp::logical_and:
    case BinaryOp::logical_or: return true;
    default: return false;
  }
}

// PyTorch's div_floor_floating: floor of the exact quotient, nudged like Python's //.
double floor_divide(double x, double y) {
  if (y == 0) return x / y;
  const double mod = std::fmod(x, y);
  double div = (x - mod) / y;
  if (mod != 0 && (y < 0) != (mod < 0)) div -= 1;
  if (div == 0) return std::copysign(0.0, x / y);
  double floored = std::floor(div);
  if (div - floored > 0.5) floored += 1;
  return floored;
}

// Python's %: the result takes the divisor's sign.
double python_remainder(double x, double y) {
  double mod = std::fmod(x, y);
  if (mod != 0 && (y < 0) != (mod < 0)) mod += y;
  return mod;
}

// The comparisons and logical ops, the same in every compute type.
template <class T>
bool compare(BinaryOp op, T x, T y) {
  switch (op) {
    case BinaryOp::eq: return x == y;
    case BinaryOp::ne: return x != y;
    case BinaryOp::lt: return x < y;
    case BinaryOp::le: return x <= y;
    case BinaryOp::gt: return x > y;
    case BinaryOp::ge: return x >= y;
    case BinaryOp::logical_and: return x != 0 && y != 0;
    case BinaryOp::logical_or: return x != 0 || y != 0;
    default: return false;
  }
}

double float_binary(BinaryOp op, double x, double y, double alpha, DType compute) {
  switch (op) {
    case BinaryOp::add: return x + alpha * y;
    case BinaryOp::sub: return x - alpha * y;
    case BinaryOp::mul: return x * y;
    case BinaryOp::div: return x / y;
    // The quotient is rounded to the compute type first, as PyTorch computes it there:
    // trunc(7.0f / 7.0000005f) must see the float quotient 1, not 0.99999993.
    case BinaryOp::div_trunc: return std::trunc(round_to(opmath(compute), x / y));
    case BinaryOp::div_floor: return floor_divide(x, y);
    case BinaryOp::remainder: return python_remainder(x, y);
    case BinaryOp::pow: return std::pow(x, y);
    case BinaryOp::eq:
    case BinaryOp::ne:
    case BinaryOp::lt:
    case BinaryOp::le:
    case BinaryOp::gt:
    case BinaryOp::ge:
    case BinaryOp::logical_and:
    case BinaryOp::logical_or: return compare(op, x, y);
    // NaN wins; otherwise std::max/min's choice between -0 and 0, as PyTorch.
    case BinaryOp::maximum: return std::isnan(x) || std::isnan(y) ? std::nan("") : (x < y ? y : x);
    case BinaryOp::minimum: return std::isnan(x) || std::isnan(y) ? std::nan("") : (y < x ? y : x);
  }
  return 0;
}

std::int64_t wrapping_add(std::int64_t a, std::int64_t b) {
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(a) + static_cast<std::uint64_t>(b));
}
std::int64_t wrapping_mul(std::int64_t a, std::int64_t b) {
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(a) * static_cast<std::uint64_t>(b));
}
std::int64_t wrapping_neg(std::int64_t a) { return static_cast<std::int64_t>(0 - static_cast<std::uint64_t>(a)); }

void check_divisor(std::int64_t y) {
  if (y == 0) fail("ZeroDivisionError");
}

// x / -1 is negation, done apart because INT64_MIN / -1 is undefined in C++ (it wraps in
// PyTorch).
std::int64_t truncating_divide(std::int64_t x, std::int64_t y) {
  check_divisor(y);
  return y == -1 ? wrapping_neg(x) : x / y;
}

std::int64_t floor_divide(std::int64_t x, std::int64_t y) {
  check_divisor(y);
  if (y == -1) return wrapping_neg(x);
  const std::int64_t q = x / y;
  return (x < 0) != (y < 0) && x % y != 0 ? q - 1 : q;
}

std::int64_t python_remainder(std::int64_t x, std::int64_t y) {
  check_divisor(y);
  if (y == -1) return 0;
  std::int64_t r = x % y;
  if (r != 0 && (r < 0) != (y < 0)) r += y;
  return r;
}

// PyTorch's powi: negative exponents give 1/x rounded toward zero (0 unless x is 1 or -1).
std::int64_t integer_pow(std::int64_t base, std::int64_t exponent) {
  if (exponent < 0) {
    if (base == 1) return 1;
    if (base == -1) return (exponent & 1) ? -1 : 1;
    return 0;
  }
  std::uint64_t result = 1;
  auto b = static_cast<std::uint64_t>(base);
  for (auto e = static_cast<std::uint64_t>(exponent); e != 0; e >>= 1) {
    if (e & 1) result *= b;
    b *= b;
  }
  return static_cast<std::int64_t>(result);
}

std::int64_t int_binary(BinaryOp op, std::int64_t x, std::int64_t y, std::int64_t alpha) {
  switch (op) {
    case BinaryOp::add: return wrapping_add(x, wrapping_mul(alpha, y));
    case BinaryOp::sub: return wrapping_add(x, wrapping_neg(wrapping_mul(alpha, y)));
    case BinaryOp::mul: return wrapping_mul(x, y);
    case BinaryOp::div: contract_violation("true division needs a floating compute dtype");
    case BinaryOp::div_trunc: return truncating_divide(x, y);
    case BinaryOp::div_floor: return floor_divide(x, y);
    case BinaryOp::remainder: return python_remainder(x, y);
    case BinaryOp::pow: return integer_pow(x, y);
    case BinaryOp::eq:
    case BinaryOp::ne:
    case BinaryOp::lt:
    case BinaryOp::le:
    case BinaryOp::gt:
    case BinaryOp::ge:
    case BinaryOp::logical_and:
    case BinaryOp::logical_or: return compare(op, x, y);
    case BinaryOp::maximum: return x < y ? y : x;
    case BinaryOp::minimum: return y < x ? y : x;
  }
  return 0;
}

std::int64_t integral_alpha(double alpha) {
  if (!(alpha == std::trunc(alpha) && std::fabs(alpha) < 0x1p63)) {
    fail("For integral input tensors, argument alpha must not be a floating point number.");
  }
  return static_cast<std::int64_t>(alpha);
}

// A Python number as the 0-dim tensor PyTorch wraps it in (int64, float64 or bool).
Tensor scalar_tensor(Scalar s) {
  switch (s.kind) {
    case Scalar::Kind::integer: return Tensor::scalar_int(DType::int64, s.i);
    case Scalar::Kind::floating: return Tensor::scalar(DType::float64, s.f);
    case Scalar::Kind::boolean: return Tensor::scalar_int(DType::bool_, s.b);
  }
  return Tensor::scalar_int(DType::int64, 0);
}

// The dtype an operand is converted to before the op (see the file comment).
DType operand_dtype(const Tensor& t, DType compute) { return t.dim() == 0 ? opmath(compute) : compute; }

void check_negative_power(BinaryOp op, const Scalar& exponent, DType compute) {
  if (op == BinaryOp::pow && !is_floating(compute) && exponent.kind == Scalar::Kind::integer && exponent.i < 0) {
    fail("Integers to negative integer powers are not allowed.");
  }
}

double float_unary(UnaryOp op, double x) {
  switch (op) {
    case UnaryOp::neg: return -x;
    case UnaryOp::abs: return std::fabs(x);
    case UnaryOp::relu: return x < 0 ? 0.0 : x;  // keeps NaN and -0, as clamp_min(x, 0)
    case UnaryOp::tanh: return std::tanh(x);
    case UnaryOp::sigmoid: return 1 / (1 + std::exp(-x));
    case UnaryOp::silu: return x / (1 + std::exp(-x));
    // x / sqrt(2) as x * (sqrt(2) / 2) and sqrt(2 / pi) as sqrt(2) / sqrt(pi): PyTorch's
    // constants (M_SQRT1_2, M_SQRT2 * M_2_SQRTPI * 0.5).
    case UnaryOp::gelu_erf: return 0.5 * x * (1 + std::erf(x * (std::numbers::sqrt2 / 2)));
    case UnaryOp::gelu_tanh: {
      const double inner = std::numbers::sqrt2 * std::numbers::inv_sqrtpi * (x + 0.044715 * x * x * x);
      return 0.5 * x * (1 + std::tanh(inner));
    }
    case UnaryOp::sqrt: return std::sqrt(x);
    case UnaryOp::rsqrt: return 1 / std::sqrt(x);
    case UnaryOp::exp: return std::exp(x);
    case UnaryOp::log: return std::log(x);
    case UnaryOp::erf: return std::erf(x);
    case UnaryOp::logical_not:
    case UnaryOp::bitwise_not: break;  // handled before dispatch
  }
  return 0;
}

std::int64_t int_unary(UnaryOp op, std::int64_t x) {
  switch (op) {
    case UnaryOp::neg: return wrapping_neg(x);
    case UnaryOp::abs: return x < 0 ? wrapping_neg(x) : x;
    case UnaryOp::relu: return x < 0 ? 0 : x;
    default: contract_violation("a floating unary op got an integer output dtype");
  }
}

bool nonzero_at(const Tensor& t, std::int64_t offset) {
  return is_floating(t.dtype) ? load_double_at(t, offset) != 0 : load_int_at(t, offset) != 0;
}

void check_bool_mask(const Tensor& mask, const char* op) {
  if (mask.dtype != DType::bool_) fail(text(op, " only supports boolean masks, but got mask with dtype ", mask.dtype));
}

Tensor masked_fill_with(const Tensor& self, const Tensor& mask, const Tensor& value) {
  check_bool_mask(mask, "masked_fill_");
  const auto shape = broadcast_shapes(self.sizes, mask.sizes);
  Tensor out = Tensor::empty(self.dtype, shape);
  walk<2>(shape, {broadcast_strides(self, shape), broadcast_strides(mask, shape)},
          [&](std::int64_t n, const Offsets2& o) {
            if (load_int_at(mask, o[1])) {
              copy_element(value, 0, out, n);
            } else {
              copy_element(self, o[0], out, n);
            }
          });
  return out;
}

}  // namespace

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b, DType compute, DType out, double alpha) {
  const auto shape = broadcast_shapes(a.sizes, b.sizes);
  Tensor result = Tensor::empty(out, shape);
  const std::array<std::vector<std::int64_t>, 2> strides{broadcast_strides(a, shape), broadcast_strides(b, shape)};
  const bool boolean = gives_bool(op);
  if (is_floating(compute)) {
    const DType as_a = operand_dtype(a, compute), as_b = operand_dtype(b, compute);
    const double float_alpha = round_to(opmath(compute), alpha);  // a Scalar, as the operands
    walk<2>(shape, strides, [&](std::int64_t n, const Offsets2& o) {
      const double v =
          float_binary(op, load_float_as(a, o[0], as_a), load_float_as(b, o[1], as_b), float_alpha, compute);
      store_double(result, n, boolean ? v : round_to(compute, v));
    });
  } else {
    const std::int64_t int_alpha = op == BinaryOp::add || op == BinaryOp::sub ? integral_alpha(alpha) : 1;
    walk<2>(shape, strides, [&](std::int64_t n, const Offsets2& o) {
      const std::int64_t v = int_binary(op, load_int_as(a, o[0], compute), load_int_as(b, o[1], compute), int_alpha);
      store_int(result, n, boolean ? v : wrap_to(compute, v));
    });
  }
  return result;
}

Tensor binary_scalar(BinaryOp op, const Tensor& a, Scalar b, DType compute, DType out, double alpha) {
  check_negative_power(op, b, compute);
  return binary(op, a, scalar_tensor(b), compute, out, alpha);
}

Tensor binary_scalar_left(BinaryOp op, Scalar a, const Tensor& b, DType compute, DType out, double alpha) {
  return binary(op, scalar_tensor(a), b, compute, out, alpha);
}

Tensor unary(UnaryOp op, const Tensor& a, DType out) {
  Tensor result = Tensor::empty(out, a.sizes);
  const std::array<std::vector<std::int64_t>, 1> strides{a.strides};
  using Offsets1 = std::array<std::int64_t, 1>;
  if (op == UnaryOp::logical_not) {
    walk<1>(a.sizes, strides,
            [&](std::int64_t n, const Offsets1& o) { store_int(result, n, !nonzero_at(a, o[0])); });
  } else if (op == UnaryOp::bitwise_not) {
    if (is_floating(a.dtype) || is_floating(out)) {
      fail(text("bitwise_not is only supported for integer and bool tensors, but got ", a.dtype));
    }
    walk<1>(a.sizes, strides, [&](std::int64_t n, const Offsets1& o) {
      const std::int64_t v = load_int_as(a, o[0], out);
      store_int(result, n, out == DType::bool_ ? !v : ~v);
    });
  } else if (is_floating(out)) {
    walk<1>(a.sizes, strides, [&](std::int64_t n, const Offsets1& o) {
      store_double(result, n, float_unary(op, load_float_as(a, o[0], out)));
    });
  } else {
    walk<1>(a.sizes, strides, [&](std::int64_t n, const Offsets1& o) {
      store_int(result, n, int_unary(op, load_int_as(a, o[0], out)));
    });
  }
  return result;
}

Tensor clamp(const Tensor& a, std::optional<double> lo, std::optional<double> hi) {
  Tensor result = Tensor::empty(a.dtype, a.sizes);
  const std::array<std::vector<std::int64_t>, 1> strides{a.strides};
  using Offsets1 = std::array<std::int64_t, 1>;
  if (is_floating(a.dtype)) {
    // Bounds in opmath, as PyTorch converts its Scalar bounds; a NaN bound gives NaN.
    const DType bound_type = opmath(a.dtype);
    walk<1>(a.sizes, strides, [&](std::int64_t n, const Offsets1& o) {
      double x = load_double_at(a, o[0]);
      if (lo && !std::isnan(x)) x = std::isnan(*lo) ? *lo : std::max(x, round_to(bound_type, *lo));
      if (hi && !std::isnan(x)) x = std::isnan(*hi) ? *hi : std::min(x, round_to(bound_type, *hi));
      store_double(result, n, x);
    });
  } else {
    // Integer bounds are truncated to int64 (PyTorch's Scalar::to<int64_t>); a fractional
    // bound makes PyTorch promote to float, which the executor does with a cast first.
    const std::int64_t low = lo ? floating_to_int(DType::int64, *lo) : std::numeric_limits<std::int64_t>::min();
    const std::int64_t high = hi ? floating_to_int(DType::int64, *hi) : std::numeric_limits<std::int64_t>::max();
    walk<1>(a.sizes, strides, [&](std::int64_t n, const Offsets1& o) {
      std::int64_t x = load_int_at(a, o[0]);
      if (lo) x = std::max(x, low);
      if (hi) x = std::min(x, high);
      store_int(result, n, x);
    });
  }
  return result;
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b, DType out) {
  if (cond.dtype != DType::bool_) {
    fail(text("where expected condition to be a boolean tensor, but got a tensor with dtype ", cond.dtype));
  }
  const auto shape = broadcast_shapes(broadcast_shapes(cond.sizes, a.sizes), b.sizes);
  Tensor result = Tensor::empty(out, shape);
  walk<3>(shape, {broadcast_strides(cond, shape), broadcast_strides(a, shape), broadcast_strides(b, shape)},
          [&](std::int64_t n, const std::array<std::int64_t, 3>& o) {
            if (load_int_at(cond, o[0])) {
              copy_element(a, o[1], result, n);
            } else {
              copy_element(b, o[2], result, n);
            }
          });
  return result;
}

Tensor masked_fill(const Tensor& self, const Tensor& mask, Scalar value) {
  // Converted as a cast (truncating, wrapping); PyTorch's overflow check is not repeated.
  return masked_fill_with(self, mask, scalar_tensor(value));
}

Tensor masked_fill(const Tensor& self, const Tensor& mask, const Tensor& value) {
  if (value.dim() != 0) {
    fail(text("masked_fill_ only supports a 0-dimensional value tensor, but got tensor with ", value.dim(),
              " dimension(s)."));
  }
  return masked_fill_with(self, mask, value);
}

Tensor cast(const Tensor& a, DType dtype) {
  Tensor result = Tensor::empty(dtype, a.sizes);
  copy_into(result, a);
  return result;
}

Tensor contiguous(const Tensor& a) { return cast(a, a.dtype); }

}  // namespace kiln::kernels::ref
