// The op table and its schema-string parser. Signatures follow PyTorch's
// native_functions.yaml and register_prim_ops.cpp, restricted to what kiln runs; within an
// op, overloads are listed in the order PyTorch's matcher prefers them.
#include "engine/import/op_schema.hpp"

#include <cctype>
#include <charconv>
#include <map>
#include <mutex>

#include "kiln/error.hpp"

namespace kiln::import {
namespace {

// `!` marks an op with an effect (or randomness) that passes must not remove or merge.
constexpr std::string_view kSchemas[] = {
    // Arithmetic, tensor and scalar forms.
    "aten::add.Tensor(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor",
    "aten::add.Scalar(Tensor self, Scalar other, Scalar alpha=1) -> Tensor",
    "aten::add.int(int a, int b) -> int",
    "aten::add.float(float a, float b) -> float",
    "aten::add.int_float(int a, float b) -> float",
    "aten::add.float_int(float a, int b) -> float",
    "aten::add.str(str a, str b) -> str",
    "aten::add_.Tensor(Tensor(a!) self, Tensor other, *, Scalar alpha=1) -> Tensor(a!)",
    "aten::add_.Scalar(Tensor(a!) self, Scalar other, Scalar alpha=1) -> Tensor(a!)",
    "aten::sub.Tensor(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor",
    "aten::sub.Scalar(Tensor self, Scalar other, Scalar alpha=1) -> Tensor",
    "aten::sub.int(int a, int b) -> int",
    "aten::sub.float(float a, float b) -> float",
    "aten::sub.int_float(int a, float b) -> float",
    "aten::sub.float_int(float a, int b) -> float",
    "aten::rsub.Tensor(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor",
    "aten::rsub.Scalar(Tensor self, Scalar other, Scalar alpha=1) -> Tensor",
    "aten::mul.Tensor(Tensor self, Tensor other) -> Tensor",
    "aten::mul.Scalar(Tensor self, Scalar other) -> Tensor",
    "aten::mul.int(int a, int b) -> int",
    "aten::mul.float(float a, float b) -> float",
    "aten::mul.int_float(int a, float b) -> float",
    "aten::mul.float_int(float a, int b) -> float",
    "aten::mul_.Tensor(Tensor(a!) self, Tensor other) -> Tensor(a!)",
    "aten::mul_.Scalar(Tensor(a!) self, Scalar other) -> Tensor(a!)",
    "aten::div.Tensor(Tensor self, Tensor other) -> Tensor",
    "aten::div.Scalar(Tensor self, Scalar other) -> Tensor",
    "aten::div.Tensor_mode(Tensor self, Tensor other, *, str? rounding_mode) -> Tensor",
    "aten::div.Scalar_mode(Tensor self, Scalar other, *, str? rounding_mode) -> Tensor",
    "aten::div.int(int a, int b) -> float",
    "aten::div.float(float a, float b) -> float",
    "aten::div_.Tensor(Tensor(a!) self, Tensor other) -> Tensor(a!)",
    "aten::div_.Scalar(Tensor(a!) self, Scalar other) -> Tensor(a!)",
    "aten::floordiv.int(int a, int b) -> int",
    "aten::floordiv.float(float a, float b) -> float",
    "aten::floor_divide(Tensor self, Tensor other) -> Tensor",
    "aten::floor_divide.Scalar(Tensor self, Scalar other) -> Tensor",
    "aten::remainder.Tensor(Tensor self, Tensor other) -> Tensor",
    "aten::remainder.Scalar(Tensor self, Scalar other) -> Tensor",
    "aten::remainder.int(int a, int b) -> int",
    "aten::neg(Tensor self) -> Tensor",
    "aten::neg.int(int a) -> int",
    "aten::neg.float(float a) -> float",
    "aten::pow.Tensor_Scalar(Tensor self, Scalar exponent) -> Tensor",
    "aten::pow.Tensor_Tensor(Tensor self, Tensor exponent) -> Tensor",
    "aten::pow.Scalar(Scalar self, Tensor exponent) -> Tensor",
    "aten::pow.int(int a, int b) -> float",
    "aten::pow.float(float a, float b) -> float",
    "aten::sqrt(Tensor self) -> Tensor",
    "aten::rsqrt(Tensor self) -> Tensor",
    "aten::exp(Tensor self) -> Tensor",
    "aten::log(Tensor self) -> Tensor",
    "aten::abs(Tensor self) -> Tensor",
    "aten::erf(Tensor self) -> Tensor",
    "aten::clamp(Tensor self, Scalar? min=None, Scalar? max=None) -> Tensor",
    "aten::clamp.Tensor(Tensor self, Tensor? min=None, Tensor? max=None) -> Tensor",
    "aten::clamp_min(Tensor self, Scalar min) -> Tensor",
    "aten::clamp_max(Tensor self, Scalar max) -> Tensor",
    "aten::where.self(Tensor condition, Tensor self, Tensor other) -> Tensor",
    "aten::where.ScalarOther(Tensor condition, Tensor self, Scalar other) -> Tensor",
    "aten::where.ScalarSelf(Tensor condition, Scalar self, Tensor other) -> Tensor",
    "aten::where.Scalar(Tensor condition, Scalar self, Scalar other) -> Tensor",

    // Comparisons and logic.
    "aten::eq.Tensor(Tensor self, Tensor other) -> Tensor",
    "aten::eq.Scalar(Tensor self, Scalar other) -> Tensor",
    "aten::eq.int(int a, int b) -> bool",
    "aten::eq.float(float a, float b) -> bool",
    "aten::eq.str(str a, str b) -> bool",
    "aten::eq.bool(bool a, bool b) -> bool",
    "aten::ne.Tensor(Tensor self, Tensor other) -> Tensor",
    "aten::ne.Scalar(Tensor self, Scalar other) -> Tensor",
    "aten::ne.int(int a, int b) -> bool",
    "aten::ne.float(float a, float b) -> bool",
    "aten::ne.str(str a, str b) -> bool",
    "aten::ne.bool(bool a, bool b) -> bool",
    "aten::gt.Tensor(Tensor self, Tensor other) -> Tensor",
    "aten::gt.Scalar(Tensor self, Scalar other) -> Tensor",
    "aten::gt.int(int a, int b) -> bool",
    "aten::gt.float(float a, float b) -> bool",
    "aten::lt.Tensor(Tensor self, Tensor other) -> Tensor",
    "aten::lt.Scalar(Tensor self, Scalar other) -> Tensor",
    "aten::lt.int(int a, int b) -> bool",
    "aten::lt.float(float a, float b) -> bool",
    "aten::ge.Tensor(Tensor self, Tensor other) -> Tensor",
    "aten::ge.Scalar(Tensor self, Scalar other) -> Tensor",
    "aten::ge.int(int a, int b) -> bool",
    "aten::ge.float(float a, float b) -> bool",
    "aten::le.Tensor(Tensor self, Tensor other) -> Tensor",
    "aten::le.Scalar(Tensor self, Scalar other) -> Tensor",
    "aten::le.int(int a, int b) -> bool",
    "aten::le.float(float a, float b) -> bool",
    "aten::__not__(bool self) -> bool",
    "aten::__and__.bool(bool a, bool b) -> bool",
    "aten::__or__.bool(bool a, bool b) -> bool",
    "aten::logical_not(Tensor self) -> Tensor",
    "aten::bitwise_not(Tensor self) -> Tensor",
    "aten::__is__(t1 self, t2 obj) -> bool",
    "aten::__isnot__(t1 self, t2 obj) -> bool",

    // Activations, normalization, linear algebra.
    "aten::relu(Tensor self) -> Tensor",
    "aten::gelu(Tensor self, *, str approximate='none') -> Tensor",
    "aten::tanh(Tensor self) -> Tensor",
    "aten::sigmoid(Tensor self) -> Tensor",
    "aten::silu(Tensor self) -> Tensor",
    "aten::softmax.int(Tensor self, int dim, ScalarType? dtype=None) -> Tensor",
    "aten::log_softmax.int(Tensor self, int dim, ScalarType? dtype=None) -> Tensor",
    "aten::layer_norm(Tensor input, SymInt[] normalized_shape, Tensor? weight=None, Tensor? bias=None, "
    "float eps=1e-05, bool cudnn_enable=True) -> Tensor",
    "aten::linear(Tensor input, Tensor weight, Tensor? bias=None) -> Tensor",
    "aten::matmul(Tensor self, Tensor other) -> Tensor",
    "aten::bmm(Tensor self, Tensor mat2) -> Tensor",
    "aten::embedding(Tensor weight, Tensor indices, SymInt padding_idx=-1, bool scale_grad_by_freq=False, "
    "bool sparse=False) -> Tensor",
    "aten::scaled_dot_product_attention(Tensor query, Tensor key, Tensor value, Tensor? attn_mask=None, "
    "float dropout_p=0.0, bool is_causal=False, *, float? scale=None, bool enable_gqa=False) -> Tensor",
    "!aten::dropout(Tensor input, float p, bool train) -> Tensor",
    "!aten::feature_dropout(Tensor input, float p, bool train) -> Tensor",
    "!aten::alpha_dropout(Tensor input, float p, bool train) -> Tensor",

    // Reductions and scans.
    "aten::sum(Tensor self, *, ScalarType? dtype=None) -> Tensor",
    "aten::sum.dim_IntList(Tensor self, int[1]? dim, bool keepdim=False, *, ScalarType? dtype=None) -> Tensor",
    "aten::mean(Tensor self, *, ScalarType? dtype=None) -> Tensor",
    "aten::mean.dim(Tensor self, int[1]? dim, bool keepdim=False, *, ScalarType? dtype=None) -> Tensor",
    "aten::norm.Scalar(Tensor self, Scalar p=2) -> Tensor",
    "aten::norm.ScalarOpt_dim(Tensor self, Scalar? p, int[1] dim, bool keepdim=False) -> Tensor",
    "aten::linalg_vector_norm(Tensor self, Scalar ord=2, int[1]? dim=None, bool keepdim=False, *, "
    "ScalarType? dtype=None) -> Tensor",
    "aten::max(Tensor self) -> Tensor",
    "aten::min(Tensor self) -> Tensor",
    "aten::cumsum(Tensor self, int dim, *, ScalarType? dtype=None) -> Tensor",
    "aten::argmax(Tensor self, int? dim=None, bool keepdim=False) -> Tensor",

    // Shapes, views and copies.
    "aten::size.int(Tensor self, int dim) -> int",
    "aten::size(Tensor self) -> int[]",
    "aten::dim(Tensor self) -> int",
    "aten::numel(Tensor self) -> int",
    "aten::view(Tensor(a) self, SymInt[] size) -> Tensor(a)",
    "aten::reshape(Tensor(a) self, SymInt[] shape) -> Tensor(a)",
    "aten::flatten.using_ints(Tensor(a) self, int start_dim=0, int end_dim=-1) -> Tensor(a)",
    "aten::permute(Tensor(a) self, int[] dims) -> Tensor(a)",
    "aten::transpose.int(Tensor(a) self, int dim0, int dim1) -> Tensor(a)",
    "aten::t(Tensor(a) self) -> Tensor(a)",
    "aten::expand(Tensor(a) self, SymInt[] size, *, bool implicit=False) -> Tensor(a)",
    "aten::expand_as(Tensor(a) self, Tensor other) -> Tensor(a)",
    "aten::unsqueeze(Tensor(a) self, int dim) -> Tensor(a)",
    "aten::squeeze.dim(Tensor(a) self, int dim) -> Tensor(a)",
    "aten::squeeze(Tensor(a) self) -> Tensor(a)",
    "aten::select.int(Tensor(a) self, int dim, SymInt index) -> Tensor(a)",
    "aten::slice.Tensor(Tensor(a) self, int dim=0, SymInt? start=None, SymInt? end=None, SymInt step=1) -> Tensor(a)",
    "aten::narrow(Tensor(a) self, int dim, SymInt start, SymInt length) -> Tensor(a)",
    "aten::split.Tensor(Tensor(a) self, SymInt split_size, int dim=0) -> Tensor[]",
    "aten::split.sizes(Tensor(a) self, SymInt[] split_size, int dim=0) -> Tensor[]",
    "aten::split_with_sizes(Tensor(a) self, SymInt[] split_sizes, int dim=0) -> Tensor[]",
    "aten::chunk(Tensor(a) self, int chunks, int dim=0) -> Tensor[]",
    "aten::contiguous(Tensor(a) self, *, MemoryFormat memory_format=0) -> Tensor(a)",
    "aten::detach(Tensor(a) self) -> Tensor(a)",
    "aten::clone(Tensor self, *, MemoryFormat? memory_format=None) -> Tensor",
    "aten::cat(Tensor[] tensors, int dim=0) -> Tensor",
    "aten::stack(Tensor[] tensors, int dim=0) -> Tensor",
    "aten::masked_fill.Scalar(Tensor self, Tensor mask, Scalar value) -> Tensor",
    "aten::masked_fill.Tensor(Tensor self, Tensor mask, Tensor value) -> Tensor",
    "aten::index_select(Tensor self, int dim, Tensor index) -> Tensor",

    // Dtype and device conversions.
    "aten::to.dtype(Tensor(a) self, ScalarType dtype, bool non_blocking=False, bool copy=False, "
    "MemoryFormat? memory_format=None) -> Tensor(a)",
    "aten::to.device(Tensor(a) self, Device device, ScalarType dtype, bool non_blocking=False, "
    "bool copy=False, MemoryFormat? memory_format=None) -> Tensor(a)",
    "aten::to.other(Tensor(a) self, Tensor other, bool non_blocking=False, bool copy=False, "
    "MemoryFormat? memory_format=None) -> Tensor(a)",
    "aten::to.dtype_layout(Tensor(a) self, *, ScalarType? dtype=None, Layout? layout=None, "
    "Device? device=None, bool? pin_memory=None, bool non_blocking=False, bool copy=False, "
    "MemoryFormat? memory_format=None) -> Tensor(a)",
    "aten::to.prim_Device(Tensor(a) self, Device? device, int? dtype=None, bool non_blocking=False, "
    "bool copy=False) -> Tensor(a)",
    "aten::to.prim_dtype(Tensor(a) self, int? dtype=None, bool non_blocking=False, bool copy=False) -> Tensor(a)",
    "aten::type_as(Tensor self, Tensor other) -> Tensor",

    // Factories.
    "aten::ones(SymInt[] size, *, ScalarType? dtype=None, Layout? layout=None, Device? device=None, "
    "bool? pin_memory=None) -> Tensor",
    "aten::zeros(SymInt[] size, *, ScalarType? dtype=None, Layout? layout=None, Device? device=None, "
    "bool? pin_memory=None) -> Tensor",
    "aten::full(SymInt[] size, Scalar fill_value, *, ScalarType? dtype=None, Layout? layout=None, "
    "Device? device=None, bool? pin_memory=None) -> Tensor",
    "aten::ones_like(Tensor self, *, ScalarType? dtype=None, Layout? layout=None, Device? device=None, "
    "bool? pin_memory=None, MemoryFormat? memory_format=None) -> Tensor",
    "aten::zeros_like(Tensor self, *, ScalarType? dtype=None, Layout? layout=None, Device? device=None, "
    "bool? pin_memory=None, MemoryFormat? memory_format=None) -> Tensor",
    "aten::arange(Scalar end, *, ScalarType? dtype=None, Layout? layout=None, Device? device=None, "
    "bool? pin_memory=None) -> Tensor",
    "aten::arange.start(Scalar start, Scalar end, *, ScalarType? dtype=None, Layout? layout=None, "
    "Device? device=None, bool? pin_memory=None) -> Tensor",
    "aten::arange.start_step(Scalar start, Scalar end, Scalar step=1, *, ScalarType? dtype=None, "
    "Layout? layout=None, Device? device=None, bool? pin_memory=None) -> Tensor",
    "aten::scalar_tensor(Scalar s, *, ScalarType? dtype=None, Layout? layout=None, Device? device=None, "
    "bool? pin_memory=None) -> Tensor",

    // Scalars from tensors and between number types.
    "aten::Int.Tensor(Tensor a) -> int",
    "aten::Int.float(float a) -> int",
    "aten::Int.bool(bool a) -> int",
    "aten::Int.Scalar(Scalar a) -> int",
    "aten::Float.Tensor(Tensor a) -> float",
    "aten::Float.int(int a) -> float",
    "aten::Float.bool(bool a) -> float",
    "aten::Float.Scalar(Scalar a) -> float",
    "aten::Bool.Tensor(Tensor a) -> bool",
    "aten::Bool.int(int a) -> bool",
    "aten::Bool.float(float a) -> bool",
    "aten::ScalarImplicit(Tensor a) -> Scalar",
    "aten::device(str a) -> Device",

    // Lists.
    "aten::len.t(t[] a) -> int",
    "aten::len.Tensor(Tensor t) -> int",
    "aten::__getitem__.t(t[] list, int idx) -> t",
    "aten::__range_length(int lo, int hi, int step) -> int",
    "aten::__derive_index(int index, int start, int step) -> int",

    // prim ops that source calls name (`ops.prim.*`).
    "prim::NumToTensor.Scalar(Scalar a) -> Tensor",
    "prim::dtype(Tensor a) -> int",
    "prim::device(Tensor a) -> Device",
    "prim::min.int(int a, int b) -> int",
    "prim::max.int(int a, int b) -> int",
    "!prim::RaiseException(str msg, str? cls=None) -> ...",
};

struct Cursor {
  std::string_view text;
  std::size_t pos = 0;

