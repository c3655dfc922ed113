// The reference kernel of every op the importer accepts: TorchScript semantics (argument
// conventions, scalar promotion, overloads) on top of kernels/reference. One function per
// op family; the table at the bottom binds kind.overload names to them.
#include <cmath>
#include <limits>
#include <map>
#include <string>

#include "engine/exec/frame_args.hpp"
#include "engine/exec/program.hpp"
#include "engine/ir/scalar_type.hpp"
#include "kernels/dtype_promotion.hpp"
#include "kernels/reference/reference.hpp"
#include "kiln/error.hpp"

namespace kiln::exec {
namespace {

namespace ref = kernels::ref;
using kernels::Tensor;
using K = RtValue::Kind;
using namespace args;

bool is_number(const RtValue& v) { return v.kind == K::int_ || v.kind == K::float_ || v.kind == K::bool_; }
ref::Scalar scalar_of(const RtValue& v) {
  if (v.kind == K::float_) return ref::Scalar::of_double(v.f);
  if (v.kind == K::bool_) return ref::Scalar::of_bool(v.b);
  return ref::Scalar::of_int(v.i);
}
DType natural_dtype(const RtValue& v) {
  return v.kind == K::float_ ? DType::float32 : v.kind == K::bool_ ? DType::bool_ : DType::int64;
}
DType dtype_arg(Frame& f, ir::NodeId n, std::size_t i) {
  const std::int64_t code = int_arg(f, n, i);
  const auto d = ir::dtype_from_scalar_type(code);
  if (!d) throw Error::bad_input("", "", "dtype code " + std::to_string(code) + " is not supported");
  return *d;
}
std::optional<DType> opt_dtype(Frame& f, ir::NodeId n, std::size_t i) {
  if (in(f, n, i).kind == K::none) return std::nullopt;
  return dtype_arg(f, n, i);
}
void check_cpu(Frame& f, ir::NodeId n, std::size_t i) {
  const RtValue& v = in(f, n, i);
  if (v.kind == K::none) return;
  if (v.kind == K::device && (v.s == "cpu" || v.s.rfind("cpu:", 0) == 0)) return;
  throw Error::bad_input("", "", "device '" + v.s + "' is not supported; kiln runs on the CPU");
}

// PyTorch's result_type over the first `count` inputs (tensors and numbers).
DType result_type(Frame& f, ir::NodeId n, std::size_t count) {
  kernels::ResultType rt;
  for (std::size_t i = 0; i < count; ++i) {
    const RtValue& v = in(f, n, i);
    if (v.kind == K::tensor && v.wrapped) {
      rt.add_number(kernels::wrapped_number_dtype(v.t.dtype));
    } else if (v.kind == K::tensor) {
      rt.add_tensor(v.t.dtype, v.t.dim() == 0);
    } else if (is_number(v)) {
      rt.add_number(natural_dtype(v));
    }
  }
  return rt.result().value_or(DType::float32);
}

// --- scalar (int/float/bool) ops ---


void check_overflow(bool overflow) {
  if (overflow) throw Error::bad_input("", "", "integer overflow in integer arithmetic");
}

void scalar_arith(Frame& f, ir::NodeId n) {
  const std::string_view kind = ir::kind_str(f.program.graph, n);
  const RtValue& a = in(f, n, 0);
  const RtValue& b = in(f, n, 1);
  const bool ints = a.kind != K::float_ && b.kind != K::float_;
  if (ints && (kind == "aten::add" || kind == "aten::sub" || kind == "aten::mul")) {
    std::int64_t r = 0;
    const std::int64_t x = a.kind == K::bool_ ? a.b : a.i, y = b.kind == K::bool_ ? b.b : b.i;
    if (kind == "aten::add") check_overflow(__builtin_add_overflow(x, y, &r));
    if (kind == "aten::sub") check_overflow(__builtin_sub_overflow(x, y, &r));
    if (kind == "aten::mul") check_overflow(__builtin_mul_overflow(x, y, &r));
    return out(f, n, RtValue::of_int(r));
  }
  if (ints && (kind == "aten::floordiv" || kind == "aten::remainder")) {
    const std::int64_t x = a.i, y = b.i;
    if (y == 0) throw Error::bad_input("", "", "ZeroDivisionError: integer division or modulo by zero");
    if (x == std::numeric_limits<std::int64_t>::min() && y == -1) throw Error::bad_input("", "", "integer overflow");
    std::int64_t q = x / y, r = x % y;
    if (r != 0 && ((r < 0) != (y < 0))) {
      --q;
      r += y;
    }
    return out(f, n, RtValue::of_int(kind == "aten::floordiv" ? q : r));
  }
  const double x = a.kind == K::float_ ? a.f : static_cast<double>(a.kind == K::bool_ ? a.b : a.i);
  const double y = b.kind == K::float_ ? b.f : static_cast<double>(b.kind == K::bool_ ? b.b : b.i);
  if (kind == "aten::add") return out(f, n, RtValue::of_float(x + y));
  if (kind == "aten::sub") return out(f, n, RtValue::of_float(x - y));
  if (kind == "aten::mul") return out(f, n, RtValue::of_float(x * y));
  if (kind == "aten::div") {
    if (y == 0) throw Error::bad_input("", "", "ZeroDivisionError: float division by zero");
    return out(f, n, RtValue::of_float(x / y));
  }
  if (kind == "aten::floordiv") {
    if (y == 0) throw Error::bad_input("", "", "ZeroDivisionError: float divmod()");
    return out(f, n, RtValue::of_float(std::floor(x / y)));
  }
  if (kind == "aten::pow") return out(f, n, RtValue::of_float(std::pow(x, y)));
  throw Error::bad_input("", "", "no scalar kernel for " + std::string(kind));
}

void scalar_compare(Frame& f, ir::NodeId n) {
  const std::string_view kind = ir::kind_str(f.program.graph, n);
  const RtValue& a = in(f, n, 0);
  const RtValue& b = in(f, n, 1);
  bool r = false;
  if (a.kind == K::str || b.kind == K::str) {
    r = kind == "aten::eq" ? a.s == b.s : a.s != b.s;
  } else if (a.kind == K::int_ && b.kind == K::int_) {
    if (kind == "aten::eq") r = a.i == b.i;
    if (kind == "aten::ne") r = a.i != b.i;
    if (kind == "aten::lt") r = a.i < b.i;
    if (kind == "aten::le") r = a.i <= b.i;
    if (kind == "aten::gt") r = a.i > b.i;
    if (kind == "aten::ge") r = a.i >= b.i;
  } else {
    const double x = double_arg(f, n, 0), y = double_arg(f, n, 1);
    if (kind == "aten::eq") r = x == y;
    if (kind == "aten::ne") r = x != y;
    if (kind == "aten::lt") r = x < y;
    if (kind == "aten::le") r = x <= y;
    if (kind == "aten::gt") r = x > y;
    if (kind == "aten::ge") r = x >= y;
  }
  out(f, n, RtValue::of_bool(r));
}

void scalar_neg(Frame& f, ir::NodeId n) {
  const RtValue& a = in(f, n, 0);
  if (a.kind == K::float_) return out(f, n, RtValue::of_float(-a.f));
  if (a.i == std::numeric_limits<std::int64_t>::min()) throw Error::bad_input("", "", "integer overflow");
  out(f, n, RtValue::of_int(-a.i));
}

void to_int(Frame& f, ir::NodeId n) {
  const RtValue& a = in(f, n, 0);
  if (a.kind == K::tensor) {
    if (a.t.numel() != 1) throw Error::bad_input("", "", "a Tensor with " + std::to_string(a.t.numel()) + " elements cannot be converted to Scalar");
    if (kernels::is_floating(a.t.dtype)) {
      const double v = kernels::load_double(a.t, 0);
      if (!std::isfinite(v) || std::fabs(v) >= 9.2e18) throw Error::bad_input("", "", "cannot convert float " + std::to_string(v) + " to integer");
      return out(f, n, RtValue::of_int(static_cast<std::int64_t>(v)));
    }
    return out(f, n, RtValue::of_int(kernels::load_int(a.t, 0)));
  }
  if (a.kind == K::float_) {
    if (!std::isfinite(a.f) || std::fabs(a.f) >= 9.2e18) throw Error::bad_input("", "", "cannot convert float to integer");
    return out(f, n, RtValue::of_int(static_cast<std::int64_t>(a.f)));
  }
  out(f, n, RtValue::of_int(int_arg(f, n, 0)));
}

void to_float(Frame& f, ir::NodeId n) {
  const RtValue& a = in(f, n, 0);
  if (a.kind == K::tensor) {
    if (a.t.numel() != 1) throw Error::bad_input("", "", "a Tensor with " + std::to_string(a.t.numel()) + " elements cannot be converted to Scalar");
    return out(f, n, RtValue::of_float(kernels::load_double(a.t, 0)));
  }
  out(f, n, RtValue::of_float(double_arg(f, n, 0)));
}

void to_bool(Frame& f, ir::NodeId n) {
  const RtValue& a = in(f, n, 0);
  if (a.kind == K::tensor) {
    if (a.t.numel() != 1) throw Error::bad_input("", "", "Boolean value of Tensor with more than one value is ambiguous");
    return out(f, n, RtValue::of_bool(kernels::load_double(a.t, 0) != 0));
  }
  out(f, n, RtValue::of_bool(double_arg(f, n, 0) != 0));
}

void scalar_implicit(Frame& f, ir::NodeId n) {
  const Tensor& t = tensor(f, n, 0);
  if (t.numel() != 1) throw Error::bad_input("", "", "a Tensor with " + std::to_string(t.numel()) + " elements cannot be converted to Scalar");
  if (kernels::is_floating(t.dtype)) return out(f, n, RtValue::of_float(kernels::load_double(t, 0)));
  if (t.dtype == DType::bool_) return out(f, n, RtValue::of_bool(kernels::load_int(t, 0) != 0));
  out(f, n, RtValue::of_int(kernels::load_int(t, 0)));
}

void num_to_tensor(Frame& f, ir::NodeId n) {
  const RtValue& a = in(f, n, 0);
  if (a.kind == K::float_) return out_tensor(f, n, Tensor::scalar(DType::float64, a.f));
  if (a.kind == K::bool_) return out_tensor(f, n, Tensor::scalar_int(DType::bool_, a.b));
  out_tensor(f, n, Tensor::scalar_int(DType::int64, int_arg(f, n, 0)));
}

// --- lists and tuples ---

void list_construct(Frame& f, ir::NodeId n) {
  const ir::Type& t = ir::value(f.program.graph, node_of(f, n).outputs[0]).type;
  const bool int_list = !t.elems.empty() && t.elems[0].kind == ir::TypeKind::int_;
  if (int_list) {
    std::vector<std::int64_t> v;
    for (std::size_t i = 0; i < arity(f, n); ++i) v.push_back(int_arg(f, n, i));
    return out(f, n, RtValue::of_ints(std::move(v)));
  }
  RtValue r;
  r.kind = K::list;
  for (std::size_t i = 0; i < arity(f, n); ++i) r.items.push_back(in(f, n, i));
  out(f, n, std::move(r));
}

void tuple_construct(Frame& f, ir::NodeId n) {
  RtValue r;
  r.kind = K::tuple;
  for (std::size_t i = 0; i < arity(f, n); ++i) r.items.push_back(in(f, n, i));
  out(f, n, std::move(r));
}

std::vector<RtValue> elements(const RtValue& v) {
  if (v.kind == K::int_list) {
    std::vector<RtValue> r;
    for (std::int64_t x : v.ints) r.push_back(RtValue::of_int(x));
    return r;
  }
  return v.items;
}

void unpack(Frame& f, ir::NodeId n) {
  const std::vector<RtValue> items = elements(in(f, n, 0));
  const std::size_t want = node_of(f, n).outputs.size();
  if (items.size() != want)
    throw Error::bad_input("", "", "cannot unpack " + std::to_string(items.size()) + " values into " + std::to_string(want));
  for (std::size_t i = 0; i < want; ++i) out(f, n, items[i], i);
}

void get_item(Frame& f, ir::NodeId n) {
  const std::vector<RtValue> items = elements(in(f, n, 0));
  std::int64_t i = int_arg(f, n, 1);
  const auto len = static_cast<std::int64_t>(items.size());
  if (i < 0) i += len;
  if (i < 0 || i >= len) throw Error::bad_input("", "", "list index out of range");
  out(f, n, items[static_cast<std::size_t>(i)]);
}

void len(Frame& f, ir::NodeId n) {
  const RtValue& v = in(f, n, 0);
  if (v.kind == K::tensor) {
    if (v.t.dim() == 0) throw Error::bad_input("", "", "len() of a 0-d tensor");
    return out(f, n, RtValue::of_int(v.t.sizes[0]));
  }
  out(f, n, RtValue::of_int(static_cast<std::int64_t>(elements(v).size())));
}

// --- tensor metadata ---

void size(Frame& f, ir::NodeId n) {
  const Tensor& t = tensor(f, n, 0);
  if (arity(f, n) == 1) return out(f, n, RtValue::of_ints(t.sizes));
  const std::int64_t d = ref::wrap_dim(int_arg(f, n, 1), static_cast<std::int64_t>(t.dim()));
  out(f, n, RtValue::of_int(t.dim() == 0 ? 1 : t.sizes[static_cast<std::size_t>(d)]));
}
void dim(Frame& f, ir::NodeId n) { out(f, n, RtValue::of_int(static_cast<std::int64_t>(tensor(f, n, 0).dim()))); }
void numel(Frame& f, ir::NodeId n) { out(f, n, RtValue::of_int(tensor(f, n, 0).numel())); }
void dtype_of(Frame& f, ir::NodeId n) { out(f, n, RtValue::of_int(ir::scalar_type_code(tensor(f, n, 0).dtype))); }
void device_of(Frame& f, ir::NodeId n) {
  RtValue r;
  r.kind = K::device;
  r.s = "cpu";
  out(f, n, std::move(r));
}
void identity(Frame& f, ir::NodeId n) { out(f, n, in(f, n, 0)); }
// detach makes a new tensor object: a wrapped-number constant loses that status.
void detach(Frame& f, ir::NodeId n) {
  RtValue v = in(f, n, 0);
  v.wrapped = false;
  out(f, n, std::move(v));
}
void raise(Frame& f, ir::NodeId n) {
  const RtValue& msg = in(f, n, 0);
  throw Error::bad_input("", "", "the model raised an exception: " + (msg.kind == K::str ? msg.s : std::string("?")));
}
void is_op(Frame& f, ir::NodeId n) {
  const bool same = in(f, n, 0).kind == K::none && in(f, n, 1).kind == K::none;
  out(f, n, RtValue::of_bool(ir::kind_str(f.program.graph, n) == "aten::__is__" ? same : !same));
}
void not_op(Frame& f, ir::NodeId n) { out(f, n, RtValue::of_bool(!bool_arg(f, n, 0))); }
void and_or(Frame& f, ir::NodeId n) {
  const bool a = bool_arg(f, n, 0), b = bool_arg(f, n, 1);
  out(f, n, RtValue::of_bool(ir::kind_str(f.program.graph, n) == "aten::__and__" ? a && b : a || b));
}
void min_max_int(Frame& f, ir::NodeId n) {
  const std::int64_t a = int_arg(f, n, 0), b = int_arg(f, n, 1);
  out(f, n, RtValue::of_int(ir::kind_str(f.program.graph, n) == "prim::min" ? std::min(a, b) : std::max(a, b)));
}

// --- elementwise tensor ops ---

ref::BinaryOp binary_op_of(std::string_view kind) {
  if (kind == "aten::add" || kind == "aten::add_") return ref::BinaryOp::add;
  if (kind == "aten::sub" || kind == "aten::rsub") return ref::BinaryOp::sub;
  if (kind == "aten::mul") return ref::BinaryOp::mul;
  if (kind == "aten::div") return ref::BinaryOp::div;
  if (kind == "aten::floor_divide") return ref::BinaryOp::div_floor;
  if (kind == "aten::remainder") return ref::BinaryOp::remainder;
  if (kind == "aten::pow") return ref::BinaryOp::pow;
  if (kind == "aten::eq") return ref::BinaryOp::eq;
  if (kind == "aten::ne") return ref::BinaryOp::ne;
  if (kind == "aten::lt") return ref::BinaryOp::lt;
  if (kind == "aten::le") return ref::BinaryOp::le;
  if (kind == "aten::gt") return ref::BinaryOp::gt;
  return ref::BinaryOp::ge;
}

bool is_comparison(ref::BinaryOp op) {
  return op == ref::BinaryOp::eq || op == ref::BinaryOp::ne || op == ref::BinaryOp::lt || op == ref::BinaryOp::le ||
         op == ref::BinaryOp::gt || op == ref::BinaryOp::ge;
}

// add/sub/mul/div/... on a tensor and a tensor or number, either side; alpha from input 2
// for add, sub and rsub.
void binary(Frame& f, ir::NodeId n) {
  const std::string_view kind = ir::kind_str(f.program.graph, n);
  const std::string_view ov = ir::symbol_str(f.program.graph, node_of(f, n).overload);
  const RtValue& a = in(f, n, 0);
  const RtValue& b = in(f, n, 1);
  if (a.kind != K::tensor && b.kind != K::tensor) return is_comparison(binary_op_of(kind)) ? scalar_compare(f, n) : scalar_arith(f, n);
  ref::BinaryOp op = binary_op_of(kind);
  const bool has_alpha = (kind == "aten::add" || kind == "aten::sub" || kind == "aten::rsub") && arity(f, n) > 2;
  const double alpha = has_alpha ? double_arg(f, n, 2) : 1.0;
  DType compute = result_type(f, n, 2);
  if (kind == "aten::div") {
    const bool has_mode = ov == "Tensor_mode" || ov == "Scalar_mode";
    const RtValue* mode = has_mode ? &in(f, n, 2) : nullptr;
    if (mode && mode->kind == K::str) {
      if (mode->s == "trunc") op = ref::BinaryOp::div_trunc;
      else if (mode->s == "floor") op = ref::BinaryOp::div_floor;
      else throw Error::bad_input("", "", "div expected rounding_mode to be one of None, 'trunc', or 'floor' but found '" + mode->s + "'");
    } else if (kernels::dtype_category(compute) < 2) {
      compute = DType::float32;  // true division of integers gives the default float dtype
    }
  }
  if (kind == "kiln::div_legacy") {
    // Archives before version 4: integer operands truncate, as torch < 1.5 did.
    op = kernels::dtype_category(compute) < 2 ? ref::BinaryOp::div_trunc : ref::BinaryOp::div;
  }
  const DType outd = is_comparison(op) ? DType::bool_ : compute;
  Tensor r;
  if (kind == "aten::rsub") {
    // rsub(self, other, alpha) = other - alpha * self
    if (b.kind == K::tensor) {
      r = ref::binary(ref::BinaryOp::sub, b.t, a.t, compute, outd, alpha);
    } else {
      r = ref::binary_scalar_left(ref::BinaryOp::sub, scalar_of(b), a.t, compute, outd, alpha);
    }
  } else if (a.kind == K::tensor && b.kind == K::tensor) {
    r = ref::binary(op, a.t, b.t, compute, outd, alpha);
  } else if (a.kind == K::tensor) {
    r = ref::binary_scalar(op, a.t, scalar_of(b), compute, outd, alpha);
  } else {
    r = ref::binary_scalar_left(op, scalar_of(a), b.t, compute, outd, alpha);
  }
  out_tensor(f, n, std::move(r));
}

ref::UnaryOp unary_op_of(std::string_view kind) {
  if (kind == "aten::neg") return ref::UnaryOp::neg;
  if (kind == "aten::abs") return ref::UnaryOp::abs;
  if (kind == "aten::relu") return ref::UnaryOp::relu;
  if (kind == "aten::tanh") return ref::UnaryOp::tanh;
  if (kind == "aten::sigmoid") return ref::UnaryOp::sigmoid;
  if (kind == "aten::silu") return ref::UnaryOp::silu;
  if (kind == "aten::sqrt") return ref::UnaryOp::sqrt;
  if (kind == "aten::rsqrt") return ref::UnaryOp::rsqrt;
  if (kind == "aten::exp") return ref::UnaryOp::exp;
  if (kind == "aten::log") return ref::UnaryOp::log;
  if (kind == "aten::erf") return ref::UnaryOp::erf;
  if (kind == "aten::logical_not") return ref::UnaryOp::logical_not;
  return ref::UnaryOp::bitwise_not;
}

void unary(Frame& f, ir::NodeId n) {
  const std::string_view kind = ir::kind_str(f.program.graph, n);
  if (in(f, n, 0).kind != K::tensor) return scalar_neg(f, n);
  const Tensor& a = tensor(f, n, 0);
  const ref::UnaryOp op = unary_op_of(kind);
  DType outd = a.dtype;
  const bool float_op = op == ref::UnaryOp::tanh || op == ref::UnaryOp::sigmoid || op == ref::UnaryOp::silu ||
                        op == ref::UnaryOp::sqrt || op == ref::UnaryOp::rsqrt || op == ref::UnaryOp::exp ||
                        op == ref::UnaryOp::log || op == ref::UnaryOp::erf;
  if (float_op && kernels::dtype_category(outd) < 2) outd = DType::float32;
  if (op == ref::UnaryOp::logical_not) outd = DType::bool_;
  out_tensor(f, n, ref::unary(op, a, outd));
}

void gelu(Frame& f, ir::NodeId n) {
  const RtValue& mode = in(f, n, 1);
  const std::string approx = mode.kind == K::str ? mode.s : "none";
  if (approx != "none" && approx != "tanh")
    throw Error::bad_input("", "", "approximate argument must be either none or tanh, not '" + approx + "'");
  const Tensor& a = tensor(f, n, 0);
  out_tensor(f, n, ref::unary(approx == "tanh" ? ref::UnaryOp::gelu_tanh : ref::UnaryOp::gelu_erf, a, a.dtype));
}

void clamp(Frame& f, ir::NodeId n) {
  const std::string_view kind = ir::kind_str(f.program.graph, n);
  const Tensor& a = tensor(f, n, 0);
  if (kind == "aten::clamp_min") return out_tensor(f, n, ref::clamp(a, double_arg(f, n, 1), std::nullopt));
  if (kind == "aten::clamp_max") return out_tensor(f, n, ref::clamp(a, std::nullopt, double_arg(f, n, 1)));
  if (in(f, n, 1).kind == K::tensor || in(f, n, 2).kind == K::tensor)
    throw Error::bad_input("", "", "clamp with tensor bounds is not supported");
  out_tensor(f, n, ref::clamp(a, opt_double(f, n, 1), opt_double(f, n, 2)));
}

Tensor as_tensor(const RtValue& v, DType dtype) {
  if (v.kind == K::tensor) return v.t;
  if (v.kind == K::float_) return Tensor::scalar(dtype, v.f);
  return Tensor::scalar_int(dtype, v.kind == K::bool_ ? v.b : v.i);
}

void where(Frame& f, ir::NodeId n) {
  kernels::ResultType rt;
  for (std::size_t i = 1; i < 3; ++i) {
    const RtValue& v = in(f, n, i);
    if (v.kind == K::tensor && v.wrapped) rt.add_number(kernels::wrapped_number_dtype(v.t.dtype));
    else if (v.kind == K::tensor) rt.add_tensor(v.t.dtype, v.t.dim() == 0);
    else rt.add_number(natural_dtype(v));
  }
  const DType d = rt.result().value_or(DType::float32);
  out_tensor(f, n, ref::where(tensor(f, n, 0), as_tensor(in(f, n, 1), d), as_tensor(in(f, n, 2), d), d));
}

void masked_fill(Frame& f, ir::NodeId n) {
  const Tensor& self = tensor(f, n, 0);
  const Tensor& mask = tensor(f, n, 1);
  if (mask.dtype != DType::bool_)
    throw Error::bad_input("", "", "masked_fill only supports boolean masks, but got mask with dtype " + std::string(dtype_name(mask.dtype)));
  const RtValue& v = in(f, n, 2);
  if (v.kind == K::tensor) return out_tensor(f, n, ref::masked_fill(self, mask, v.t));
  out_tensor(f, n, ref::masked_fill(self, mask, scalar_of(v)));
}

void dropout(Frame& f, ir::NodeId n) {
  const double p = double_arg(f, n, 1);
  if (bool_arg(f, n, 2) && p > 0)
    throw Error::bad_input("", "", "dropout in training mode (train=True) is random; kiln runs models in eval mode");
  out(f, n, in(f, n, 0));
}

void softmax(Frame& f, ir::NodeId n) {
  const Tensor& a = tensor(f, n, 0);
  DType d = opt_dtype(f, n, 2).value_or(a.dtype);
  if (kernels::dtype_category(d) < 2) throw Error::bad_input("", "", "softmax is not implemented for integer tensors");
  const bool log = ir::kind_str(f.program.graph, n) == "aten::log_softmax";
  out_tensor(f, n, log ? ref::log_softmax(a, int_arg(f, n, 1), d) : ref::softmax(a, int_arg(f, n, 1), d));
}

void layer_norm(Frame& f, ir::NodeId n) {
  out_tensor(f, n, ref::layer_norm(tensor(f, n, 0), ints_arg(f, n, 1), opt_tensor(f, n, 2), opt_tensor(f, n, 3), double_arg(f, n, 4)));
}

void linear(Frame& f, ir::NodeId n) { out_tensor(f, n, ref::linear(tensor(f, n, 0), tensor(f, n, 1), opt_tensor(f, n, 2))); }
void matmul(Frame& f, ir::NodeId n) { out_tensor(f, n, ref::matmul(tensor(f, n, 0), tensor(f, n, 1))); }
void embedding(Frame& f, ir::NodeId n) { out_tensor(f, n, ref::embedding(tensor(f, n, 0), tensor(f, n, 1))); }

void sdpa(Frame& f, ir::NodeId n) {
  if (double_arg(f, n, 4) != 0.0)
    throw Error::bad_input("", "", "scaled_dot_product_attention with dropout_p > 0 is random; kiln runs models in eval mode");
  if (arity(f, n) > 7 && bool_arg(f, n, 7)) throw Error::bad_input("", "", "scaled_dot_product_attention with enable_gqa is not supported");
  out_tensor(f, n, ref::scaled_dot_product_attention(tensor(f, n, 0), tensor(f, n, 1), tensor(f, n, 2), opt_tensor(f, n, 3),
                                                     bool_arg(f, n, 5), opt_double(f, n, 6)));
}

// --- fused ops (engine/passes/fusions.cpp): the chains they replace, op by op ---

// Runs one op of a fused chain, naming that op in its errors ("aten::embedding: index 514
// is out of bounds..."), since the user's model has that op, not the fused one.
template <typename F>
auto step(const char* op, F&& f) {
  try {
    return f();
  } catch (const Error& e) {
    throw Error(e.kind(), e.file(), e.where(), std::string(op) + ": " + e.message());
  }
}

void linear_gelu(Frame& f, ir::NodeId n) {
  const RtValue& mode = in(f, n, 3);
  const std::string approx = mode.kind == K::str ? mode.s : "none";
  if (approx != "none" && approx != "tanh")
    throw Error::bad_input("", "", "approximate argument must be either none or tanh, not '" + approx + "'");
  const Tensor lin = step("aten::linear", [&] { return ref::linear(tensor(f, n, 0), tensor(f, n, 1), opt_tensor(f, n, 2)); });
  out_tensor(f, n, ref::unary(approx == "tanh" ? ref::UnaryOp::gelu_tanh : ref::UnaryOp::gelu_erf, lin, lin.dtype));
}

// (x, w1, b1, w2, b2, ...): each linear, then their results side by side.
void linear_concat(Frame& f, ir::NodeId n) {
  std::vector<Tensor> parts;
  for (std::size_t i = 1; i + 1 < arity(f, n); i += 2) {
    parts.push_back(step("aten::linear", [&] { return ref::linear(tensor(f, n, 0), tensor(f, n, i), opt_tensor(f, n, i + 1)); }));
  }
  out_tensor(f, n, ref::cat(parts, -1));
}

void add_layer_norm(Frame& f, ir::NodeId n) {
  const Tensor sum = step("aten::add", [&] {
    return ref::binary(ref::BinaryOp::add, tensor(f, n, 0), tensor(f, n, 1), DType::float32, DType::float32);
  });
  out_tensor(f, n, step("aten::layer_norm", [&] {
               return ref::layer_norm(sum, ints_arg(f, n, 2), opt_tensor(f, n, 3), opt_tensor(f, n, 4), double_arg(f, n, 5));
             }));
}

void embedding_layer_norm(Frame& f, ir::NodeId n) {
  Tensor sum;
  for (std::size_t i = 4; i + 1 < arity(f, n); i += 2) {
    const Tensor e = step("aten::embedding", [&] { return ref::embedding(tensor(f, n, i), tensor(f, n, i + 1)); });
    sum = i == 4 ? e : step("aten::add", [&] { return ref::binary(ref::BinaryOp::add, sum, e, DType::float32, DType::float32); });
  }
  out_tensor(f, n, step("aten::layer_norm", [&] {
               return ref::layer_norm(sum, ints_arg(f, n, 0), opt_tensor(f, n, 1), opt_tensor(f, n, 2), double_arg(f, n, 3));
             }));
}

// (q, k, v, mask?, divisor?, scale?, from_sdpa): from scaled_dot_product_attention, that
// op's reference; from the eager chain, its ops in order.
void attention(Frame& f, ir::NodeId n) {
  const Tensor &q = tensor(f, n, 0), &k = tensor(f, n, 1), &v = tensor(f, n, 2);
  const Tensor* mask = opt_tensor(f, n, 3);
  if (bool_arg(f, n, 6)) {
    return out_tensor(f, n, step("aten::scaled_dot_product_attention", [&] {
                        return ref::scaled_dot_product_attention(q, k, v, mask, false, opt_double(f, n, 5));
                      }));
  }
  Tensor s = step("aten::matmul", [&] { return ref::matmul(q, ref::transpose(k, -2, -1)); });
  if (in(f, n, 4).kind != K::none) {
    s = ref::binary(ref::BinaryOp::div, s, as_tensor(in(f, n, 4), DType::float64), DType::float32, DType::float32);
  } else if (in(f, n, 5).kind != K::none) {
    s = ref::binary(ref::BinaryOp::mul, s, as_tensor(in(f, n, 5), DType::float64), DType::float32, DType::float32);
  }
  if (mask) s = step("aten::add", [&] { return ref::binary(ref::BinaryOp::add, s, *mask, DType::float32, DType::float32); });
  out_tensor(f, n, step("aten::matmul", [&] { return ref::matmul(ref::softmax(s, -1, DType::float32), v); }));
}

// --- reductions ---

std::vector<std::int64_t> dims_arg(Frame& f, ir::NodeId n, std::size_t i) {
  if (in(f, n, i).kind == K::none) return {};
  if (in(f, n, i).kind == K::int_) return {int_arg(f, n, i)};
  return ints_arg(f, n, i);
}

void sum_mean(Frame& f, ir::NodeId n) {
  const std::string_view ov = ir::symbol_str(f.program.graph, node_of(f, n).overload);
  const bool is_mean = ir::kind_str(f.program.graph, n) == "aten::mean";
  const Tensor& a = tensor(f, n, 0);
  const bool full = ov.empty();
  const std::vector<std::int64_t> dims = full ? std::vector<std::int64_t>{} : dims_arg(f, n, 1);
  const bool keep = full ? false : bool_arg(f, n, 2);
  std::optional<DType> d = opt_dtype(f, n, full ? 1 : 3);
  DType outd = d.value_or(a.dtype);
  if (!d && !is_mean && kernels::dtype_category(a.dtype) < 2) outd = DType::int64;
  if (is_mean && kernels::dtype_category(outd) < 2)
    throw Error::bad_input("", "", "mean(): could not infer output dtype. Input dtype must be either a floating point or complex dtype. Got: " +
                                       std::string(dtype_name(a.dtype)));
  out_tensor(f, n, is_mean ? ref::mean(a, dims, keep, outd) : ref::sum(a, dims, keep, outd));
}

void norm(Frame& f, ir::NodeId n) {
  const std::string_view ov = ir::symbol_str(f.program.graph, node_of(f, n).overload);
  const Tensor& a = tensor(f, n, 0);
  const double p = opt_double(f, n, 1).value_or(2.0);
  if (ov == "Scalar") return out_tensor(f, n, ref::norm(a, p, {}, false));
  out_tensor(f, n, ref::norm(a, p, dims_arg(f, n, 2), bool_arg(f, n, 3)));
}

void vector_norm(Frame& f, ir::NodeId n) {
  const Tensor& a = tensor(f, n, 0);
  if (kernels::dtype_category(a.dtype) < 2) throw Error::bad_input("", "", "linalg.vector_norm: Expected a floating point or complex tensor as input");
  const std::optional<DType> d = opt_dtype(f, n, 4);
  const Tensor x = d && *d != a.dtype ? ref::cast(a, *d) : a;
  out_tensor(f, n, ref::norm(x, double_arg(f, n, 1), dims_arg(f, n, 2), bool_arg(f, n, 3)));
}

void max_min(Frame& f, ir::NodeId n) {
  const Tensor& a = tensor(f, n, 0);
  out_tensor(f, n, ir::kind_str(f.program.graph, n) == "aten::max" ? ref::max_all(a) : ref::min_all(a));
}
void argmax(Frame& f, ir::NodeId n) { out_tensor(f, n, ref::argmax(tensor(f, n, 0), opt_int(f, n, 1), bool_arg(f, n, 2))); }

void cumsum(Frame& f, ir::NodeId n) {
  const Tensor& a = tensor(f, n, 0);
  DType d = opt_dtype(f, n, 2).value_or(kernels::dtype_category(a.dtype) < 2 ? DType::int64 : a.dtype);
  out_tensor(f, n, ref::cumsum(a, int_arg(f, n, 1), d));
}

// --- views and copies ---

void view(Frame& f, ir::NodeId n) {
  const bool is_view = ir::kind_str(f.program.graph, n) == "aten::view";
  const Tensor& a = tensor(f, n, 0);
  out_tensor(f, n, is_view ? ref::view(a, ints_arg(f, n, 1)) : ref::reshape(a, ints_arg(f, n, 1)));
}
void flatten(Frame& f, ir::NodeId n) { out_tensor(f, n, ref::flatten(tensor(f, n, 0), int_arg(f, n, 1), int_arg(f, n, 2))); }
void permute(Frame& f, ir::NodeId n) { out_tensor(f, n, ref::permute(tensor(f, n, 0), ints_arg(f, n, 1))); }
void transpose(Frame& f, ir::NodeId n) {
  const Tensor& a = tensor(f, n, 0);
  if (arity(f, n) == 1) {
    if (a.dim() > 2) throw Error::bad_input("", "", "t() expects a tensor with <= 2 dimensions, but self is " + std::to_string(a.dim()) + "D");
    return out_tensor(f, n, a.dim() < 2 ? a : ref::transpose(a, 0, 1));
  }
  out_tensor(f, n, ref::transpose(a, int_arg(f, n, 1), int_arg(f, n, 2)));
}
void expand(Frame& f, ir::NodeId n) { out_tensor(f, n, ref::expand(tensor(f, n, 0), ints_arg(f, n, 1))); }
void expand_as(Frame& f, ir::NodeId n) { out_tensor(f, n, ref::expand(tensor(f, n, 0), tensor(f, n, 1).sizes)); }
void unsqueeze(Frame& f, ir::NodeId n) { out_tensor(f, n, ref::unsqueeze(tensor(f, n, 0), int_arg(f, n, 1))); }
void squeeze(Frame& f, ir::NodeId n) {
  out_tensor(f, n, ref::squeeze(tensor(f, n, 0), arity(f, n) > 1 ? std::optional(int_arg(f, n, 1)) : std::nullopt));
}
void select(Frame& f, ir::NodeId n) { out_tensor(f, n, ref::select(tensor(f, n, 0), int_arg(f, n, 1), int_arg(f, n, 2))); }
void slice(Frame& f, ir::NodeId n) {
  out_tensor(f, n, ref::slice(tensor(f, n, 0), int_arg(f, n, 1), opt_int(f, n, 2), opt_int(f, n, 3), int_arg(f, n, 4)));
}
void narrow(Frame& f, ir::NodeId n) {
  out_tensor(f, n, ref::narrow(tensor(f, n, 0), int_arg(f, n, 1), int_arg(f, n, 2), int_arg(f, n, 3)));
}
// Pieces of the given sizes along dim, which must add up to its size.
std::vector<Tensor> split_sizes(const Tensor& a, const std::vector<std::int64_t>& sizes, std::int64_t dim) {
  const std::int64_t d = ref::wrap_dim(dim, static_cast<std::int64_t>(a.dim()));
  const std::int64_t total = a.dim() == 0 ? 1 : a.sizes[static_cast<std::size_t>(d)];
  std::int64_t sum = 0;
  for (std::int64_t s : sizes) {
    if (s < 0 || __builtin_add_overflow(sum, s, &sum)) throw Error::bad_input("", "", "split_with_sizes expects non-negative sizes");
  }
  if (sum != total)
    throw Error::bad_input("", "", "split_with_sizes expects split_sizes to sum exactly to " + std::to_string(total) +
                                       " (input tensor's size at dimension " + std::to_string(d) + "), but got split_sizes with sum " +
                                       std::to_string(sum));
  std::vector<Tensor> parts;
  std::int64_t at = 0;
  for (std::int64_t s : sizes) {
    parts.push_back(ref::narrow(a, d, at, s));
    at += s;
  }
  return parts;
}

void split(Frame& f, ir::NodeId n) {
  const std::string_view kind = ir::kind_str(f.program.graph, n);
  const Tensor& a = tensor(f, n, 0);
  std::vector<Tensor> parts;
  if (kind == "aten::split_with_sizes" || (kind == "aten::split" && in(f, n, 1).kind == K::int_list)) {
    parts = split_sizes(a, ints_arg(f, n, 1), int_arg(f, n, 2));
  } else if (kind == "aten::split") {
    parts = ref::split(a, int_arg(f, n, 1), int_arg(f, n, 2));
  } else {
    parts = ref::chunk(a, int_arg(f, n, 1), int_arg(f, n, 2));
  }
  RtValue r;
  r.kind = K::list;
  for (const Tensor& t : parts) r.items.push_back(RtValue::of_tensor(t));
  out(f, n, std::move(r));
}
void contiguous(Frame& f, ir::NodeId n) { out_tensor(f, n, ref::contiguous(tensor(f, n, 0))); }
void clone(Frame& f, ir::NodeId n) { out_tensor(f, n, ref::cast(tensor(f, n, 0), tensor(f, n, 0).dtype)); }

std::vector<Tensor> tensor_list(Frame& f, ir::NodeId n, std::size_t i) {
  const RtValue& v = in(f, n, i);
  if (v.kind != K::list) type_error(f, n, i, "a list of tensors");
  std::vector<Tensor> r;
  for (const RtValue& item : v.items) {
    if (item.kind != K::tensor) type_error(f, n, i, "a list of tensors");
    r.push_back(item.t);
  }
  return r;
}
void cat(Frame& f, ir::NodeId n) {
  const bool is_cat = ir::kind_str(f.program.graph, n) == "aten::cat";
  const std::vector<Tensor> ts = tensor_list(f, n, 0);
  out_tensor(f, n, is_cat ? ref::cat(ts, int_arg(f, n, 1)) : ref::stack(ts, int_arg(f, n, 1)));
}
void index_select(Frame& f, ir::NodeId n) { out_tensor(f, n, ref::index_select(tensor(f, n, 0), int_arg(f, n, 1), tensor(f, n, 2))); }

// aten::to and type_as: convert, or return the input itself when nothing changes (as
// PyTorch does unless copy=True).
void to(Frame& f, ir::NodeId n) {
  const std::string_view kind = ir::kind_str(f.program.graph, n);
  const std::string_view ov = ir::symbol_str(f.program.graph, node_of(f, n).overload);
  const Tensor& a = tensor(f, n, 0);
  std::optional<DType> d;
  bool copy = false;
  if (kind == "aten::type_as") {
    d = tensor(f, n, 1).dtype;
  } else if (ov == "dtype") {
    d = dtype_arg(f, n, 1);
    copy = bool_arg(f, n, 3);
  } else if (ov == "device") {
    check_cpu(f, n, 1);
    d = dtype_arg(f, n, 2);
    copy = bool_arg(f, n, 4);
  } else if (ov == "other") {
    d = tensor(f, n, 1).dtype;
    copy = bool_arg(f, n, 3);
  } else if (ov == "dtype_layout") {
    d = opt_dtype(f, n, 1);
    check_cpu(f, n, 3);
    copy = bool_arg(f, n, 6);
  } else if (ov == "prim_Device") {
    check_cpu(f, n, 1);
    d = opt_dtype(f, n, 2);
    copy = bool_arg(f, n, 4);
  } else if (ov == "prim_dtype") {
    d = opt_dtype(f, n, 1);
    copy = bool_arg(f, n, 3);
  }
  if (!copy && (!d || *d == a.dtype)) return out(f, n, in(f, n, 0));
  out_tensor(f, n, ref::cast(a, d.value_or(a.dtype)));
}

// --- factories ---

void fill(Frame& f, ir::NodeId n) {
  const std::string_view kind = ir::kind_str(f.program.graph, n);
  if (kind == "aten::full") {
    const RtValue& v = in(f, n, 1);
    check_cpu(f, n, 4);
    const DType d = opt_dtype(f, n, 2).value_or(natural_dtype(v));
    return out_tensor(f, n, ref::full(ints_arg(f, n, 0), scalar_of(v), d));
  }
  check_cpu(f, n, 3);
  const DType d = opt_dtype(f, n, 1).value_or(DType::float32);
  out_tensor(f, n, ref::full(ints_arg(f, n, 0), ref::Scalar::of_int(kind == "aten::ones" ? 1 : 0), d));
}
void fill_like(Frame& f, ir::NodeId n) {
  const Tensor& a = tensor(f, n, 0);
  check_cpu(f, n, 3);
  const DType d = opt_dtype(f, n, 1).value_or(a.dtype);
  const bool ones = ir::kind_str(f.program.graph, n) == "aten::ones_like";
  out_tensor(f, n, ref::full(a.sizes, ref::Scalar::of_int(ones ? 1 : 0), d));
}
void arange(Frame& f, ir::NodeId n) {
  const std::string_view ov = ir::symbol_str(f.program.graph, node_of(f, n).overload);
  const std::size_t nums = ov.empty() ? 1 : ov == "start" ? 2 : 3;
  bool all_int = true;
  for (std::size_t i = 0; i < nums; ++i) all_int = all_int && in(f, n, i).kind == K::int_;
  const DType d = opt_dtype(f, n, nums).value_or(all_int ? DType::int64 : DType::float32);
  check_cpu(f, n, nums + 2);
  const double start = nums == 1 ? 0 : double_arg(f, n, 0);
  const double end = double_arg(f, n, nums == 1 ? 0 : 1);
  const double step = nums == 3 ? double_arg(f, n, 2) : 1;
  out_tensor(f, n, ref::arange(start, end, step, d));
}
void scalar_tensor(Frame& f, ir::NodeId n) {
  const RtValue& v = in(f, n, 0);
  const DType d = opt_dtype(f, n, 1).value_or(DType::float32);
  out_tensor(f, n, ref::full({}, scalar_of(v), d));
}

const std::map<std::string, Kernel, std::less<>>& table() {
  static const std::map<std::string, Kernel, std::less<>> t = {
      {"prim::NumToTensor", num_to_tensor},
      {"aten::Int", to_int},
      {"aten::Float", to_float},
      {"aten::Bool", to_bool},
      {"aten::ScalarImplicit", scalar_implicit},
      {"aten::size", size},
      {"aten::dim", dim},
      {"aten::numel", numel},
      {"aten::len", len},
      {"aten::__getitem__", get_item},
      {"prim::ListConstruct", list_construct},
      {"prim::ListUnpack", unpack},
      {"prim::TupleConstruct", tuple_construct},
      {"prim::TupleUnpack", unpack},
      {"prim::TupleIndex", get_item},
      {"prim::dtype", dtype_of},
      {"prim::device", device_of},
      {"prim::unchecked_cast", identity},
      {"prim::RaiseException", raise},
      {"aten::__is__", is_op},
      {"aten::__isnot__", is_op},
      {"aten::__not__", not_op},
      {"aten::__and__", and_or},
      {"aten::__or__", and_or},
      {"prim::min", min_max_int},
      {"prim::max", min_max_int},
      {"aten::add", binary},
      {"aten::sub", binary},
      {"aten::rsub", binary},
      {"aten::mul", binary},
      {"aten::div", binary},
      {"kiln::div_legacy", binary},
      {"aten::floordiv", scalar_arith},
      {"aten::floor_divide", binary},
      {"aten::remainder", binary},
      {"aten::pow", binary},
      {"aten::eq", binary},
      {"aten::ne", binary},
      {"aten::lt", binary},
      {"aten::le", binary},
      {"aten::gt", binary},
      {"aten::ge", binary},
      {"aten::neg", unary},
      {"aten::abs", unary},
      {"aten::relu", unary},
      {"aten::tanh", unary},
      {"aten::sigmoid", unary},
      {"aten::silu", unary},
      {"aten::sqrt", unary},
      {"aten::rsqrt", unary},
      {"aten::exp", unary},
      {"aten::log", unary},
      {"aten::erf", unary},
      {"aten::logical_not", unary},
      {"aten::bitwise_not", unary},
      {"aten::gelu", gelu},
      {"aten::clamp", clamp},
      {"aten::clamp_min", clamp},
      {"aten::clamp_max", clamp},
      {"aten::where", where},
      {"aten::masked_fill", masked_fill},
      {"aten::dropout", dropout},
      {"aten::feature_dropout", dropout},
      {"aten::alpha_dropout", dropout},
      {"aten::softmax", softmax},
      {"aten::log_softmax", softmax},
      {"aten::layer_norm", layer_norm},
      {"aten::linear", linear},
      {"aten::matmul", matmul},
      {"aten::bmm", matmul},
      {"aten::embedding", embedding},
      {"aten::scaled_dot_product_attention", sdpa},
      {"kiln::linear_gelu", linear_gelu},
      {"kiln::linear_concat", linear_concat},
      {"kiln::add_layer_norm", add_layer_norm},
      {"kiln::embedding_layer_norm", embedding_layer_norm},
      {"kiln::attention", attention},
      {"aten::sum", sum_mean},
      {"aten::mean", sum_mean},
      {"aten::norm", norm},
      {"aten::linalg_vector_norm", vector_norm},
      {"aten::max", max_min},
      {"aten::min", max_min},
      {"aten::argmax", argmax},
      {"aten::cumsum", cumsum},
      {"aten::view", view},
      {"aten::reshape", view},
      {"aten::flatten", flatten},
      {"aten::permute", permute},
      {"aten::transpose", transpose},
      {"aten::t", transpose},
      {"aten::expand", expand},
      {"aten::expand_as", expand_as},
      {"aten::unsqueeze", unsqueeze},
      {"aten::squeeze", squeeze},
      {"aten::select", select},
      {"aten::slice", slice},
      {"aten::narrow", narrow},
      {"aten::split", split},
      {"aten::chunk", split},
      {"aten::split_with_sizes", split},
      {"aten::contiguous", contiguous},
      {"aten::detach", detach},
      {"aten::clone", clone},
      {"aten::cat", cat},
      {"aten::stack", cat},
      {"aten::index_select", index_select},
      {"aten::to", to},
      {"aten::type_as", to},
      {"aten::ones", fill},
      {"aten::zeros", fill},
      {"aten::full", fill},
      {"aten::ones_like", fill_like},
      {"aten::zeros_like", fill_like},
      {"aten::arange", arange},
      {"aten::scalar_tensor", scalar_tensor},
  };
  return t;
}

}  // namespace

Kernel find_kernel(std::string_view kind, std::string_view overload) {
  (void)overload;  // kernels read the overload from the node where it matters
  const auto& t = table();
  const auto it = t.find(kind);
  return it == t.end() ? nullptr : it->second;
}

}  // namespace kiln::exec
