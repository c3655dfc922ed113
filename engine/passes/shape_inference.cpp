// One forward walk over the graph with an abstract value per IR value; see the header.
#include "engine/passes/shape_inference.hpp"

#include <algorithm>
#include <cstring>
#include <functional>
#include <limits>
#include <set>

#include "engine/ir/scalar_type.hpp"
#include "engine/passes/passes.hpp"
#include "kernels/dtype_promotion.hpp"
#include "kernels/tensor.hpp"
#include "kiln/error.hpp"

namespace kiln::passes {
namespace {

using ir::SymInt;
using ir::ValueId;
using Dims = std::vector<std::optional<SymInt>>;

constexpr std::int64_t kHugeEnd = std::numeric_limits<std::int64_t>::max() / 2;

// What inference knows of one value.
struct Abs {
  // Tensors.
  std::optional<DType> dtype;
  std::optional<Dims> dims;
  // ints, and int-valued 0-dim tensors (NumToTensor(size) chains).
  std::optional<SymInt> scalar;
  // int lists.
  std::optional<Dims> list;
  // Other known constants.
  std::optional<double> f;
  std::optional<bool> b;
  std::optional<std::string> str;
  bool none = false;
  // Tuples and lists of tensors: the elements.
  std::optional<std::vector<Abs>> elems;
  // Integer tensors whose elements all lie in [0, max_value] (index arithmetic such as
  // RoBERTa's position ids, cumsum(mask) + padding_idx).
  std::optional<SymInt> max_value;
  // A 0-dim tensor from the constants table, which promotes like a Python number.
  bool wrapped = false;

  bool operator==(const Abs&) const = default;
};

// PyTorch's result_type over an op's operands; unknown when any tensor dtype is.
struct ResultType {
  kernels::ResultType rt;
  bool unknown = false;

  void tensor(const Abs& a) {
    if (!a.dtype) {
      unknown = true;
      return;
    }
    if (a.wrapped) {
      rt.add_number(kernels::wrapped_number_dtype(*a.dtype));
    } else {
      rt.add_tensor(*a.dtype, a.dims && a.dims->empty());
    }
  }
  void number(ir::TypeKind k) {
    rt.add_number(k == ir::TypeKind::float_ ? DType::float32 : k == ir::TypeKind::bool_ ? DType::bool_ : DType::int64);
  }
  std::optional<DType> result() const { return unknown ? std::nullopt : rt.result(); }
};

int category(DType t) { return kernels::dtype_category(t); }

bool is_input_derived(const SymInt& s) { return !s.is_constant(); }

class Inference {
 public:
  Inference(ir::Graph& g, const std::map<std::string, import::ArchiveTensor>& tensors, ShapeReport& report)
      : g_(g), tensors_(tensors), report_(report), abs_(g.values.size()) {}

  void run_block(ir::BlockId b);
  void write_types();

 private:
  Abs& at(ValueId v) { return abs_.at(ir::idx(v)); }
  const Abs& in(ir::NodeId n, std::size_t i) { return abs_.at(ir::idx(ir::node(g_, n).inputs.at(i))); }
  std::optional<SymInt> int_in(ir::NodeId n, std::size_t i) { return in(n, i).scalar; }
  std::optional<std::int64_t> const_int(ir::NodeId n, std::size_t i) {
    const auto s = int_in(n, i);
    return s ? s->constant() : std::nullopt;
  }
  ir::TypeKind kind_in(ir::NodeId n, std::size_t i) { return ir::value(g_, ir::node(g_, n).inputs.at(i)).type.kind; }

  void infer(ir::NodeId n);
  void infer_if(ir::NodeId n);
  void infer_loop(ir::NodeId n);
  void constant(ir::NodeId n);

  // Constraint bookkeeping.
  // `has_literal`: the sizes compared contain a literal even if both mention symbols (the
  // element count batch*56 of a view against batch*seq*8).
  void require(ir::NodeId n, const SymInt& derived, const SymInt& literal, bool or_one, const std::string& what,
               bool has_literal = false);
  void silent(ir::NodeId n, const SymInt& derived, const SymInt& literal, const std::string& what);
  void limit(ir::NodeId n, const SymInt& derived, const SymInt& bound, const std::string& what, bool value_bound = false);
  void infer_range(ir::NodeId n);
  std::optional<SymInt> broadcast_dim(ir::NodeId n, const std::optional<SymInt>& a, const std::optional<SymInt>& b);
  std::optional<Dims> broadcast(ir::NodeId n, const std::optional<Dims>& a, const std::optional<Dims>& b);
  std::optional<SymInt> numel(const std::optional<Dims>& d);
  std::optional<std::size_t> wrap_dim(std::optional<std::int64_t> d, std::size_t rank);

  // Result helpers.
  Abs elementwise(ir::NodeId n, std::size_t count);
  Abs same_as(ir::NodeId n, std::size_t i) { return tensor_like(in(n, i)); }
  static Abs tensor_like(const Abs& a) {
    Abs r;
    r.dtype = a.dtype;
    r.dims = a.dims;
    return r;
  }

  ir::Graph& g_;
  const std::map<std::string, import::ArchiveTensor>& tensors_;
  ShapeReport& report_;
  std::vector<Abs> abs_;

