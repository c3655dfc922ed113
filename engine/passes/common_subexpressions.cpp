// eliminate_common_subexpressions: a walk in execution order with a table of the nodes
// seen so far, scoped by block, so a node inside an If branch finds an equal node that
// ran before the If but a node after the If does not find one inside a branch (that
// branch may not have run). Merging rewires readers to the earlier node's outputs before
// the later node is looked at, so equal chains merge in one call.
//
// kiln has no alias analysis, so where the graph still writes values (in-place ops before
// functionalize, list mutators, module attribute stores) two reads of the "same" input may
// see different data; there only what cannot be written is merged.
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <variant>
#include <vector>

#include "engine/passes/effects.hpp"
#include "engine/passes/passes.hpp"

namespace kiln::passes {

namespace {

// What the graph writes, which decides which reads are safe to merge.
struct Writes {
  bool tensors_or_attributes = false;  // in-place tensor ops, prim::SetAttr
  bool lists = false;                  // list mutators, in-place list ops (aten::add_.t)
};

bool contains_list(const ir::Type& t) {
  if (t.kind == ir::TypeKind::list) return true;
  for (const ir::Type& e : t.elems)
    if (contains_list(e)) return true;
  return false;
}

Writes find_writes(const ir::Graph& g) {
  Writes w;
  ir::walk(g, [&](ir::NodeId n) {
    if (!mutates(g, n)) return;
    const ir::Node& nd = ir::node(g, n);
    const bool on_list = is_container_mutator(g, n) ||
                         (!nd.inputs.empty() && contains_list(ir::value(g, nd.inputs[0]).type));
    (on_list ? w.lists : w.tensors_or_attributes) = true;
  });
  return w;
}

bool touches_list(const ir::Graph& g, ir::NodeId n) {
  const ir::Node& nd = ir::node(g, n);
  for (ir::ValueId v : nd.inputs)
    if (contains_list(ir::value(g, v).type)) return true;
  for (ir::ValueId v : nd.outputs)
    if (contains_list(ir::value(g, v).type)) return true;
  return false;
}

bool mergeable(const ir::Graph& g, ir::NodeId n, const Writes& writes) {
  const ir::Node& nd = ir::node(g, n);
  if (!nd.blocks.empty() || nd.outputs.empty() || has_effect(g, n) || is_random(g, n)) return false;
  if (writes.tensors_or_attributes && !ir::is_kind(g, n, "prim::Constant")) return false;
  return !(writes.lists && touches_list(g, n));
}

// Doubles are equal only when they are the same number: NaN never merges, and -0.0 and 0.0
// stay apart (1/x tells them apart).
bool same_attr_value(const ir::AttrValue& a, const ir::AttrValue& b) {
  if (a.index() != b.index()) return false;
  if (const double* x = std::get_if<double>(&a)) {
    const double y = std::get<double>(b);
    return *x == y && std::signbit(*x) == std::signbit(y);
  }
  return a == b;
}

bool same_computation(const ir::Graph& g, ir::NodeId a, ir::NodeId b) {
  const ir::Node& x = ir::node(g, a);
  const ir::Node& y = ir::node(g, b);
  if (x.kind != y.kind || x.overload != y.overload || x.inputs != y.inputs) return false;
  if (x.attrs.size() != y.attrs.size() || x.outputs.size() != y.outputs.size()) return false;
  for (std::size_t i = 0; i < x.attrs.size(); ++i)
    if (x.attrs[i].name != y.attrs[i].name || !same_attr_value(x.attrs[i].value, y.attrs[i].value)) return false;
  // The importer may know more about one result than the other; keeping either type would
  // lose or invent information for the other's readers.
  for (std::size_t i = 0; i < x.outputs.size(); ++i)
    if (ir::value(g, x.outputs[i]).type != ir::value(g, y.outputs[i]).type) return false;
  return true;
}

void mix(std::size_t& h, std::size_t v) { h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2); }

std::size_t attr_hash(const ir::AttrValue& a) {
  return std::visit(
      [](const auto& x) -> std::size_t {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, double>) {
          return std::hash<std::uint64_t>{}(std::bit_cast<std::uint64_t>(x));
        } else if constexpr (std::is_same_v<T, std::vector<std::int64_t>>) {
          std::size_t h = x.size();
          for (std::int64_t e : x) mix(h, std::hash<std::int64_t>{}(e));
          return h;
        } else if constexpr (std::is_same_v<T, ir::TensorRef>) {
          return std::hash<std::string>{}(x.name);
        } else {
          return std::hash<T>{}(x);
        }
      },
      a);
}

// Agrees with same_computation: equal nodes hash equal.
std::size_t node_hash(const ir::Graph& g, ir::NodeId n) {
  const ir::Node& nd = ir::node(g, n);
  std::size_t h = ir::idx(nd.kind);
  mix(h, ir::idx(nd.overload));
  for (ir::ValueId v : nd.inputs) mix(h, ir::idx(v));
  for (const ir::Attribute& a : nd.attrs) {
    mix(h, std::hash<std::string>{}(a.name));
    mix(h, a.value.index());
    mix(h, attr_hash(a.value));
  }
  mix(h, nd.outputs.size());
  return h;
}

// The nodes seen so far, visible from the current block: entries made in a block are
// removed when the walk leaves it. Entries are pushed and popped in stack order, so the
// last entry of a bucket is always the newest.
class ScopedTable {
 public:
  explicit ScopedTable(const ir::Graph& g) : g_(g) {}

  ir::NodeId find(ir::NodeId n, std::size_t hash) const {
    const auto it = buckets_.find(hash);
    if (it == buckets_.end()) return ir::kNoNode;
    for (ir::NodeId seen : it->second)
      if (same_computation(g_, seen, n)) return seen;
    return ir::kNoNode;
  }

  void add(ir::NodeId n, std::size_t hash) {
    buckets_[hash].push_back(n);
    log_.push_back(hash);
  }

  std::size_t mark() const { return log_.size(); }

  void pop_to(std::size_t mark) {
    for (; log_.size() > mark; log_.pop_back()) {
      auto it = buckets_.find(log_.back());
      it->second.pop_back();
      if (it->second.empty()) buckets_.erase(it);
    }
  }

 private:
  const ir::Graph& g_;
  std::unordered_map<std::size_t, std::vector<ir::NodeId>> buckets_;
  std::vector<std::size_t> log_;
};

std::size_t merge_block(ir::Graph& g, ir::BlockId b, ScopedTable& table, const Writes& writes) {
  std::size_t merged = 0;
  const std::size_t mark = table.mark();
  const std::vector<ir::NodeId> nodes = ir::block(g, b).nodes;  // erase_node edits the block's list
  for (ir::NodeId n : nodes) {
    if (mergeable(g, n, writes)) {
      const std::size_t hash = node_hash(g, n);
      const ir::NodeId earlier = table.find(n, hash);
      if (earlier == ir::kNoNode) {
        table.add(n, hash);
        continue;
      }
      for (std::size_t i = 0; i < ir::node(g, n).outputs.size(); ++i)
        ir::replace_all_uses(g, ir::node(g, n).outputs[i], ir::node(g, earlier).outputs[i]);
      ir::erase_node(g, n);
      ++merged;
      continue;
    }
    for (ir::BlockId inner : ir::node(g, n).blocks) merged += merge_block(g, inner, table, writes);
  }
  table.pop_to(mark);
  return merged;
}

}  // namespace

std::size_t eliminate_common_subexpressions(ir::Graph& g) {
  ScopedTable table(g);
  return merge_block(g, ir::kTopBlock, table, find_writes(g));
}

}  // namespace kiln::passes