  [[noreturn]] void fail(std::string_view what) const {
    throw Error(ErrorKind::internal, "", "", "op schema \"" + std::string(text) + "\" at " + std::to_string(pos) + ": " +
                          std::string(what));
  }
  void skip_space() {
    while (pos < text.size() && text[pos] == ' ') ++pos;
  }
  bool eat(std::string_view s) {
    skip_space();
    if (text.substr(pos, s.size()) == s) {
      pos += s.size();
      return true;
    }
    return false;
  }
  void expect(std::string_view s) {
    if (!eat(s)) fail("expected '" + std::string(s) + "'");
  }
  std::string_view word() {
    skip_space();
    const std::size_t start = pos;
    while (pos < text.size() && (std::isalnum(static_cast<unsigned char>(text[pos])) || text[pos] == '_' ||
                                 text[pos] == ':' || text[pos] == '.'))
      ++pos;
    if (pos == start) fail("expected a name");
    return text.substr(start, pos - start);
  }
};

BaseType base_type(Cursor& c, std::string_view name) {
  if (name == "Tensor") return BaseType::tensor;
  if (name == "int" || name == "SymInt") return BaseType::int_;
  if (name == "float") return BaseType::float_;
  if (name == "bool") return BaseType::bool_;
  if (name == "str") return BaseType::str;
  if (name == "Scalar") return BaseType::scalar;
  if (name == "ScalarType") return BaseType::scalar_type;
  if (name == "Layout") return BaseType::layout;
  if (name == "MemoryFormat") return BaseType::memory_format;
  if (name == "Device") return BaseType::device;
  if (name == "Generator") return BaseType::generator;
  if (name == "t" || name == "t1" || name == "t2") return BaseType::any;
  c.fail("unknown type " + std::string(name));
}

TypeSpec parse_type(Cursor& c) {
  TypeSpec t;
  t.base = base_type(c, c.word());
  if (c.eat("(")) {  // alias annotation: (a), (a!), (a -> *)
    while (c.pos < c.text.size() && c.text[c.pos] != ')') {
      if (c.text[c.pos] == '!') t.mutated = true;
      ++c.pos;
    }
    c.expect(")");
    t.aliased = !t.mutated;
  }
  if (c.eat("[")) {
    t.list = true;
    c.skip_space();
    const std::size_t start = c.pos;
    while (c.pos < c.text.size() && std::isdigit(static_cast<unsigned char>(c.text[c.pos]))) ++c.pos;
    if (c.pos > start) t.list_size = std::stoi(std::string(c.text.substr(start, c.pos - start)));
    c.expect("]");
    if (c.eat("(")) {  // Tensor(a)[] style annotations after the list
      while (c.pos < c.text.size() && c.text[c.pos] != ')') ++c.pos;
      c.expect(")");
    }
  }
  if (c.eat("?")) t.optional = true;
  return t;
}

DefaultValue parse_default(Cursor& c, const TypeSpec& type) {
  c.skip_space();
  if (c.eat("None")) return NoneDefault{};
  if (c.eat("True")) return true;
  if (c.eat("False")) return false;
  if (c.eat("'")) {
    const std::size_t end = c.text.find('\'', c.pos);
    if (end == std::string_view::npos) c.fail("unterminated string");
    std::string s(c.text.substr(c.pos, end - c.pos));
    c.pos = end + 1;
    return s;
  }
  if (c.eat("[")) {
    std::vector<std::int64_t> items;
    while (!c.eat("]")) {
      c.skip_space();
      std::int64_t v = 0;
      auto [p, ec] = std::from_chars(c.text.data() + c.pos, c.text.data() + c.text.size(), v);
      if (ec != std::errc()) c.fail("bad list default");
      c.pos = static_cast<std::size_t>(p - c.text.data());
      items.push_back(v);
      c.eat(",");
    }
    return items;
  }
  c.skip_space();
  const std::size_t start = c.pos;
  while (c.pos < c.text.size() && c.text[c.pos] != ',' && c.text[c.pos] != ')') ++c.pos;
  const std::string number(c.text.substr(start, c.pos - start));
  const bool is_float = type.base == BaseType::float_ || number.find_first_of(".e") != std::string::npos;
  if (is_float) {
    double d = 0;
    auto [p, ec] = std::from_chars(number.data(), number.data() + number.size(), d);
    if (ec != std::errc() || p != number.data() + number.size()) c.fail("bad float default");
    return d;
  }
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(number.data(), number.data() + number.size(), v);
  if (ec != std::errc() || p != number.data() + number.size()) c.fail("bad int default");
  return v;
}

struct Table {
  std::vector<OpSchema> schemas;
  std::map<std::string, std::vector<const OpSchema*>, std::less<>> by_name;
};

const Table& table() {
  static const Table t = [] {
    Table out;
    out.schemas.reserve(std::size(kSchemas));
    for (std::string_view s : kSchemas) {
      const bool impure = !s.empty() && s.front() == '!';
      OpSchema schema = parse_schema(impure ? s.substr(1) : s);
      schema.pure = !impure;
      out.schemas.push_back(std::move(schema));
    }
    for (const OpSchema& s : out.schemas) out.by_name[s.name].push_back(&s);
    return out;
  }();
  return t;
}

}  // namespace

OpSchema parse_schema(std::string_view text) {
  Cursor c{text};
  OpSchema s;
  s.text = std::string(text);
  const std::string_view full = c.word();
  const std::size_t ns = full.find("::");
  if (ns == std::string_view::npos) c.fail("expected namespace::name");
  const std::size_t dot = full.find('.', ns);
  s.name = std::string(full.substr(0, dot));
  if (dot != std::string_view::npos) s.overload = std::string(full.substr(dot + 1));
  c.expect("(");
  bool keyword_only = false;
  if (!c.eat(")")) {
    while (true) {
      if (c.eat("*")) {
        keyword_only = true;
      } else {
        ArgSchema a;
        a.type = parse_type(c);
        a.name = std::string(c.word());
        a.keyword_only = keyword_only;
        if (c.eat("=")) a.default_value = parse_default(c, a.type);
        s.args.push_back(std::move(a));
      }
      if (c.eat(")")) break;
      c.expect(",");
    }
  }
  c.expect("->");
  if (c.eat("...")) {
    s.variadic_returns = true;
  } else if (c.eat("(")) {
    if (!c.eat(")")) {
      while (true) {
        s.returns.push_back(parse_type(c));
        if (c.eat(")")) break;
        c.expect(",");
      }
    }
  } else {
    s.returns.push_back(parse_type(c));
  }
  c.skip_space();
  if (c.pos != text.size()) c.fail("trailing text");
  return s;
}

std::span<const OpSchema* const> find_overloads(std::string_view name) {
  const Table& t = table();
  const auto it = t.by_name.find(name);
  if (it == t.by_name.end()) return {};
  return it->second;
}

const OpSchema* find_schema(std::string_view name, std::string_view overload) {
  for (const OpSchema* s : find_overloads(name))
    if (s->overload == overload) return s;
  return nullptr;
}

std::span<const OpSchema> all_schemas() { return table().schemas; }

std::string type_spec_str(const TypeSpec& t) {
  static constexpr std::string_view kNames[] = {"Tensor", "int",    "float",        "bool",   "str",
                                                "Scalar", "ScalarType", "Layout", "MemoryFormat",
                                                "Device", "Generator", "t", "NoneType"};
  std::string out(kNames[static_cast<int>(t.base)]);
  if (t.list) {
    out.append("[");  // append, not +=: GCC 12 -Wrestrict false positive (PR105651)
    if (t.list_size) out.append(std::to_string(t.list_size));
    out.append("]");
  }
  if (t.optional) out.append("?");
  return out;
}

}  // namespace kiln::import
