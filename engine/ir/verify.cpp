#include "engine/ir/verify.hpp"

#include <string>
#include <vector>

#include "engine/ir/print.hpp"
#include "kiln/error.hpp"

namespace kiln::ir {

namespace {

std::string count(std::size_t n, const char* noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

class Verifier {
 public:
  explicit Verifier(const Graph& g)
      : g_(g), defined_(g.values.size(), false), in_scope_(g.values.size(), false),
        node_seen_(g.nodes.size(), false), block_seen_(g.blocks.size(), false) {}

  void run() {
    if (g_.blocks.empty()) fail(kNoNode, "graph has no top block");
    check_block(kTopBlock, kNoNode);
  }

 private:
  [[noreturn]] void fail(NodeId n, const std::string& what) const {
    std::string file, where, subject = "graph";
    if (n != kNoNode) {
      subject = node_str(g_, n);
      if (const auto& loc = node(g_, n).loc) {
        file = loc->file;
        where = std::to_string(loc->line) + ":" + std::to_string(loc->column);
      }
    }
    throw Error(ErrorKind::internal, file, where, "invalid IR: " + subject + ": " + what);
  }

  // True when block `b` is `ancestor` or nested inside it.
  bool within(BlockId b, BlockId ancestor) const {
    while (true) {
      if (b == ancestor) return true;
      const NodeId owner = block(g_, b).owner;
      if (owner == kNoNode || idx(owner) >= g_.nodes.size()) return false;
      b = node(g_, owner).owner;
    }
  }

  // `n` is the node reading `v` (kNoNode for a block's or the graph's returns).
  void check_use(NodeId n, BlockId b, ValueId v, const std::string& role) {
    if (idx(v) >= g_.values.size()) fail(n, role + " " + value_ref(g_, v) + " is not a value of this graph");
    if (value(g_, v).erased) fail(n, role + " " + value_ref(g_, v) + " is erased");
    if (in_scope_[idx(v)]) return;
    const BlockId def = value(g_, v).block;
    if (idx(def) < g_.blocks.size() && !defined_[idx(v)] && within(b, def))
      fail(n, role + " " + value_ref(g_, v) + " is used before its definition");
    fail(n, role + " " + value_ref(g_, v) + " is used outside the block that defines it");
  }

  void define(NodeId n, ValueId v, std::vector<ValueId>& scope) {
    if (idx(v) >= g_.values.size()) fail(n, value_ref(g_, v) + " is not a value of this graph");
    if (value(g_, v).erased) fail(n, value_ref(g_, v) + " is erased");
    if (defined_[idx(v)]) fail(n, value_ref(g_, v) + " is defined twice");
    defined_[idx(v)] = true;
    in_scope_[idx(v)] = true;
    scope.push_back(v);
  }

  void check_block(BlockId b, NodeId owner) {
    if (idx(b) >= g_.blocks.size()) fail(owner, "block " + std::to_string(idx(b)) + " is not a block of this graph");
    const Block& blk = block(g_, b);
    if (blk.erased) fail(owner, "a nested block is erased");
    if (block_seen_[idx(b)]) fail(owner, "a nested block belongs to two nodes");
    block_seen_[idx(b)] = true;
    if (blk.owner != owner) fail(owner, "a nested block names another node as its owner");

    std::vector<ValueId> scope;  // values defined in this block, out of scope once it ends
    for (std::size_t i = 0; i < blk.params.size(); ++i) {
      const ValueId p = blk.params[i];
      define(owner, p, scope);
      const Value& v = value(g_, p);
      if (v.node != kNoNode || v.block != b || v.index != i)
        fail(owner, "block parameter " + value_ref(g_, p) + " does not record its block and position");
    }
    for (NodeId n : blk.nodes) check_node(b, n, scope);
    for (std::size_t i = 0; i < blk.returns.size(); ++i)
      check_use(owner, b, blk.returns[i], owner == kNoNode ? "output " + std::to_string(i) : "block return");
    for (ValueId v : scope) in_scope_[idx(v)] = false;
  }

  void check_node(BlockId b, NodeId n, std::vector<ValueId>& scope) {
    if (idx(n) >= g_.nodes.size()) throw Error(ErrorKind::internal, "", "", "invalid IR: a block lists a node not in the graph");
    const Node& nd = node(g_, n);
    if (nd.erased) fail(n, "node is erased but still in its block");
    if (node_seen_[idx(n)]) fail(n, "node appears twice");
    node_seen_[idx(n)] = true;
    if (nd.owner != b) fail(n, "node is in a block other than its owner");

    for (std::size_t i = 0; i < nd.inputs.size(); ++i) check_use(n, b, nd.inputs[i], "input " + std::to_string(i));
    check_arity(n);
    for (BlockId inner : nd.blocks) check_block(inner, n);
    for (std::size_t i = 0; i < nd.outputs.size(); ++i) {
      const ValueId o = nd.outputs[i];
      define(n, o, scope);
      const Value& v = value(g_, o);
      if (v.node != n || v.block != b || v.index != i)
        fail(n, "output " + value_ref(g_, o) + " does not record this node as its producer");
    }
  }

  std::size_t params(BlockId b) const { return idx(b) < g_.blocks.size() ? block(g_, b).params.size() : 0; }
  std::size_t returns(BlockId b) const { return idx(b) < g_.blocks.size() ? block(g_, b).returns.size() : 0; }

  void check_arity(NodeId n) {
    const Node& nd = node(g_, n);
    const std::string_view kind = kind_str(g_, n);
    if (kind == "prim::If") {
      if (nd.inputs.size() != 1) fail(n, "prim::If has " + count(nd.inputs.size(), "input") + ", needs 1 (the condition)");
      if (nd.blocks.size() != 2) fail(n, "prim::If has " + count(nd.blocks.size(), "block") + ", needs 2");
      for (std::size_t i = 0; i < 2; ++i) {
        if (params(nd.blocks[i]) != 0)
          fail(n, "block " + std::to_string(i) + " has " + count(params(nd.blocks[i]), "parameter") + ", needs 0");
        if (returns(nd.blocks[i]) != nd.outputs.size())
          fail(n, "block " + std::to_string(i) + " returns " + count(returns(nd.blocks[i]), "value") +
                      ", the node has " + count(nd.outputs.size(), "output"));
      }
    } else if (kind == "prim::Loop") {
      // inputs: max trip count, initial condition, carried...; body params: counter, carried...;
      // body returns: next condition, carried...; outputs: carried...
      if (nd.inputs.size() < 2)
        fail(n, "prim::Loop has " + count(nd.inputs.size(), "input") + ", needs at least 2 (trip count, condition)");
      if (nd.blocks.size() != 1) fail(n, "prim::Loop has " + count(nd.blocks.size(), "block") + ", needs 1");
      const std::size_t carried = nd.inputs.size() - 2;
      if (params(nd.blocks[0]) != carried + 1)
        fail(n, "body has " + count(params(nd.blocks[0]), "parameter") + ", needs " + std::to_string(carried + 1) +
                    " (counter and " + std::to_string(carried) + " carried)");
      if (returns(nd.blocks[0]) != carried + 1)
        fail(n, "body returns " + count(returns(nd.blocks[0]), "value") + ", needs " + std::to_string(carried + 1) +
                    " (condition and " + std::to_string(carried) + " carried)");
      if (nd.outputs.size() != carried)
        fail(n, "prim::Loop has " + count(nd.outputs.size(), "output") + ", needs " + std::to_string(carried) +
                    " (one per carried value)");
    } else if (!nd.blocks.empty()) {
      fail(n, "only prim::If and prim::Loop have blocks, this node has " + count(nd.blocks.size(), "block"));
    }
  }

  const Graph& g_;
  std::vector<bool> defined_;   // defined somewhere already seen (for "defined twice")
  std::vector<bool> in_scope_;  // defined in the current block or one enclosing it, earlier
  std::vector<bool> node_seen_;
  std::vector<bool> block_seen_;
};

}  // namespace

void verify(const Graph& g) { Verifier(g).run(); }

}  // namespace kiln::ir
