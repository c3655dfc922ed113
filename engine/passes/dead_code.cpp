// eliminate_dead_code: one backward sweep over each block with live use counts. Walking a
// block from its end, a node's readers have all been seen before the node itself, and a
// nested block is swept before the nodes that precede its owner, so a dead chain goes in
// one sweep; the pass still repeats until a sweep changes nothing, which costs one extra
// sweep and needs no argument about the order.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine/passes/effects.hpp"
#include "engine/passes/passes.hpp"

namespace kiln::passes {

namespace {

using UseCounts = std::vector<std::uint32_t>;

UseCounts count_uses(const ir::Graph& g) {
  UseCounts counts(g.values.size(), 0);
  for (const ir::Block& b : g.blocks) {
    if (b.erased) continue;
    for (ir::NodeId n : b.nodes)
      for (ir::ValueId v : ir::node(g, n).inputs) ++counts[ir::idx(v)];
    for (ir::ValueId v : b.returns) ++counts[ir::idx(v)];
  }
  return counts;
}

// Forgets every read made by `n` and by the nodes and returns nested in it, before it goes.
void release_uses(const ir::Graph& g, ir::NodeId n, UseCounts& counts) {
  for (ir::ValueId v : ir::node(g, n).inputs) --counts[ir::idx(v)];
  for (ir::BlockId b : ir::node(g, n).blocks) {
    for (ir::NodeId inner : ir::block(g, b).nodes) release_uses(g, inner, counts);
    for (ir::ValueId v : ir::block(g, b).returns) --counts[ir::idx(v)];
  }
}

// `n` and everything nested in it: what erasing `n` removes.
std::size_t node_count(const ir::Graph& g, ir::NodeId n) {
  std::size_t count = 1;
  for (ir::BlockId b : ir::node(g, n).blocks)
    for (ir::NodeId inner : ir::block(g, b).nodes) count += node_count(g, inner);
  return count;
}

bool is_dead(const ir::Graph& g, ir::NodeId n, const UseCounts& counts) {
  for (ir::ValueId o : ir::node(g, n).outputs)
    if (counts[ir::idx(o)] != 0) return false;
  return !has_effect(g, n);
}

// Drops the outputs of a live prim::If that nothing reads, with the branch returns that
// feed them, so that what computes those returns can go too. Returns whether any went.
bool drop_unused_if_outputs(ir::Graph& g, ir::NodeId n, UseCounts& counts) {
  ir::Node& nd = ir::node(g, n);
  bool dropped = false;
  for (std::size_t i = nd.outputs.size(); i-- > 0;) {
    const ir::ValueId out = nd.outputs[i];
    if (counts[ir::idx(out)] != 0) continue;
    for (ir::BlockId b : nd.blocks) {
      auto& returns = ir::block(g, b).returns;
      --counts[ir::idx(returns[i])];
      returns.erase(returns.begin() + static_cast<std::ptrdiff_t>(i));
    }
    ir::value(g, out).erased = true;
    nd.outputs.erase(nd.outputs.begin() + static_cast<std::ptrdiff_t>(i));
    dropped = true;
  }
  // A value records its position among its producer's outputs.
  for (std::size_t i = 0; i < nd.outputs.size(); ++i) ir::value(g, nd.outputs[i]).index = static_cast<std::uint32_t>(i);
  return dropped;
}

std::size_t sweep_block(ir::Graph& g, ir::BlockId b, UseCounts& counts) {
  std::size_t changed = 0;
  const std::vector<ir::NodeId> nodes = ir::block(g, b).nodes;  // erase_node edits the block's list
  for (auto it = nodes.rbegin(); it != nodes.rend(); ++it) {
    const ir::NodeId n = *it;
    if (is_dead(g, n, counts)) {
      release_uses(g, n, counts);
      changed += node_count(g, n);
      ir::erase_node(g, n);
      continue;
    }
    // A loop body's returns are the next iteration's state, read or not: they stay.
    if (ir::is_kind(g, n, "prim::If") && drop_unused_if_outputs(g, n, counts)) ++changed;
    for (ir::BlockId inner : ir::node(g, n).blocks) changed += sweep_block(g, inner, counts);
  }
  return changed;
}

}  // namespace

std::size_t eliminate_dead_code(ir::Graph& g) {
  std::size_t total = 0;
  while (true) {
    UseCounts counts = count_uses(g);
    const std::size_t changed = sweep_block(g, ir::kTopBlock, counts);
    if (changed == 0) return total;
    total += changed;
  }
}

}  // namespace kiln::passes