  friend ShapeReport passes::infer_shapes(ir::Graph&, const std::vector<InputSpec>&,
                                          const std::map<std::string, import::ArchiveTensor>&,
                                          const std::vector<std::vector<std::int64_t>>&);
};

std::string describe(const ir::Graph& g, ir::NodeId n) { return std::string(ir::kind_str(g, n)); }

void Inference::require(ir::NodeId n, const SymInt& derived, const SymInt& literal, bool or_one, const std::string& what,
                        bool has_literal) {
  if (derived == literal) return;
  if (!is_input_derived(derived) && !is_input_derived(literal)) return;  // two literals: not about inputs
  // Two input sizes compared with no literal in between say nothing about the trace.
  if (!has_literal && is_input_derived(derived) && is_input_derived(literal)) return;
  ShapeFinding f;
  f.kind = ShapeFinding::Kind::refuses;
  f.loc = ir::node(g_, n).loc;
  f.op = describe(g_, n);
  f.lhs = is_input_derived(derived) ? derived : literal;
  f.rhs = is_input_derived(derived) ? literal : derived;
  f.or_one = or_one;
  f.detail = what + ": needs " + report_.str(f.lhs) + " == " + report_.str(f.rhs) + (or_one ? " (or 1)" : "");
  if (const auto s = ir::solve_equal(f.lhs, f.rhs)) {
    f.symbol = s->first;
    f.value = s->second;
  }
  for (const ShapeFinding& old : report_.findings)
    if (old.loc == f.loc && old.lhs == f.lhs && old.rhs == f.rhs) return;
  report_.findings.push_back(std::move(f));
}

void Inference::silent(ir::NodeId n, const SymInt& derived, const SymInt& literal, const std::string& what) {
  ShapeFinding f;
  f.kind = ShapeFinding::Kind::silent;
  f.loc = ir::node(g_, n).loc;
  f.op = describe(g_, n);
  f.lhs = derived;
  f.rhs = literal;
  f.detail = what + ": cuts " + report_.str(derived) + " to at most " + report_.str(literal);
  if (const auto s = derived.as_symbol()) f.symbol = *s;
  f.value = literal.constant();
  report_.findings.push_back(std::move(f));
}

void Inference::limit(ir::NodeId n, const SymInt& derived, const SymInt& bound, const std::string& what, bool value_bound) {
  if (!is_input_derived(derived) || is_input_derived(bound)) return;
  ShapeFinding f;
  f.kind = ShapeFinding::Kind::limit;
  f.value_bound = value_bound;
  f.loc = ir::node(g_, n).loc;
  f.op = describe(g_, n);
  f.lhs = derived;
  f.rhs = bound;
  f.detail = what + ": needs " + report_.str(derived) + " <= " + report_.str(bound);
  if (const auto s = ir::solve_equal(derived, bound)) {
    f.symbol = s->first;
    f.value = s->second;
  }
  for (const ShapeFinding& old : report_.findings)
    if (old.loc == f.loc && old.lhs == f.lhs && old.rhs == f.rhs) return;
  report_.findings.push_back(std::move(f));
}

// Upper bounds of non-negative integer tensors, through the ops index arithmetic uses.
void Inference::infer_range(ir::NodeId n) {
  const ir::Node& node = ir::node(g_, n);
  if (node.outputs.empty() || node.inputs.empty()) return;
  const std::string_view kind = ir::kind_str(g_, n);
  if (kind == "aten::embedding" || kind == "kiln::embedding_layer_norm") {
    // The indices must stay inside the table: (table, ids) pairs, from input 4 when fused.
    for (std::size_t t = kind == "aten::embedding" ? 0 : 4; t + 1 < node.inputs.size(); t += 2) {
      const auto& w = in(n, t).dims;
      const auto& idx = in(n, t + 1).max_value;
      if (w && !w->empty() && (*w)[0] && (*w)[0]->constant() && idx)
        limit(n, *idx, SymInt::of(*(*w)[0]->constant() - 1), "index range", true);
      if (kind == "aten::embedding") break;
    }
    return;
  }
  Abs& out = at(node.outputs[0]);
  if (!out.dtype || kernels::dtype_category(*out.dtype) == 2) return;
  const Abs& a = in(n, 0);
  auto bound_of = [&](std::size_t i) -> std::optional<SymInt> {
    const Abs& v = in(n, i);
    if (v.max_value) return v.max_value;
    if (v.scalar && v.scalar->constant() && *v.scalar->constant() >= 0) return v.scalar;
    return std::nullopt;
  };
  static const std::set<std::string_view> kSame{"aten::slice", "aten::select", "aten::expand", "aten::expand_as",
                                                 "aten::view", "aten::reshape", "aten::unsqueeze", "aten::squeeze",
                                                 "aten::permute", "aten::transpose", "aten::contiguous", "aten::detach",
                                                 "aten::to", "aten::type_as", "aten::clone", "aten::flatten"};
  if (kind == "prim::NumToTensor") {
    out.max_value = a.scalar;
  } else if (*out.dtype == DType::bool_) {
    out.max_value = SymInt::of(1);
  } else if (kSame.count(kind)) {
    out.max_value = a.max_value;
  } else if (kind == "aten::cumsum" && a.max_value && a.dims) {
    const auto d = wrap_dim(const_int(n, 1), a.dims->size());
    if (d && (*a.dims)[*d]) out.max_value = ir::mul(*a.max_value, *(*a.dims)[*d]);
  } else if (kind == "aten::mul" && node.inputs.size() >= 2) {
    const auto x = bound_of(0), y = bound_of(1);
    if (x && y) out.max_value = ir::mul(*x, *y);
  } else if (kind == "aten::add" && node.inputs.size() >= 2 && (node.inputs.size() < 3 || const_int(n, 2) == 1)) {
    const auto x = bound_of(0), y = bound_of(1);
    if (x && y) out.max_value = ir::add(*x, *y);
  }
}

std::optional<SymInt> Inference::broadcast_dim(ir::NodeId n, const std::optional<SymInt>& a, const std::optional<SymInt>& b) {
  if (!a || !b) {
    // An unknown against 1 is the unknown; anything else stays unknown.
    if (a && a->constant() == 1) return b;
    if (b && b->constant() == 1) return a;
    return std::nullopt;
  }
  if (*a == *b) return a;
  if (a->constant() == 1) return b;
  if (b->constant() == 1) return a;
  if (is_input_derived(*a) != is_input_derived(*b)) {
    require(n, *a, *b, true, "broadcasting");
    return is_input_derived(*a) ? b : a;  // what the size must be
  }
  return std::nullopt;
}

std::optional<Dims> Inference::broadcast(ir::NodeId n, const std::optional<Dims>& a, const std::optional<Dims>& b) {
  if (!a || !b) return std::nullopt;
  const std::size_t rank = std::max(a->size(), b->size());
  Dims out(rank);
  for (std::size_t i = 0; i < rank; ++i) {
    const std::size_t ia = i + a->size(), ib = i + b->size();
    const std::optional<SymInt> da = ia >= rank ? (*a)[ia - rank] : std::optional(SymInt::of(1));
    const std::optional<SymInt> db = ib >= rank ? (*b)[ib - rank] : std::optional(SymInt::of(1));
    out[i] = broadcast_dim(n, da, db);
  }
  return out;
}

std::optional<SymInt> Inference::numel(const std::optional<Dims>& d) {
  if (!d) return std::nullopt;
  SymInt total = SymInt::of(1);
  for (const auto& x : *d) {
    if (!x) return std::nullopt;
    auto next = ir::mul(total, *x);
    if (!next) return std::nullopt;
    total = std::move(*next);
  }
  return total;
}

std::optional<std::size_t> Inference::wrap_dim(std::optional<std::int64_t> d, std::size_t rank) {
  if (!d) return std::nullopt;
  const auto r = static_cast<std::int64_t>(rank);
  std::int64_t v = *d < 0 ? *d + r : *d;
  if (v < 0 || v >= r) return std::nullopt;
  return static_cast<std::size_t>(v);
}

Abs Inference::elementwise(ir::NodeId n, std::size_t count) {
  Abs r;
  ResultType rt;
  std::optional<Dims> shape;
  bool first_tensor = true;
  for (std::size_t i = 0; i < count; ++i) {
    const Abs& a = in(n, i);
    const ir::TypeKind k = kind_in(n, i);
    if (k == ir::TypeKind::tensor) {
      rt.tensor(a);
      shape = first_tensor ? a.dims : broadcast(n, shape, a.dims);
      first_tensor = false;
    } else if (k == ir::TypeKind::int_ || k == ir::TypeKind::float_ || k == ir::TypeKind::bool_) {
      rt.number(k);
    }
  }
  r.dtype = rt.result();
  r.dims = shape;
  return r;
}

void Inference::constant(ir::NodeId n) {
  const ir::Node& node = ir::node(g_, n);
  Abs& out = at(node.outputs[0]);
  if (node.attrs.empty()) {
    out.none = true;
    return;
  }
  const ir::AttrValue& v = node.attrs[0].value;
  if (const auto* i = std::get_if<std::int64_t>(&v)) {
    out.scalar = SymInt::of(*i);
  } else if (const auto* d = std::get_if<double>(&v)) {
    out.f = *d;
  } else if (const auto* b = std::get_if<bool>(&v)) {
    out.b = *b;
  } else if (const auto* s = std::get_if<std::string>(&v)) {
    out.str = *s;
  } else if (const auto* l = std::get_if<std::vector<std::int64_t>>(&v)) {
    Dims items;
    for (std::int64_t x : *l) items.push_back(SymInt::of(x));
    out.list = std::move(items);
  } else if (const auto* t = std::get_if<ir::TensorRef>(&v)) {
    const auto it = tensors_.find(t->name);
    if (it == tensors_.end()) return;
    const format::TensorData& data = it->second.data;
    out.dtype = data.dtype;
    Dims dims;
    for (std::int64_t s : data.sizes) dims.push_back(SymInt::of(s));
    out.dims = std::move(dims);
    out.wrapped = it->second.kind == import::ArchiveTensor::Kind::constant && data.sizes.empty();
    // Small non-negative integer tables (BERT's position_ids buffer) bound index ranges.
    if (data.dtype && kernels::dtype_category(*data.dtype) == 1 && data.numel() <= (1 << 20)) {
      kernels::Tensor view;
      view.dtype = *data.dtype;
      view.sizes = data.sizes;
      view.strides = data.strides;
      view.offset = data.storage_offset;
      view.buffer = kernels::Buffer::borrow(data.storage.data(), data.storage.size(), nullptr);
      std::int64_t lo = 0, hi = 0;
      for (std::int64_t i = 0; i < data.numel(); ++i) {
        const std::int64_t v = kernels::load_int(view, i);
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
      if (lo >= 0) out.max_value = SymInt::of(hi);
    }
    // 0-dim integer constants (`seq_length + CONSTANTS.c1`) join shape arithmetic.
    if (data.sizes.empty() && data.dtype && (*data.dtype == DType::int64 || *data.dtype == DType::int32) &&
        data.is_contiguous()) {
      const auto bytes = data.contiguous_bytes();
      if (*data.dtype == DType::int64 && bytes.size() >= 8) {
        std::int64_t x = 0;
        std::memcpy(&x, bytes.data(), 8);
        out.scalar = SymInt::of(x);
      } else if (*data.dtype == DType::int32 && bytes.size() >= 4) {
        std::int32_t x = 0;
        std::memcpy(&x, bytes.data(), 4);
        out.scalar = SymInt::of(x);
      }
    }
  }
}

Abs join(const Abs& a, const Abs& b) {
  if (a == b) return a;
  Abs r;
  if (a.dtype == b.dtype) r.dtype = a.dtype;
  if (a.dims && b.dims && a.dims->size() == b.dims->size()) {
    Dims d(a.dims->size());
    for (std::size_t i = 0; i < d.size(); ++i)
      if ((*a.dims)[i] == (*b.dims)[i]) d[i] = (*a.dims)[i];
    r.dims = std::move(d);
  }
  if (a.scalar == b.scalar) r.scalar = a.scalar;
  if (a.elems && b.elems && a.elems->size() == b.elems->size()) {
    std::vector<Abs> e;
    for (std::size_t i = 0; i < a.elems->size(); ++i) e.push_back(join((*a.elems)[i], (*b.elems)[i]));
    r.elems = std::move(e);
  }
  return r;
}

void Inference::infer_if(ir::NodeId n) {
  const ir::Node& node = ir::node(g_, n);
  const ir::BlockId then_b = node.blocks.at(0), else_b = node.blocks.at(1);
  const std::optional<bool> cond = in(n, 0).b;
  if (cond != std::optional(false)) run_block(then_b);
  if (cond != std::optional(true)) run_block(else_b);
  const std::vector<ValueId> outs = ir::node(g_, n).outputs;
  for (std::size_t i = 0; i < outs.size(); ++i) {
    const Abs& t = at(ir::block(g_, then_b).returns.at(i));
    const Abs& e = at(ir::block(g_, else_b).returns.at(i));
    at(outs[i]) = cond == std::optional(true) ? t : cond == std::optional(false) ? e : join(t, e);
  }
}

void Inference::infer_loop(ir::NodeId n) {
  const ir::Node& node = ir::node(g_, n);
  const ir::BlockId body = node.blocks.at(0);
  const std::vector<ValueId> inputs = node.inputs;
  const std::vector<ValueId> outs = node.outputs;
  const std::vector<ValueId> params = ir::block(g_, body).params;
  at(params.at(0)) = Abs{};
  for (std::size_t i = 0; i + 1 < params.size(); ++i) at(params[i + 1]) = at(inputs.at(i + 2));
  // A few rounds of body inference until the carried values stop changing; what still
  // changes after that is joined away to unknown.
  for (int round = 0; round < 3; ++round) {
    run_block(body);
    bool changed = false;
    for (std::size_t i = 0; i + 1 < params.size(); ++i) {
      Abs joined = join(at(params[i + 1]), at(ir::block(g_, body).returns.at(i + 1)));
      if (!(joined == at(params[i + 1]))) {
        at(params[i + 1]) = std::move(joined);
        changed = true;
      }
    }
    if (!changed) break;
  }
  for (std::size_t i = 0; i < outs.size(); ++i) at(outs[i]) = join(at(params.at(i + 1)), at(ir::block(g_, body).returns.at(i + 1)));
}

void Inference::run_block(ir::BlockId b) {
  const std::vector<ir::NodeId> nodes = ir::block(g_, b).nodes;
  for (ir::NodeId n : nodes) {
    if (ir::node(g_, n).erased) continue;
    infer(n);
    infer_range(n);
  }
}

void Inference::infer(ir::NodeId n) {
  const std::string_view kind = ir::kind_str(g_, n);
  const std::string_view ov = ir::symbol_str(g_, ir::node(g_, n).overload);
  const std::vector<ValueId> outs = ir::node(g_, n).outputs;
  const std::size_t nin = ir::node(g_, n).inputs.size();
  auto set = [&](Abs a) {
    if (!outs.empty()) at(outs[0]) = std::move(a);
  };
  const auto in_dims = [&](std::size_t i) -> const std::optional<Dims>& { return in(n, i).dims; };

  if (kind == "prim::Constant") return constant(n);
  if (kind == "prim::If") return infer_if(n);
  if (kind == "prim::Loop") return infer_loop(n);

  // --- ints, lists and tuples ---
  if (kind == "aten::size" && ov == "int") {
    const auto& d = in_dims(0);
    Abs r;
    if (d) {
      if (const auto i = wrap_dim(const_int(n, 1), d->size())) r.scalar = (*d)[*i];
    }
    return set(r);
  }
  if (kind == "aten::size") {
    Abs r;
    r.list = in_dims(0);
    return set(r);
  }
  if (kind == "aten::dim") {
    Abs r;
    if (in_dims(0)) r.scalar = SymInt::of(static_cast<std::int64_t>(in_dims(0)->size()));
    return set(r);
  }
  if (kind == "prim::NumToTensor") {
    Abs r;
    r.dims = Dims{};
    const ir::TypeKind k = kind_in(n, 0);
    r.dtype = k == ir::TypeKind::float_ ? DType::float64 : k == ir::TypeKind::bool_ ? DType::bool_ : DType::int64;
    if (k == ir::TypeKind::int_) r.scalar = in(n, 0).scalar;
    return set(r);
  }
  if (kind == "aten::Int" || kind == "aten::ScalarImplicit") {
    Abs r;
    if (ov == "Tensor" || ov == "Scalar" || kind == "aten::ScalarImplicit") r.scalar = in(n, 0).scalar;
    if (ov == "bool" && in(n, 0).b) r.scalar = SymInt::of(*in(n, 0).b ? 1 : 0);
    return set(r);
  }
  if (kind == "prim::dtype") {
    Abs r;
    if (in(n, 0).dtype) r.scalar = SymInt::of(ir::scalar_type_code(*in(n, 0).dtype));
    return set(r);
  }
  if (kind == "prim::ListConstruct") {
    Abs r;
    if (!outs.empty() && ir::value(g_, outs[0]).type.elems.size() == 1 &&
        ir::value(g_, outs[0]).type.elems[0].kind == ir::TypeKind::int_) {
      Dims items;
      for (std::size_t i = 0; i < nin; ++i) items.push_back(in(n, i).scalar);
      r.list = std::move(items);
    } else {
      std::vector<Abs> items;
      for (std::size_t i = 0; i < nin; ++i) items.push_back(in(n, i));
      r.elems = std::move(items);
    }
    return set(r);
  }
  if (kind == "prim::TupleConstruct") {
    Abs r;
    std::vector<Abs> items;
    for (std::size_t i = 0; i < nin; ++i) items.push_back(in(n, i));
    r.elems = std::move(items);
    return set(r);
  }
  if (kind == "prim::TupleUnpack" || kind == "prim::ListUnpack") {
    const Abs src = in(n, 0);
    for (std::size_t i = 0; i < outs.size(); ++i) {
      Abs r;
      if (src.elems && i < src.elems->size()) r = (*src.elems)[i];
      if (src.list && i < src.list->size()) r.scalar = (*src.list)[i];
      at(outs[i]) = std::move(r);
    }
    return;
  }
  if (kind == "prim::TupleIndex") {
    const Abs src = in(n, 0);
    const auto i = const_int(n, 1);
    Abs r;
    if (src.elems && i && *i >= 0 && static_cast<std::size_t>(*i) < src.elems->size()) r = (*src.elems)[static_cast<std::size_t>(*i)];
    return set(r);
  }
  if (kind == "aten::__getitem__") {
    const Abs src = in(n, 0);
    const auto i = const_int(n, 1);
    Abs r;
    if (src.list && i) {
      const auto len = static_cast<std::int64_t>(src.list->size());
      const std::int64_t j = *i < 0 ? *i + len : *i;
      if (j >= 0 && j < len) r.scalar = (*src.list)[static_cast<std::size_t>(j)];
    }
    if (src.elems && i && *i >= 0 && static_cast<std::size_t>(*i) < src.elems->size()) r = (*src.elems)[static_cast<std::size_t>(*i)];
    return set(r);
  }
  if (kind == "aten::len") {
    Abs r;
    const Abs& src = in(n, 0);
    if (src.list) r.scalar = SymInt::of(static_cast<std::int64_t>(src.list->size()));
    if (src.elems) r.scalar = SymInt::of(static_cast<std::int64_t>(src.elems->size()));
    return set(r);
  }
  if (kind == "prim::unchecked_cast") return set(in(n, 0));

  // Scalar arithmetic, on ints or on int-valued 0-dim tensors.
  const bool arith = kind == "aten::add" || kind == "aten::sub" || kind == "aten::mul" || kind == "aten::floordiv" ||
                     kind == "aten::neg" || kind == "aten::rsub";
  std::optional<SymInt> scalar_result;
  if (arith) {
    const auto a = in(n, 0).scalar;
    const auto b = nin > 1 ? in(n, 1).scalar : std::nullopt;
    // Only alpha == 1 (the traced default) keeps add/sub simple.
    const bool alpha_one = nin < 3 || const_int(n, 2) == 1;
    if (kind == "aten::neg" && a) scalar_result = ir::mul(*a, SymInt::of(-1));
    if (a && b && alpha_one) {
      if (kind == "aten::add") scalar_result = ir::add(*a, *b);
      if (kind == "aten::sub") scalar_result = ir::sub(*a, *b);
      if (kind == "aten::rsub") scalar_result = ir::sub(*b, *a);
      if (kind == "aten::mul") scalar_result = ir::mul(*a, *b);
      if (kind == "aten::floordiv") {
        const auto ca = a->constant(), cb = b->constant();
        if (ca && cb && *cb != 0 && !(*ca == INT64_MIN && *cb == -1)) {
          std::int64_t q = *ca / *cb;
          if ((*ca % *cb != 0) && ((*ca < 0) != (*cb < 0))) --q;
          scalar_result = SymInt::of(q);
        } else {
          scalar_result = ir::exact_div(*a, *b);
        }
      }
    }
    if (ov == "int" || ov == "float" || ov == "int_float" || ov == "float_int") {
      Abs r;
      if (ov == "int") r.scalar = scalar_result;
      return set(r);
    }
  }
  // Scalar comparisons.
  if ((kind == "aten::eq" || kind == "aten::ne" || kind == "aten::lt" || kind == "aten::gt" || kind == "aten::le" ||
       kind == "aten::ge") &&
      ov == "int") {
    Abs r;
    const auto a = const_int(n, 0), b = const_int(n, 1);
    if (a && b) {
      if (kind == "aten::eq") r.b = *a == *b;
      if (kind == "aten::ne") r.b = *a != *b;
      if (kind == "aten::lt") r.b = *a < *b;
      if (kind == "aten::gt") r.b = *a > *b;
      if (kind == "aten::le") r.b = *a <= *b;
      if (kind == "aten::ge") r.b = *a >= *b;
    }
    return set(r);
  }
  if (kind == "aten::__not__") {
    Abs r;
    if (in(n, 0).b) r.b = !*in(n, 0).b;
    return set(r);
  }
  if (kind == "aten::Bool") {
    Abs r;
    if (ov == "int" && const_int(n, 0)) r.b = *const_int(n, 0) != 0;
    return set(r);
  }

  // --- tensors ---
  // Binary elementwise ops with broadcasting and promotion.
  static const std::set<std::string_view> kBinary{"aten::add", "aten::sub", "aten::rsub", "aten::mul",
                                                  "aten::floor_divide", "aten::remainder", "aten::pow",
                                                  "aten::add_", "aten::sub_", "aten::mul_", "aten::div_"};
  static const std::set<std::string_view> kCompare{"aten::eq", "aten::ne", "aten::lt", "aten::gt", "aten::le", "aten::ge"};
  if (kBinary.count(kind)) {
    Abs r = elementwise(n, std::min<std::size_t>(nin, 2));
    if (kind == "aten::pow" && ov == "Scalar") r = elementwise(n, 2);
    if (kind.back() == '_') r.dtype = in(n, 0).dtype;  // in-place keeps self's dtype
    r.scalar = scalar_result;
    return set(r);
  }
  if (kind == "aten::div" || kind == "kiln::div_legacy") {
    Abs r = elementwise(n, 2);
    const bool has_mode = ov == "Tensor_mode" || ov == "Scalar_mode";
    const bool rounding = has_mode && !in(n, 2).none;
    if (kind == "kiln::div_legacy") {
      // Integer division truncates in old archives; a float operand makes it true division.
      if (r.dtype && category(*r.dtype) == 2) {
      } else {
        r.dtype = r.dtype;
      }
    } else if (!rounding && r.dtype && category(*r.dtype) < 2) {
      r.dtype = DType::float32;
    }
    return set(r);
  }
  if (kCompare.count(kind)) {
    Abs r = elementwise(n, 2);
    r.dtype = DType::bool_;
    return set(r);
  }
  if (kind == "aten::where") {
    Abs cond = elementwise(n, 1);
    Abs r = elementwise(n, 3);
    (void)cond;
    Abs vals;
    ResultType rt;
    for (std::size_t i = 1; i < 3; ++i) {
      if (kind_in(n, i) == ir::TypeKind::tensor) {
        rt.tensor(in(n, i));
      } else {
        rt.number(kind_in(n, i));
      }
    }
    r.dtype = rt.result();
    return set(r);
  }
  if (kind == "aten::masked_fill") {
    Abs r = tensor_like(in(n, 0));
    r.dims = broadcast(n, in_dims(0), in_dims(1));
    return set(r);
  }
  static const std::set<std::string_view> kSame{
      "aten::relu",    "aten::gelu",        "aten::tanh",           "aten::sigmoid",     "aten::silu",
      "aten::abs",     "aten::neg",         "aten::dropout",        "aten::feature_dropout",
      "aten::alpha_dropout", "aten::contiguous", "aten::detach",    "aten::clone",       "aten::layer_norm",
      "aten::bitwise_not", "aten::clamp",   "aten::clamp_min",      "aten::clamp_max"};
  static const std::set<std::string_view> kFloatOut{"aten::sqrt", "aten::rsqrt", "aten::exp", "aten::log", "aten::erf"};
  if (kSame.count(kind) || kFloatOut.count(kind)) {
    Abs r = same_as(n, 0);
    if (kFloatOut.count(kind) && r.dtype && category(*r.dtype) < 2) r.dtype = DType::float32;
    if (kind == "aten::neg") r.scalar = scalar_result;
    if (kind == "aten::layer_norm" && in(n, 1).list && r.dims) {
      const Dims& ns = *in(n, 1).list;
      const Dims& d = *r.dims;
      for (std::size_t i = 0; i < ns.size() && i < d.size(); ++i) {
        const auto& want = ns[ns.size() - 1 - i];
        const auto& have = d[d.size() - 1 - i];
        if (want && have) require(n, *have, *want, false, "normalized_shape");
      }
    }
    return set(r);
  }
  if (kind == "aten::logical_not") {
    Abs r = same_as(n, 0);
    r.dtype = DType::bool_;
    return set(r);
  }
  if (kind == "aten::softmax" || kind == "aten::log_softmax") {
    Abs r = same_as(n, 0);
    if (const auto dt = const_int(n, 2)) r.dtype = ir::dtype_from_scalar_type(*dt);
    return set(r);
  }
  if (kind == "aten::cumsum") {
    Abs r = same_as(n, 0);
    if (const auto dt = const_int(n, 2)) {
      r.dtype = ir::dtype_from_scalar_type(*dt);
    } else if (r.dtype && category(*r.dtype) < 2) {
      r.dtype = DType::int64;
    }
    return set(r);
  }
  if (kind == "aten::to" || kind == "aten::type_as") {
    Abs r = same_as(n, 0);
    std::optional<std::int64_t> code;
    if (kind == "aten::type_as" || ov == "other") {
      r.dtype = in(n, 1).dtype;
    } else if (ov == "dtype" || ov == "prim_dtype") {
      code = const_int(n, 1);
      if (!code && !in(n, 1).none) r.dtype.reset();
    } else if (ov == "device" || ov == "prim_Device") {
      code = const_int(n, 2);
      if (!code && !in(n, 2).none) r.dtype.reset();
    } else if (ov == "dtype_layout") {
      code = const_int(n, 1);
      if (!code && !in(n, 1).none) r.dtype.reset();
    }
    if (code) r.dtype = ir::dtype_from_scalar_type(*code);
    r.scalar = in(n, 0).scalar;
    return set(r);
  }
  // Fused ops (engine/passes/fusions.cpp): their results are those of the ops they replace.
  if (kind == "kiln::add_layer_norm") {
    Abs r = same_as(n, 0);
    r.dims = broadcast(n, in_dims(0), in_dims(1));
    return set(r);
  }
  if (kind == "kiln::embedding_layer_norm") {
    // (normalized_shape, weight, bias, eps, table 1, ids 1, table 2, ids 2, ...): the sum of
    // the lookups, broadcast, normalized.
    Abs r;
    r.dtype = in(n, 4).dtype;
    std::optional<Dims> d;
    for (std::size_t i = 4; i + 1 < ir::node(g_, n).inputs.size(); i += 2) {
      const auto& w = in_dims(i);
      const auto& idx = in_dims(i + 1);
      if (!w || !idx || w->size() != 2) return set(r);
      Dims e = *idx;
      e.push_back((*w)[1]);
      d = i == 4 ? std::optional<Dims>(e) : broadcast(n, d, e);
    }
    r.dims = d;
    return set(r);
  }
  if (kind == "kiln::linear_concat") {
    // (x, w1, b1, w2, b2, ...): x's dims with the weights' rows together as the last.
    const auto& x = in_dims(0);
    Abs r;
    r.dtype = in(n, 0).dtype;
    std::optional<SymInt> width = SymInt::of(0);
    for (std::size_t i = 1; i + 1 < ir::node(g_, n).inputs.size(); i += 2) {
      const auto& w = in_dims(i);
      if (!w || w->size() != 2 || !(*w)[0] || !width) {
        width.reset();
        continue;
      }
      if (x && !x->empty() && x->back() && (*w)[1]) require(n, *x->back(), *(*w)[1], false, "input features");
      width = ir::add(*width, *(*w)[0]);
    }
    if (x && !x->empty() && width) {
      Dims d = *x;
      d.back() = width;
      r.dims = std::move(d);
    }
    return set(r);
  }
  if (kind == "aten::linear" || kind == "kiln::linear_gelu") {
    const auto& x = in_dims(0);
    const auto& w = in_dims(1);
    Abs r;
    r.dtype = in(n, 0).dtype;
    if (x && w && w->size() == 2 && !x->empty()) {
      Dims d = *x;
      if (d.back() && (*w)[1]) require(n, *d.back(), *(*w)[1], false, "input features");
      d.back() = (*w)[0];
      r.dims = std::move(d);
    }
    return set(r);
  }
  if (kind == "aten::matmul" || kind == "aten::bmm") {
    const auto& a = in_dims(0);
    const auto& b = in_dims(1);
    Abs r;
    ResultType rt;
    rt.tensor(in(n, 0));
    rt.tensor(in(n, 1));
    r.dtype = rt.result();
    if (a && b && a->size() >= 2 && b->size() >= 2) {
      const auto& k1 = a->back();
      const auto& k2 = (*b)[b->size() - 2];
      if (k1 && k2) require(n, *k1, *k2, false, "inner dimensions");
      const Dims batch_a(a->begin(), a->end() - 2), batch_b(b->begin(), b->end() - 2);
      auto batch = broadcast(n, batch_a, batch_b);
      if (batch) {
        batch->push_back((*a)[a->size() - 2]);
        batch->push_back(b->back());
        r.dims = std::move(batch);
      }
    }
    return set(r);
  }
  if (kind == "aten::scaled_dot_product_attention" || kind == "kiln::attention") {
    Abs r = same_as(n, 0);
    const auto& q = in_dims(0);
    const auto& v = in_dims(2);
    if (q && v && !q->empty() && !v->empty()) {
      Dims d = *q;
      d.back() = v->back();
      r.dims = std::move(d);
    }
    const auto& k = in_dims(1);
    if (q && k && !q->empty() && !k->empty() && q->back() && k->back()) require(n, *q->back(), *k->back(), false, "head size");
    // The mask must broadcast to (..., Lq, Lk).
    if (q && k && q->size() >= 2 && k->size() >= 2 && !in(n, 3).none && in_dims(3)) {
      Dims scores(q->begin(), q->end() - 1);
      scores.push_back((*k)[k->size() - 2]);
      broadcast(n, scores, in_dims(3));
    }
    return set(r);
  }
  if (kind == "aten::embedding") {
    const auto& w = in_dims(0);
    const auto& idx = in_dims(1);
    Abs r;
    r.dtype = in(n, 0).dtype;
    if (w && idx && w->size() == 2) {
      Dims d = *idx;
      d.push_back((*w)[1]);
      r.dims = std::move(d);
    }
    return set(r);
  }
  if (kind == "aten::view" || kind == "aten::reshape") {
    Abs r = same_as(n, 0);
    r.dims.reset();
    const auto& sizes = in(n, 1).list;
    if (!sizes) return set(r);
    Dims d = *sizes;
    const auto total = numel(in_dims(0));
    std::optional<std::size_t> infer_at;
    SymInt known = SymInt::of(1);
    bool all_known = true;
    for (std::size_t i = 0; i < d.size(); ++i) {
      if (d[i] && d[i]->constant() == -1) {
        infer_at = i;
        continue;
      }
      if (!d[i]) {
        all_known = false;
        continue;
      }
      auto next = ir::mul(known, *d[i]);
      if (!next) {
        all_known = false;
        continue;
      }
      known = *next;
    }
    if (infer_at) {
      d[*infer_at].reset();
      if (total && all_known) d[*infer_at] = ir::exact_div(*total, known);
    } else if (total && all_known) {
      require(n, *total, known, false, "element count", true);
    }
    r.dims = std::move(d);
    return set(r);
  }
  if (kind == "aten::flatten") {
    Abs r = same_as(n, 0);
    const auto& d = in_dims(0);
    r.dims.reset();
    if (d) {
      if (d->empty()) {
        r.dims = Dims{SymInt::of(1)};
        return set(r);
      }
      const auto s = wrap_dim(const_int(n, 1), d->size());
      const auto e = wrap_dim(const_int(n, 2), d->size());
      if (s && e && *s <= *e) {
        Dims out(d->begin(), d->begin() + static_cast<std::ptrdiff_t>(*s));
        const Dims mid(d->begin() + static_cast<std::ptrdiff_t>(*s), d->begin() + static_cast<std::ptrdiff_t>(*e) + 1);
        out.push_back(numel(mid));
        out.insert(out.end(), d->begin() + static_cast<std::ptrdiff_t>(*e) + 1, d->end());
        r.dims = std::move(out);
      }
    }
    return set(r);
  }
  if (kind == "aten::permute") {
    Abs r = same_as(n, 0);
    const auto& d = in_dims(0);
    const auto& p = in(n, 1).list;
    r.dims.reset();
    if (d && p && p->size() == d->size()) {
      Dims out;
      for (const auto& x : *p) {
        const auto i = wrap_dim(x ? x->constant() : std::nullopt, d->size());
        if (!i) return set(r);
        out.push_back((*d)[*i]);
      }
      r.dims = std::move(out);
    }
    return set(r);
  }
  if (kind == "aten::transpose" || kind == "aten::t") {
    Abs r = same_as(n, 0);
    auto& d = r.dims;
    if (!d) return set(r);
    if (kind == "aten::t") {
      if (d->size() == 2) std::swap((*d)[0], (*d)[1]);
      return set(r);
    }
    const auto a = wrap_dim(const_int(n, 1), d->size());
    const auto b = wrap_dim(const_int(n, 2), d->size());
    if (a && b) {
      std::swap((*d)[*a], (*d)[*b]);
    } else {
      d.reset();
    }
    return set(r);
  }
  if (kind == "aten::unsqueeze") {
    Abs r = same_as(n, 0);
    if (r.dims) {
      const auto i = wrap_dim(const_int(n, 1), r.dims->size() + 1);
      if (i) {
        r.dims->insert(r.dims->begin() + static_cast<std::ptrdiff_t>(*i), SymInt::of(1));
      } else {
        r.dims.reset();
      }
    }
    return set(r);
  }
  if (kind == "aten::squeeze") {
    Abs r = same_as(n, 0);
    if (!r.dims) return set(r);
    if (ov == "dim") {
      const auto i = wrap_dim(const_int(n, 1), std::max<std::size_t>(r.dims->size(), 1));
      if (!i || r.dims->empty()) return set(r);
      const auto& x = (*r.dims)[*i];
      if (x && x->constant() == 1) {
        r.dims->erase(r.dims->begin() + static_cast<std::ptrdiff_t>(*i));
      } else if (!x || !x->is_constant()) {
        r.dims.reset();  // depends on the size at run time
      }
      return set(r);
    }
    Dims out;
    for (const auto& x : *r.dims) {
      if (!x || !x->is_constant()) {
        r.dims.reset();
        return set(r);
      }
      if (x->constant() != 1) out.push_back(x);
    }
    r.dims = std::move(out);
    return set(r);
  }
  if (kind == "aten::expand") {
    Abs r = same_as(n, 0);
    r.dims.reset();
    const auto& d = in_dims(0);
    const auto& sizes = in(n, 1).list;
    if (!d || !sizes || sizes->size() < d->size()) return set(r);
    Dims out = *sizes;
    const std::size_t lead = sizes->size() - d->size();
    for (std::size_t i = lead; i < out.size(); ++i) {
      const auto& have = (*d)[i - lead];
      auto& want = out[i];
      if (want && want->constant() == -1) {
        want = have;
        continue;
      }
      if (!have || !want) continue;
      if (have->constant() == 1) continue;
      require(n, *have, *want, true, "expanded size");
    }
    r.dims = std::move(out);
    return set(r);
  }
  if (kind == "aten::expand_as") {
    Abs r = same_as(n, 0);
    r.dims = in_dims(1);
    return set(r);
  }
  if (kind == "aten::select") {
    Abs r = same_as(n, 0);
    if (r.dims) {
      const auto i = wrap_dim(const_int(n, 1), r.dims->size());
      if (i) {
        r.dims->erase(r.dims->begin() + static_cast<std::ptrdiff_t>(*i));
      } else {
        r.dims.reset();
      }
    }
    return set(r);
  }
  if (kind == "aten::slice" || kind == "aten::narrow") {
    Abs r = same_as(n, 0);
    if (!r.dims) return set(r);
    const auto i = wrap_dim(const_int(n, 1), r.dims->size());
    if (!i) {
      r.dims.reset();
      return set(r);
    }
    auto& dim = (*r.dims)[*i];
    if (kind == "aten::narrow") {
      dim = int_in(n, 3);
      return set(r);
    }
    const Abs& start_a = in(n, 2);
    const Abs& end_a = in(n, 3);
    const auto step = const_int(n, 4);
    const std::optional<SymInt> start = start_a.none ? std::optional(SymInt::of(0)) : start_a.scalar;
    std::optional<SymInt> end = end_a.none ? dim : end_a.scalar;
    if (end && end->constant() && *end->constant() >= kHugeEnd) end = dim;
    if (!dim || !start || !end || step != 1 || !start->constant() || *start->constant() < 0) {
      dim.reset();
      return set(r);
    }
    if (*end == *dim) {
      dim = ir::sub(*dim, *start);
    } else if (dim->constant() && end->constant()) {
      std::int64_t e = *end->constant(), d = *dim->constant();
      if (e < 0) e += d;
      e = std::clamp<std::int64_t>(e, 0, d);
      dim = SymInt::of(std::max<std::int64_t>(0, e - *start->constant()));
    } else if (is_input_derived(*dim) && end->constant()) {
      // A literal bound on an input-derived dimension: larger inputs are cut silently.
      silent(n, *dim, *end, "slice end");
      dim.reset();
    } else if (dim->constant() && is_input_derived(*end)) {
      // slice(position_ids, 1, 0, seq): seq positions as long as seq fits the buffer.
      limit(n, *end, *dim, "slice end");
      dim = ir::sub(*end, *start);
    } else {
      dim.reset();
    }
    return set(r);
  }
  if (kind == "aten::split" || kind == "aten::chunk") {
    Abs r;
    const auto& d = in_dims(0);
    if (d && !outs.empty()) {
      // Element shapes are known only when the split is even and constant.
      const auto i = wrap_dim(const_int(n, 2), d->size());
      const auto arg = const_int(n, 1);
      if (i && arg && *arg > 0 && (*d)[*i] && (*d)[*i]->constant()) {
        const std::int64_t size = *(*d)[*i]->constant();
        const std::int64_t piece = kind == "aten::split" ? *arg : (size + *arg - 1) / *arg;
        std::vector<Abs> items;
        for (std::int64_t at = 0; piece > 0 && at < size; at += piece) {
          Abs e = same_as(n, 0);
          (*e.dims)[*i] = SymInt::of(std::min(piece, size - at));
          items.push_back(std::move(e));
        }
        r.elems = std::move(items);
      }
    }
    return set(r);
  }
  if (kind == "aten::cat" || kind == "aten::stack") {
    Abs r;
    const Abs& list = in(n, 0);
    if (list.elems && !list.elems->empty()) {
      ResultType rt;
      for (const Abs& e : *list.elems) rt.tensor(e);
      r.dtype = rt.result();
    }
    return set(r);
  }
  if (kind == "aten::sum" || kind == "aten::mean" || kind == "aten::norm" || kind == "aten::max" || kind == "aten::min" ||
      kind == "aten::argmax" || kind == "aten::linalg_vector_norm") {
    Abs r = same_as(n, 0);
    // Where the reduced dims and keepdim are: sum/mean.dim (1, 2), norm and vector_norm (2, 3).
    const bool norm_like = kind == "aten::norm" || kind == "aten::linalg_vector_norm";
    const std::size_t dims_at = norm_like ? 2 : 1;
    const bool full = ov.empty() || ov == "Scalar" || (norm_like && nin > dims_at && in(n, dims_at).none);
    if (kind == "aten::argmax") r.dtype = DType::int64;
    if ((kind == "aten::sum") && r.dtype && category(*r.dtype) < 2) r.dtype = DType::int64;
    if (full || kind == "aten::argmax") {
      if (kind != "aten::argmax" || in(n, 1).none) r.dims = Dims{};
      else r.dims.reset();
    } else {
      const auto& dims = in(n, dims_at).list;
      const auto keep = in(n, dims_at + 1).b;
      if (r.dims && dims && keep) {
        std::vector<bool> drop(r.dims->size(), false);
        for (const auto& x : *dims) {
          const auto i = wrap_dim(x ? x->constant() : std::nullopt, r.dims->size());
          if (!i) {
            r.dims.reset();
            return set(r);
          }
          drop[*i] = true;
        }
        Dims out;
        for (std::size_t i = 0; i < drop.size(); ++i) {
          if (!drop[i]) out.push_back((*r.dims)[i]);
          else if (*keep) out.push_back(SymInt::of(1));
        }
        r.dims = std::move(out);
      } else {
        r.dims.reset();
      }
    }
    if (kind == "aten::sum" || kind == "aten::mean") {
      const std::size_t dtype_at = full ? 1 : 3;
      if (const auto dt = const_int(n, dtype_at)) r.dtype = ir::dtype_from_scalar_type(*dt);
    }
    return set(r);
  }
  if (kind == "aten::ones" || kind == "aten::zeros" || kind == "aten::full") {
    Abs r;
    r.dims = in(n, 0).list;
    const std::size_t dtype_at = kind == "aten::full" ? 2 : 1;
    if (const auto dt = const_int(n, dtype_at)) {
      r.dtype = ir::dtype_from_scalar_type(*dt);
    } else if (kind == "aten::full") {
      const ir::TypeKind k = kind_in(n, 1);
      r.dtype = k == ir::TypeKind::int_ ? DType::int64 : k == ir::TypeKind::bool_ ? DType::bool_ : DType::float32;
    } else {
      r.dtype = DType::float32;
    }
    return set(r);
  }
  if (kind == "aten::ones_like" || kind == "aten::zeros_like") {
    Abs r = same_as(n, 0);
    if (const auto dt = const_int(n, 1)) r.dtype = ir::dtype_from_scalar_type(*dt);
    return set(r);
  }
  if (kind == "aten::arange") {
    Abs r;
    bool all_int = true;
    const std::size_t nums = ov.empty() ? 1 : ov == "start" ? 2 : 3;
    for (std::size_t i = 0; i < nums; ++i) all_int = all_int && kind_in(n, i) == ir::TypeKind::int_;
    if (const auto dt = const_int(n, nums)) {
      r.dtype = ir::dtype_from_scalar_type(*dt);
    } else {
      r.dtype = all_int ? DType::int64 : DType::float32;
    }
    const auto start = nums == 1 ? std::optional(SymInt::of(0)) : int_in(n, 0);
    const auto end = int_in(n, nums == 1 ? 0 : 1);
    const bool unit = nums < 3 || const_int(n, 2) == 1;
    if (all_int && unit && start && end) r.dims = Dims{ir::sub(*end, *start)};
    return set(r);
  }
  if (kind == "aten::scalar_tensor") {
    Abs r;
    r.dims = Dims{};
    r.dtype = DType::float32;
    if (const auto dt = const_int(n, 1)) r.dtype = ir::dtype_from_scalar_type(*dt);
    return set(r);
  }
  if (kind == "aten::index_select" || kind == "aten::gather") {
    Abs r;
    r.dtype = in(n, 0).dtype;
    return set(r);
  }
  // Anything else: nothing known beyond the IR type.
  for (ValueId o : outs) at(o) = Abs{};
}

ir::Dim to_dim(const std::optional<SymInt>& s, ShapeReport& report) {
  if (!s) return ir::Dim::symbol(-1);
  if (const auto c = s->constant()) return ir::Dim::of(*c);
  if (const auto id = s->as_symbol()) return ir::Dim::symbol(*id, report.symbol_name(*id));
  for (const auto& [id, def] : report.derived)
    if (def == *s) return ir::Dim::symbol(id, report.symbol_names.at(static_cast<std::size_t>(id)));
  const auto id = static_cast<std::int64_t>(report.symbol_names.size());
  report.symbol_names.push_back(report.str(*s));
  report.derived[id] = *s;
  return ir::Dim::symbol(id, report.symbol_names.back());
}

void Inference::write_types() {
  for (std::size_t i = 0; i < g_.values.size(); ++i) {
    ir::Value& v = g_.values[i];
    if (v.erased) continue;
    const Abs& a = abs_[i];
    if (v.type.kind == ir::TypeKind::tensor) {
      // Keep what the importer knew (weights) when inference learned nothing.
      if (a.dtype) v.type.tensor.dtype = a.dtype;
      if (a.dims) {
        std::vector<ir::Dim> dims;
        for (const auto& d : *a.dims) dims.push_back(to_dim(d, report_));
        v.type.tensor.shape = std::move(dims);
      }
    }
    if (a.scalar && (v.type.kind == ir::TypeKind::int_ || v.type.kind == ir::TypeKind::tensor))
      report_.int_values[static_cast<std::uint32_t>(i)] = *a.scalar;
  }
}

}  // namespace

std::string ShapeReport::symbol_name(std::int64_t id) const {
  if (id >= 0 && static_cast<std::size_t>(id) < symbol_names.size()) return symbol_names[static_cast<std::size_t>(id)];
  return std::string("s").append(std::to_string(id));
}

std::string ShapeReport::str(const ir::SymInt& v) const {
  return ir::to_string(v, [this](std::int64_t id) { return symbol_name(id); });
}

std::vector<std::string> ShapeReport::lines() const {
  std::vector<std::string> out;
  for (const ShapeFinding& f : findings) {
    std::string line;
    if (f.loc) line = f.loc->file + ":" + std::to_string(f.loc->line) + ":" + std::to_string(f.loc->column) + ": ";
    line += f.op + ": ";
    if (f.kind == ShapeFinding::Kind::refuses) {
      line += "the trace fixed a size: " + f.detail;
      if (f.symbol && f.value) {
        line += "; works only with " + symbol_name(*f.symbol) + " = " + std::to_string(*f.value);
        if (f.or_one) line += " (or 1)";
        const auto t = traced.find(*f.symbol);
        if (t != traced.end()) line += " (traced with " + std::to_string(t->second) + ")";
      }
    } else if (f.kind == ShapeFinding::Kind::limit) {
      line += "a size limit: " + f.detail;
      if (f.symbol && f.value) line += "; works only with " + symbol_name(*f.symbol) + " <= " + std::to_string(*f.value);
    } else {
      line += "the trace fixed a size: " + f.detail + "; larger inputs give the traced size, as in PyTorch";
    }
    out.push_back(std::move(line));
  }
  return out;
}

std::vector<InputSpec> default_input_specs(const import::ImportedModel& model) {
  std::vector<InputSpec> specs(model.input_names.size());
  auto sym = [](std::size_t d) {
    if (d == 0) return ir::Dim::symbol(0, "batch");
    if (d == 1) return ir::Dim::symbol(1, "seq");
    return ir::Dim::symbol(static_cast<std::int64_t>(d), std::string("d").append(std::to_string(d)));
  };
  static const std::set<std::string> kHuggingFace{"input_ids", "attention_mask", "token_type_ids", "position_ids"};
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const ir::Type& t = ir::value(model.graph, ir::block(model.graph, ir::kTopBlock).params.at(i)).type;
    if (t.kind != ir::TypeKind::tensor) continue;
    // Only Hugging Face's inputs are known to share [batch, seq]; a traced shape of another
    // input says nothing about the ranks and sizes it may take later.
    if (!kHuggingFace.count(model.input_names[i])) continue;
    const bool traced = i < model.traced_input_shapes.size();
    if (traced && model.traced_input_shapes[i].size() != 2) continue;
    specs[i].shape = std::vector<ir::Dim>{sym(0), sym(1)};
    specs[i].dtype = DType::int64;
  }
  return specs;
}

ShapeReport infer_shapes(ir::Graph& g, const std::vector<InputSpec>& inputs,
                         const std::map<std::string, import::ArchiveTensor>& tensors,
                         const std::vector<std::vector<std::int64_t>>& traced_input_shapes) {
  ShapeReport report;
  Inference inf(g, tensors, report);
  const ir::Block& top = ir::block(g, ir::kTopBlock);
  // Input symbols first, so that their ids name them.
  for (std::size_t i = 0; i < top.params.size() && i < inputs.size(); ++i) {
    if (!inputs[i].shape) continue;
    for (std::size_t d = 0; d < inputs[i].shape->size(); ++d) {
      const ir::Dim& dim = (*inputs[i].shape)[d];
      if (!dim.symbolic || dim.value < 0) continue;
      const auto id = static_cast<std::size_t>(dim.value);
      if (report.symbol_names.size() <= id) report.symbol_names.resize(id + 1);
      if (report.symbol_names[id].empty()) report.symbol_names[id] = dim.name.empty() ? std::string("s").append(std::to_string(id)) : dim.name;
      if (i < traced_input_shapes.size() && d < traced_input_shapes[i].size())
        report.traced[dim.value] = traced_input_shapes[i][d];
    }
  }
  for (std::size_t i = 0; i < top.params.size() && i < inputs.size(); ++i) {
    Abs& a = inf.at(top.params[i]);
    a.dtype = inputs[i].dtype;
    if (inputs[i].shape) {
      Dims dims;
      for (const ir::Dim& d : *inputs[i].shape)
        dims.push_back(d.symbolic ? (d.value < 0 ? std::nullopt : std::optional(SymInt::symbol(d.value))) : std::optional(SymInt::of(d.value)));
      a.dims = std::move(dims);
    }
  }
  inf.run_block(ir::kTopBlock);
  inf.write_types();
  return report;
}

std::size_t fold_constants(ir::Graph& g, const ShapeReport& report) {
  std::size_t changed = fold_int_round_trips(g);
  std::map<std::string, ValueId> representative;
  std::vector<ir::NodeId> order;
  ir::walk(g, [&](ir::NodeId n) { order.push_back(n); });
  for (ir::NodeId n : order) {
    ir::Node& node = ir::node(g, n);
    if (node.erased || node.outputs.size() != 1) continue;
    const std::string_view kind = ir::kind_str(g, n);
    if (kind == "prim::Constant") continue;
    const ValueId out = node.outputs[0];
    if (ir::value(g, out).type.kind != ir::TypeKind::int_) continue;
    const auto it = report.int_values.find(ir::idx(out));
    if (it == report.int_values.end()) continue;
    const auto c = it->second.constant();
    if (!c) {
      // The same symbolic size computed again (size(x, 0) of every layer's x is batch): use
      // the first top-level value that computes it, which dominates everything after it.
      const std::string key = report.str(it->second);
      const auto first = representative.find(key);
      if (first == representative.end()) {
        if (ir::value(g, out).block == ir::kTopBlock) representative.emplace(key, out);
      } else {
        ir::replace_all_uses(g, out, first->second);
        ++changed;
      }
      continue;
    }
    // Only pure int producers: a size, a dtype, shape arithmetic.
    const ir::NodeId cn = ir::insert_node_before(g, n, "prim::Constant", {}, {ir::Type::make_int()});
    ir::node(g, cn).attrs.push_back(ir::Attribute{"value", *c});
    ir::replace_all_uses(g, out, ir::node(g, cn).outputs[0]);
    ++changed;
  }
  return changed;
}

}  // namespace kiln::passes
