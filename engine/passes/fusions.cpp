// Fusions: chains of ops that BERT-family models repeat in every layer, rewritten into one
// kiln:: op each so a kernel can do in one pass over memory what the chain did in several.
// Each pattern is matched from its last op backwards; every value it swallows must have no
// other reader (so nothing else sees an intermediate that no longer exists), and every op
// must sit in the same block. The fused op computes exactly what the chain did, in the same
// order of float operations where the kernels allow (docs/ir.md lists the fused ops).
#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "engine/passes/passes.hpp"

namespace kiln::passes {

namespace {

// The node producing v when it is a live `kind` op in `block`, else kNoNode.
ir::NodeId producer(const ir::Graph& g, ir::ValueId v, std::string_view kind, ir::BlockId block) {
  const ir::NodeId p = ir::value(g, v).node;
  if (p == ir::kNoNode || ir::node(g, p).erased || !ir::is_kind(g, p, kind) || ir::node(g, p).owner != block) {
    return ir::kNoNode;
  }
  return p;
}

// v is read exactly once, by a node (not returned from a block).
bool single_use(const ir::Graph& g, ir::ValueId v) {
  const std::vector<ir::Use> u = ir::uses(g, v);
  return u.size() == 1 && u[0].node != ir::kNoNode;
}

// The constant value behind input i of n, if it is a prim::Constant with a value.
const ir::AttrValue* constant(const ir::Graph& g, ir::NodeId n, std::size_t i) {
  const ir::Node& nd = ir::node(g, n);
  if (i >= nd.inputs.size()) return nullptr;
  const ir::NodeId p = ir::value(g, nd.inputs[i]).node;
  if (p == ir::kNoNode || !ir::is_kind(g, p, "prim::Constant")) return nullptr;
  const ir::Attribute* a = ir::find_attr(g, p, "value");
  return a ? &a->value : nullptr;
}

bool is_none(const ir::Graph& g, ir::NodeId n, std::size_t i) {
  const ir::Node& nd = ir::node(g, n);
  return i < nd.inputs.size() && ir::value(g, nd.inputs[i]).type.kind == ir::TypeKind::none;
}

bool constant_is(const ir::Graph& g, ir::NodeId n, std::size_t i, double expected) {
  const ir::AttrValue* v = constant(g, n, i);
  if (!v) return false;
  if (const auto* x = std::get_if<std::int64_t>(v)) return static_cast<double>(*x) == expected;
  if (const auto* x = std::get_if<double>(v)) return *x == expected;
  if (const auto* x = std::get_if<bool>(v)) return (*x ? 1.0 : 0.0) == expected;
  return false;
}

bool is_float32_tensor(const ir::Graph& g, ir::ValueId v) {
  const ir::Type& t = ir::value(g, v).type;
  return t.kind == ir::TypeKind::tensor && t.tensor.dtype == DType::float32;
}

std::optional<std::size_t> rank_of(const ir::Graph& g, ir::ValueId v) {
  const ir::Type& t = ir::value(g, v).type;
  if (t.kind != ir::TypeKind::tensor || !t.tensor.shape) return std::nullopt;
  return t.tensor.shape->size();
}

// aten::add(a, b, alpha=1) of two float32 tensors.
bool is_plain_add(const ir::Graph& g, ir::NodeId n) {
  const ir::Node& nd = ir::node(g, n);
  return ir::symbol_str(g, nd.overload) == "Tensor" && nd.inputs.size() == 3 && constant_is(g, n, 2, 1) &&
         is_float32_tensor(g, nd.inputs[0]) && is_float32_tensor(g, nd.inputs[1]);
}

// The fused node takes `last`'s place: `last`'s output now comes from it, and the chain
// (consumers first) goes. Returns the fused node's output.
ir::ValueId replace_chain(ir::Graph& g, const std::vector<ir::NodeId>& chain_last_first, std::string_view kind,
                   std::vector<ir::ValueId> inputs) {
  const ir::NodeId last = chain_last_first.front();
  const ir::ValueId old_out = ir::node(g, last).outputs.at(0);
  const ir::NodeId fused = ir::insert_node_before(g, last, kind, std::move(inputs), {ir::value(g, old_out).type});
  ir::node(g, fused).loc = ir::node(g, last).loc;
  const ir::ValueId out = ir::node(g, fused).outputs[0];
  ir::value(g, out).name = ir::value(g, old_out).name;
  ir::replace_all_uses(g, old_out, out);
  for (const ir::NodeId n : chain_last_first) ir::erase_node(g, n);
  return out;
}

// Whether every reader of `lookup` (an embedding's output) but one is aten::size of one of
// its index dims (a constant dim below the indices' rank).
bool reads_only_index_sizes(const ir::Graph& g, ir::ValueId lookup) {
  const ir::NodeId e = ir::value(g, lookup).node;
  if (e == ir::kNoNode || !ir::is_kind(g, e, "aten::embedding")) return false;
  const std::optional<std::size_t> ids_rank = rank_of(g, ir::node(g, e).inputs[1]);
  if (!ids_rank) return false;
  std::size_t others = 0;
  for (const ir::Use& u : ir::uses(g, lookup)) {
    if (u.node == ir::kNoNode) return false;
    if (!ir::is_kind(g, u.node, "aten::size") || u.index != 0 || ir::node(g, u.node).inputs.size() != 2) {
      ++others;
      continue;
    }
    const ir::AttrValue* d = constant(g, u.node, 1);
    const auto* dim = d ? std::get_if<std::int64_t>(d) : nullptr;
    if (!dim || *dim < 0 || *dim >= static_cast<std::int64_t>(*ids_rank)) return false;
  }
  return others == 1;
}

// Points those aten::size readers at the ids instead.
void redirect_index_sizes(ir::Graph& g, ir::ValueId lookup, ir::ValueId ids) {
  for (const ir::Use& u : ir::uses(g, lookup)) {
    if (u.node != ir::kNoNode && ir::is_kind(g, u.node, "aten::size")) ir::node(g, u.node).inputs[u.index] = ids;
  }
}

// A None constant placed just before `n`.
ir::ValueId none_before(ir::Graph& g, ir::NodeId n) {
  return ir::node(g, ir::insert_node_before(g, n, "prim::Constant", {}, {ir::Type::make_none()})).outputs[0];
}

ir::ValueId bool_before(ir::Graph& g, ir::NodeId n, bool value) {
  const ir::NodeId c = ir::insert_node_before(g, n, "prim::Constant", {}, {ir::Type::make_bool()});
  ir::node(g, c).attrs.push_back(ir::Attribute{"value", value});
  return ir::node(g, c).outputs[0];
}

// Every live node of a kind, in execution order (collected first: the rewrites erase).
std::vector<ir::NodeId> nodes_of(const ir::Graph& g, std::string_view kind) {
  std::vector<ir::NodeId> out;
  ir::walk(g, [&](ir::NodeId n) {
    if (ir::is_kind(g, n, kind)) out.push_back(n);
  });
  return out;
}

ir::ValueId int_before(ir::Graph& g, ir::NodeId n, std::int64_t value) {
  const ir::NodeId c = ir::insert_node_before(g, n, "prim::Constant", {}, {ir::Type::make_int()});
  ir::node(g, c).attrs.push_back(ir::Attribute{"value", value});
  return ir::node(g, c).outputs[0];
}

// aten::view readers of `v` become aten::reshape (the same values, and a view wherever one
// is possible), except those that only split v's last dim, which any strides allow. A fused
// op may give a result with other strides than the chain's contiguous one (a column slice,
// heads merged in memory), where view() would refuse a shape the chain's result took.
void views_may_copy(ir::Graph& g, ir::ValueId v) {
  const ir::Type& from = ir::value(g, v).type;
  for (const ir::Use& u : ir::uses(g, v)) {
    if (u.node == ir::kNoNode || u.index != 0 || !ir::is_kind(g, u.node, "aten::view")) continue;
    const ir::Type& to = ir::value(g, ir::node(g, u.node).outputs[0]).type;
    const bool splits_last = from.tensor.shape && to.tensor.shape && !from.tensor.shape->empty() &&
                             to.tensor.shape->size() == from.tensor.shape->size() + 1 &&
                             std::equal(from.tensor.shape->begin(), from.tensor.shape->end() - 1,
                                        to.tensor.shape->begin());
    if (!splits_last) ir::node(g, u.node).kind = ir::intern(g, "aten::reshape");
  }
}

// Whether node a comes before node b in their block (a constant shared by several layers,
// as ALBERT's are, is defined once before its first reader and must stay there).
bool defined_before(const ir::Graph& g, ir::NodeId a, ir::NodeId b) {
  for (const ir::NodeId n : ir::block(g, ir::node(g, b).owner).nodes) {
    if (n == a) return true;
    if (n == b) return false;
  }
  return false;
}

// The prim::Constant defining v in `block`, or kNoNode.
ir::NodeId constant_node(const ir::Graph& g, ir::ValueId v, ir::BlockId block) {
  return producer(g, v, "prim::Constant", block);
}

// A constant float32 tensor of exactly `rank` concrete dims: its sizes, else empty.
std::vector<std::int64_t> constant_sizes(const ir::Graph& g, ir::ValueId v, ir::BlockId block, std::size_t rank) {
  const ir::Type& t = ir::value(g, v).type;
  if (constant_node(g, v, block) == ir::kNoNode || !is_float32_tensor(g, v) || !t.tensor.shape ||
      t.tensor.shape->size() != rank) {
    return {};
  }
  std::vector<std::int64_t> sizes;
  for (const ir::Dim& d : *t.tensor.shape) {
    if (d.symbolic || d.value <= 0) return {};
    sizes.push_back(d.value);
  }
  return sizes;
}

// The expand that produced v (same block as `block`) from a tensor of known rank >= 1, or
// kNoNode. A 0-dim source is refused: next to another 0-dim operand, the op on it would
// promote dtypes as two 0-dim tensors do (Byte() + Long() is Long), where on the expanded
// tensor the 0-dim operand does not widen the result (Byte(3) + Long() is Byte).
ir::NodeId expand_of(const ir::Graph& g, ir::ValueId v, ir::BlockId block) {
  const ir::NodeId e = producer(g, v, "aten::expand", block);
  if (e == ir::kNoNode || ir::node(g, e).inputs.size() != 3) return ir::kNoNode;
  const std::optional<std::size_t> rank = rank_of(g, ir::node(g, e).inputs[0]);
  return rank && *rank >= 1 ? e : ir::kNoNode;
}

// The elementwise ops sink_expands moves above an expand: their output has the shape of
// their broadcast tensor operands, and each element depends on those operands' elements at
// the same place only.
bool elementwise(const ir::Graph& g, ir::NodeId n) {
  for (const char* kind : {"aten::to", "aten::add", "aten::sub", "aten::rsub", "aten::mul", "aten::div",
                           "aten::masked_fill"}) {
    if (ir::is_kind(g, n, kind)) return true;
  }
  return false;
}

}  // namespace

std::size_t sink_expands(ir::Graph& g) {
  std::size_t moved = 0;
  std::vector<ir::NodeId> candidates;
  ir::walk(g, [&](ir::NodeId n) {
    if (elementwise(g, n)) candidates.push_back(n);
  });
  for (const ir::NodeId n : candidates) {
    const ir::Node& nd = ir::node(g, n);
    if (nd.outputs.size() != 1 || ir::value(g, nd.outputs[0]).type.kind != ir::TypeKind::tensor) continue;
    // Every tensor operand is either 0-dim or an expand to one list of sizes, from tensors
    // of one shape (masked_fill's self and mask); at least one is an expand.
    ir::ValueId sizes{}, implicit{};
    std::optional<std::vector<ir::Dim>> before;  // the shape the expands start from
    std::vector<ir::ValueId> inputs = nd.inputs;
    bool ok = true, any = false;
    for (ir::ValueId& in : inputs) {
      const ir::Type& t = ir::value(g, in).type;
      if (t.kind != ir::TypeKind::tensor) continue;
      if (t.tensor.shape && t.tensor.shape->empty()) continue;  // 0-dim: broadcasts the same either way
      const ir::NodeId e = expand_of(g, in, nd.owner);
      if (e == ir::kNoNode) {
        ok = false;
        break;
      }
      const ir::Node& en = ir::node(g, e);
      const ir::Type& from = ir::value(g, en.inputs[0]).type;
      if (any && (en.inputs[1] != sizes || en.inputs[2] != implicit || from.tensor.shape != before)) {
        ok = false;
        break;
      }
      sizes = en.inputs[1], implicit = en.inputs[2], before = from.tensor.shape, any = true;
      in = en.inputs[0];
    }
    if (!ok || !any) continue;
    // The op on the tensors before expansion, then one expand of its result to the op's
    // old shape: the same values, computed once per element of the smaller tensor.
    const ir::ValueId old_out = nd.outputs[0];
    ir::Type small = ir::value(g, old_out).type;
    small.tensor.shape = before;
    std::string kind(ir::symbol_str(g, nd.kind));
    if (const std::string_view o = ir::symbol_str(g, nd.overload); !o.empty()) kind.append(1, '.').append(o);
    const std::vector<ir::ValueId> old_inputs = nd.inputs;
    const ir::NodeId op = ir::insert_node_before(g, n, kind, inputs, {small});
    ir::node(g, op).attrs = ir::node(g, n).attrs;
    ir::node(g, op).loc = ir::node(g, n).loc;
    const ir::NodeId grow = ir::insert_node_before(g, n, "aten::expand", {ir::node(g, op).outputs[0], sizes, implicit},
                                                   {ir::value(g, old_out).type});
    ir::node(g, grow).loc = ir::node(g, n).loc;
    const ir::ValueId out = ir::node(g, grow).outputs[0];
    ir::value(g, out).name = ir::value(g, old_out).name;
    ir::replace_all_uses(g, old_out, out);
    ir::erase_node(g, n);
    // An expand nothing else reads goes too.
    for (const ir::ValueId in : old_inputs) {
      const ir::NodeId e = ir::value(g, in).node;
      if (e != ir::kNoNode && !ir::node(g, e).erased && ir::is_kind(g, e, "aten::expand") && ir::uses(g, in).empty()) {
        ir::erase_node(g, e);
      }
    }
    ++moved;
  }
  return moved;
}

std::size_t fuse_linear_concat(ir::Graph& g) {
  // Plain linears with constant weights, grouped by (block, input), in execution order.
  std::map<std::pair<std::uint32_t, std::uint32_t>, std::vector<ir::NodeId>> groups;
  for (const ir::NodeId n : nodes_of(g, "aten::linear")) {
    const ir::Node& nd = ir::node(g, n);
    if (nd.erased || nd.inputs.size() != 3 || !is_float32_tensor(g, nd.inputs[0])) continue;
    const ir::Type& out = ir::value(g, nd.outputs[0]).type;
    if (!is_float32_tensor(g, nd.outputs[0]) || !out.tensor.shape || out.tensor.shape->empty()) continue;
    const std::vector<std::int64_t> w = constant_sizes(g, nd.inputs[1], nd.owner, 2);
    if (w.empty() || out.tensor.shape->back() != ir::Dim::of(w[0])) continue;
    if (!is_none(g, n, 2) && constant_sizes(g, nd.inputs[2], nd.owner, 1) != std::vector<std::int64_t>{w[0]}) continue;
    groups[{ir::idx(nd.owner), ir::idx(nd.inputs[0])}].push_back(n);
  }
  std::size_t fused = 0;
  for (auto& [key, members] : groups) {
    if (members.size() < 2) continue;
    const ir::NodeId first = members.front();
    const std::int64_t k = constant_sizes(g, ir::node(g, first).inputs[1], ir::node(g, first).owner, 2)[1];
    std::erase_if(members, [&](ir::NodeId n) {
      return constant_sizes(g, ir::node(g, n).inputs[1], ir::node(g, n).owner, 2)[1] != k;
    });
    if (members.size() < 2 || members.front() != first) continue;
    // kiln::linear_concat(x, w1, b1, w2, b2, ...) where the first linear was; the later
    // ones' weights and biases (constants) move up to it.
    std::vector<ir::ValueId> inputs{ir::node(g, first).inputs[0]};
    std::int64_t total = 0;
    for (const ir::NodeId n : members) {
      for (std::size_t i = 1; i <= 2; ++i) {
        const ir::ValueId v = ir::node(g, n).inputs[i];
        if (is_none(g, n, i)) {
          inputs.push_back(none_before(g, first));  // the linear's own None may come after `first`
          continue;
        }
        if (n != first && !defined_before(g, ir::value(g, v).node, first)) ir::move_before(g, ir::value(g, v).node, first);
        inputs.push_back(v);
      }
      total += ir::value(g, ir::node(g, n).outputs[0]).type.tensor.shape->back().value;
    }
    ir::Type type = ir::value(g, ir::node(g, first).outputs[0]).type;
    type.tensor.shape->back() = ir::Dim::of(total);
    const ir::NodeId concat = ir::insert_node_before(g, first, "kiln::linear_concat", std::move(inputs), {type});
    ir::node(g, concat).loc = ir::node(g, first).loc;
    const ir::ValueId all = ir::node(g, concat).outputs[0];
    // Each linear's result becomes its columns of the whole: a view.
    std::int64_t start = 0;
    const ir::ValueId last_dim = int_before(g, first, -1), step = int_before(g, first, 1);
    for (const ir::NodeId n : members) {
      const ir::ValueId old_out = ir::node(g, n).outputs[0];
      const std::int64_t width = ir::value(g, old_out).type.tensor.shape->back().value;
      const ir::ValueId from = int_before(g, first, start), to = int_before(g, first, start + width);
      const ir::NodeId slice =
          ir::insert_node_before(g, first, "aten::slice", {all, last_dim, from, to, step}, {ir::value(g, old_out).type});
      ir::node(g, slice).loc = ir::node(g, n).loc;
      const ir::ValueId part = ir::node(g, slice).outputs[0];
      ir::value(g, part).name = ir::value(g, old_out).name;
      ir::replace_all_uses(g, old_out, part);
      views_may_copy(g, part);
      start += width;
    }
    for (const ir::NodeId n : members) ir::erase_node(g, n);
    ++fused;
  }
  return fused;
}

std::size_t fuse_linear_gelu(ir::Graph& g) {
  std::size_t fused = 0;
  for (const ir::NodeId gelu : nodes_of(g, "aten::gelu")) {
    const ir::Node& gn = ir::node(g, gelu);
    if (gn.erased || gn.inputs.size() != 2) continue;
    const ir::NodeId lin = producer(g, gn.inputs[0], "aten::linear", gn.owner);
    if (lin == ir::kNoNode || !single_use(g, gn.inputs[0]) || !is_float32_tensor(g, gn.inputs[0])) continue;
    const ir::Node& ln = ir::node(g, lin);
    // kiln::linear_gelu(input, weight, bias, approximate)
    replace_chain(g, {gelu, lin}, "kiln::linear_gelu", {ln.inputs[0], ln.inputs[1], ln.inputs[2], gn.inputs[1]});
    ++fused;
  }
  return fused;
}

std::size_t fuse_add_layer_norm(ir::Graph& g) {
  std::size_t fused = 0;
  for (const ir::NodeId norm : nodes_of(g, "aten::layer_norm")) {
    const ir::Node& nn = ir::node(g, norm);
    if (nn.erased || nn.inputs.size() < 5) continue;
    const ir::NodeId add = producer(g, nn.inputs[0], "aten::add", nn.owner);
    if (add == ir::kNoNode || !single_use(g, nn.inputs[0]) || !is_plain_add(g, add)) continue;
    const ir::Node& an = ir::node(g, add);
    // Same shapes only: a broadcast residual is not what the kernel expects, and the
    // embeddings' sum (which broadcasts positions) has its own fusion.
    const ir::Type &ta = ir::value(g, an.inputs[0]).type, &tb = ir::value(g, an.inputs[1]).type;
    if (!ta.tensor.shape || ta.tensor.shape != tb.tensor.shape) continue;
    // kiln::add_layer_norm(a, b, normalized_shape, weight, bias, eps)
    replace_chain(g, {norm, add}, "kiln::add_layer_norm",
                  {an.inputs[0], an.inputs[1], nn.inputs[1], nn.inputs[2], nn.inputs[3], nn.inputs[4]});
    ++fused;
  }
  return fused;
}

std::size_t fuse_embedding_layer_norm(ir::Graph& g) {
  std::size_t fused = 0;
  for (const ir::NodeId norm : nodes_of(g, "aten::layer_norm")) {
    const ir::Node& nn = ir::node(g, norm);
    if (nn.erased || nn.inputs.size() < 5) continue;
    // layer_norm(((e1 + e2) + e3) ...) with every e an embedding lookup read only here.
    std::vector<ir::NodeId> chain{norm};
    std::vector<ir::NodeId> lookups;  // last first
    ir::ValueId sum = nn.inputs[0];
    bool ok = single_use(g, sum);
    while (ok) {
      const ir::NodeId add = producer(g, sum, "aten::add", nn.owner);
      if (add == ir::kNoNode) break;
      ok = is_plain_add(g, add) && single_use(g, ir::node(g, add).inputs[1]);
      const ir::NodeId e = ok ? producer(g, ir::node(g, add).inputs[1], "aten::embedding", nn.owner) : ir::kNoNode;
      ok = ok && e != ir::kNoNode;
      if (!ok) break;
      chain.push_back(add);
      lookups.push_back(e);
      sum = ir::node(g, add).inputs[0];
      ok = single_use(g, sum);
    }
    // The first lookup's other readers may only ask for its index dims' sizes, which the
    // ids have too (DistilBERT reads seq from the word embeddings).
    if (!ok && chain.size() > 1) ok = reads_only_index_sizes(g, sum);
    const ir::NodeId first = ok ? producer(g, sum, "aten::embedding", nn.owner) : ir::kNoNode;
    if (!ok || first == ir::kNoNode || lookups.empty()) continue;
    lookups.push_back(first);
    // kiln::embedding_layer_norm(normalized_shape, weight, bias, eps, table 1, ids 1, ...),
    // tables in the order they are summed.
    std::vector<ir::ValueId> inputs{nn.inputs[1], nn.inputs[2], nn.inputs[3], nn.inputs[4]};
    for (auto it = lookups.rbegin(); it != lookups.rend(); ++it) {
      const ir::Node& e = ir::node(g, *it);
      if (!is_float32_tensor(g, e.inputs[0]) || rank_of(g, e.inputs[0]) != std::size_t{2}) ok = false;
      inputs.push_back(e.inputs[0]);
      inputs.push_back(e.inputs[1]);
    }
    if (!ok) continue;
    redirect_index_sizes(g, sum, ir::node(g, first).inputs[1]);
    chain.insert(chain.end(), lookups.begin(), lookups.end());
    replace_chain(g, chain, "kiln::embedding_layer_norm", std::move(inputs));
    ++fused;
  }
  return fused;
}

std::size_t fuse_attention(ir::Graph& g) {
  std::size_t fused = 0;
  // The eager pattern: matmul(softmax(matmul(q, k^T) [/ d | * s] [+ mask], -1), v).
  for (const ir::NodeId out : nodes_of(g, "aten::matmul")) {
    const ir::Node& on = ir::node(g, out);
    if (on.erased) continue;
    const ir::BlockId b = on.owner;
    const ir::NodeId soft = producer(g, on.inputs[0], "aten::softmax", b);
    if (soft == ir::kNoNode || !single_use(g, on.inputs[0])) continue;
    const ir::Node& sn = ir::node(g, soft);
    const std::optional<std::size_t> rank = rank_of(g, sn.inputs[0]);
    if (!rank || *rank < 2 || !is_float32_tensor(g, sn.inputs[0]) || !is_none(g, soft, 2) ||
        !(constant_is(g, soft, 1, -1) || constant_is(g, soft, 1, static_cast<double>(*rank - 1)))) {
      continue;
    }
    std::vector<ir::NodeId> chain{out, soft};
    ir::ValueId x = sn.inputs[0];
    if (!single_use(g, x)) continue;
    std::optional<ir::ValueId> mask, divisor, scale;
    if (const ir::NodeId add = producer(g, x, "aten::add", b); add != ir::kNoNode) {
      if (!is_plain_add(g, add)) continue;
      mask = ir::node(g, add).inputs[1];
      x = ir::node(g, add).inputs[0];
      chain.push_back(add);
      if (!single_use(g, x)) continue;
    }
    if (const ir::NodeId div = producer(g, x, "aten::div", b); div != ir::kNoNode) {
      const ir::Node& dn = ir::node(g, div);
      if (dn.inputs.size() != 2) continue;  // div with rounding_mode is not a scaling
      divisor = dn.inputs[1];
      x = dn.inputs[0];
      chain.push_back(div);
    } else if (const ir::NodeId mul = producer(g, x, "aten::mul", b); mul != ir::kNoNode) {
      scale = ir::node(g, mul).inputs[1];
      x = ir::node(g, mul).inputs[0];
      chain.push_back(mul);
    }
    if (divisor || scale) {
      const ir::Type& st = ir::value(g, divisor ? *divisor : *scale).type;
      if (!(st.kind == ir::TypeKind::float_ || st.kind == ir::TypeKind::int_ ||
            (st.kind == ir::TypeKind::tensor && st.tensor.shape && st.tensor.shape->empty()))) {
        continue;  // only a number or a 0-dim tensor scales every score alike
      }
    }
    if (chain.size() > 2 && !single_use(g, x)) continue;
    const ir::NodeId qk = producer(g, x, "aten::matmul", b);
    if (qk == ir::kNoNode) continue;
    const ir::NodeId kt = producer(g, ir::node(g, qk).inputs[1], "aten::transpose", b);
    if (kt == ir::kNoNode || !single_use(g, ir::node(g, qk).inputs[1])) continue;
    const ir::Node& tn = ir::node(g, kt);
    const std::optional<std::size_t> krank = rank_of(g, tn.inputs[0]);
    if (!krank || *krank != *rank) continue;
    const double last = static_cast<double>(*krank - 1), before = static_cast<double>(*krank - 2);
    const auto dim_is = [&](std::size_t i, double negative, double positive) {
      return constant_is(g, kt, i, negative) || constant_is(g, kt, i, positive);
    };
    const bool swaps_last_two = (dim_is(1, -1, last) && dim_is(2, -2, before)) ||
                                (dim_is(1, -2, before) && dim_is(2, -1, last));
    const ir::ValueId q = ir::node(g, qk).inputs[0], k = tn.inputs[0], v = on.inputs[1];
    if (!swaps_last_two || rank_of(g, q) != rank || rank_of(g, v) != rank || !is_float32_tensor(g, q) ||
        !is_float32_tensor(g, k) || !is_float32_tensor(g, v) || (mask && !is_float32_tensor(g, *mask))) {
      continue;
    }
    chain.push_back(qk);
    chain.push_back(kt);
    // kiln::attention(q, k, v, mask?, divisor?, scale?, from_sdpa=false)
    const auto or_none = [&](std::optional<ir::ValueId> v) { return v ? *v : none_before(g, out); };
    const ir::ValueId m = or_none(mask), d = or_none(divisor), s = or_none(scale);
    // Its result may come with the heads merged in memory (kernels/cpu/fused.hpp).
    views_may_copy(g, replace_chain(g, chain, "kiln::attention", {q, k, v, m, d, s, bool_before(g, out, false)}));
    ++fused;
  }
  // scaled_dot_product_attention(q, k, v, mask, dropout_p=0, is_causal=false, scale[, enable_gqa=false])
  // with a float mask (or none): the same computation.
  for (const ir::NodeId n : nodes_of(g, "aten::scaled_dot_product_attention")) {
    const ir::Node& nd = ir::node(g, n);
    if (nd.erased || nd.inputs.size() < 7 || !constant_is(g, n, 4, 0) || !constant_is(g, n, 5, 0) ||
        (nd.inputs.size() > 7 && !constant_is(g, n, 7, 0))) {
      continue;
    }
    const std::optional<std::size_t> rank = rank_of(g, nd.inputs[0]);
    if (!rank || *rank < 2 || rank_of(g, nd.inputs[1]) != rank || rank_of(g, nd.inputs[2]) != rank ||
        !is_float32_tensor(g, nd.inputs[0]) || !is_float32_tensor(g, nd.inputs[1]) ||
        !is_float32_tensor(g, nd.inputs[2]) || (!is_none(g, n, 3) && !is_float32_tensor(g, nd.inputs[3]))) {
      continue;
    }
    const std::vector<ir::ValueId> in = nd.inputs;  // none_before may move the node table
    const ir::ValueId none = none_before(g, n), yes = bool_before(g, n, true);
    views_may_copy(g, replace_chain(g, {n}, "kiln::attention", {in[0], in[1], in[2], in[3], none, in[6], yes}));
    ++fused;
  }
  return fused;
}

}  // namespace kiln::passes
