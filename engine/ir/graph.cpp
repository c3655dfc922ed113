#include "engine/ir/graph.hpp"

#include <algorithm>
#include <utility>

#include "engine/ir/print.hpp"
#include "kiln/error.hpp"

namespace kiln::ir {

namespace {

Error internal(std::string message) { return Error(ErrorKind::internal, "", "", std::move(message)); }

std::uint32_t checked_size(std::size_t n) {
  if (n >= 0xffffffffu) throw internal("ir: graph too large");
  return static_cast<std::uint32_t>(n);
}

NodeId make_node(Graph& g, BlockId b, std::string_view kind, std::vector<ValueId> inputs,
                 std::vector<Type> output_types) {
  // The overload follows the last '.', which never occurs in a namespace or op name.
  std::string_view overload;
  if (auto dot = kind.rfind('.'); dot != std::string_view::npos) {
    overload = kind.substr(dot + 1);
    kind = kind.substr(0, dot);
  }
  const NodeId id{checked_size(g.nodes.size())};
  Node n;
  n.kind = intern(g, kind);
  n.overload = intern(g, overload);
  n.inputs = std::move(inputs);
  n.owner = b;
  for (std::size_t i = 0; i < output_types.size(); ++i) {
    n.outputs.push_back(ValueId{checked_size(g.values.size())});
    Value v;
    v.type = std::move(output_types[i]);
    v.node = id;
    v.block = b;
    v.index = static_cast<std::uint32_t>(i);
    g.values.push_back(std::move(v));
  }
  g.nodes.push_back(std::move(n));
  return id;
}

void erase_block_contents(Graph& g, BlockId b) {
  Block& blk = block(g, b);
  blk.erased = true;
  for (ValueId p : blk.params) value(g, p).erased = true;
  for (NodeId n : blk.nodes) {
    Node& nd = node(g, n);
    nd.erased = true;
    for (ValueId o : nd.outputs) value(g, o).erased = true;
    for (BlockId inner : nd.blocks) erase_block_contents(g, inner);
  }
}

// True when block `b` is `ancestor` or nested (at any depth) inside it.
bool within(const Graph& g, BlockId b, BlockId ancestor) {
  while (true) {
    if (b == ancestor) return true;
    const NodeId owner = block(g, b).owner;
    if (owner == kNoNode) return false;
    b = node(g, owner).owner;
  }
}

void walk_block(const Graph& g, BlockId b, const std::function<void(NodeId)>& fn) {
  for (NodeId n : block(g, b).nodes) {
    if (node(g, n).erased) continue;
    fn(n);
    for (BlockId inner : node(g, n).blocks) walk_block(g, inner, fn);
  }
}

}  // namespace

Symbol intern(Graph& g, std::string_view text) {
  std::string key(text);
  if (auto it = g.symbols.index.find(key); it != g.symbols.index.end()) return it->second;
  const Symbol s{checked_size(g.symbols.names.size())};
  g.symbols.names.push_back(key);
  g.symbols.index.emplace(std::move(key), s);
  return s;
}

std::string_view symbol_str(const Graph& g, Symbol s) { return g.symbols.names.at(idx(s)); }

std::string_view kind_str(const Graph& g, NodeId n) { return symbol_str(g, node(g, n).kind); }

bool is_kind(const Graph& g, NodeId n, std::string_view kind) { return kind_str(g, n) == kind; }

ValueId add_input(Graph& g, Type type, std::string name) {
  return add_block_param(g, kTopBlock, std::move(type), std::move(name));
}

void add_output(Graph& g, ValueId v) { block(g, kTopBlock).returns.push_back(v); }

NodeId append_node(Graph& g, BlockId b, std::string_view kind, std::vector<ValueId> inputs,
                   std::vector<Type> output_types) {
  const NodeId id = make_node(g, b, kind, std::move(inputs), std::move(output_types));
  block(g, b).nodes.push_back(id);
  return id;
}

NodeId insert_node_before(Graph& g, NodeId before, std::string_view kind, std::vector<ValueId> inputs,
                          std::vector<Type> output_types) {
  const BlockId b = node(g, before).owner;
  const NodeId id = make_node(g, b, kind, std::move(inputs), std::move(output_types));
  auto& list = block(g, b).nodes;
  auto pos = std::find(list.begin(), list.end(), before);
  if (pos == list.end()) throw internal("ir: insert_node_before: node is not in its block");
  list.insert(pos, id);
  return id;
}

void move_before(Graph& g, NodeId n, NodeId before) {
  const BlockId b = node(g, before).owner;
  if (node(g, n).owner != b) throw internal("ir: move_before: the nodes are in different blocks");
  auto& list = block(g, b).nodes;
  const auto from = std::find(list.begin(), list.end(), n);
  if (from == list.end()) throw internal("ir: move_before: node is not in its block");
  list.erase(from);
  list.insert(std::find(list.begin(), list.end(), before), n);
}

ValueId append_constant(Graph& g, BlockId b, AttrValue v, Type type) {
  std::vector<Type> types;
  types.push_back(std::move(type));
  const NodeId n = append_node(g, b, "prim::Constant", {}, std::move(types));
  node(g, n).attrs.push_back(Attribute{"value", std::move(v)});
  return node(g, n).outputs[0];
}

ValueId add_node_output(Graph& g, NodeId n, Type type, std::string name) {
  const ValueId id{checked_size(g.values.size())};
  Value v;
  v.type = std::move(type);
  v.name = std::move(name);
  v.node = n;
  v.block = node(g, n).owner;
  v.index = checked_size(node(g, n).outputs.size());
  g.values.push_back(std::move(v));
  node(g, n).outputs.push_back(id);
  return id;
}

BlockId add_block(Graph& g, NodeId n) {
  const BlockId id{checked_size(g.blocks.size())};
  Block b;
  b.owner = n;
  g.blocks.push_back(std::move(b));
  node(g, n).blocks.push_back(id);
  return id;
}

ValueId add_block_param(Graph& g, BlockId b, Type type, std::string name) {
  const ValueId id{checked_size(g.values.size())};
  Value v;
  v.type = std::move(type);
  v.name = std::move(name);
  v.block = b;
  v.index = checked_size(block(g, b).params.size());
  g.values.push_back(std::move(v));
  block(g, b).params.push_back(id);
  return id;
}

const Attribute* find_attr(const Graph& g, NodeId n, std::string_view name) {
  for (const Attribute& a : node(g, n).attrs)
    if (a.name == name) return &a;
  return nullptr;
}

std::vector<Use> uses(const Graph& g, ValueId v) {
  std::vector<Use> out;
  for (std::uint32_t b = 0; b < g.blocks.size(); ++b) {
    const Block& blk = g.blocks[b];
    if (blk.erased) continue;
    for (NodeId n : blk.nodes) {
      const Node& nd = node(g, n);
      for (std::uint32_t i = 0; i < nd.inputs.size(); ++i)
        if (nd.inputs[i] == v) out.push_back(Use{n, BlockId{b}, i});
    }
    for (std::uint32_t i = 0; i < blk.returns.size(); ++i)
      if (blk.returns[i] == v) out.push_back(Use{kNoNode, BlockId{b}, i});
  }
  return out;
}

void replace_all_uses(Graph& g, ValueId from, ValueId to) {
  for (const Use& u : uses(g, from)) {
    if (u.node == kNoNode)
      block(g, u.block).returns[u.index] = to;
    else
      node(g, u.node).inputs[u.index] = to;
  }
}

void erase_node(Graph& g, NodeId n) {
  Node& nd = node(g, n);
  if (nd.erased) throw internal("ir: erase_node: node is already erased");
  // A use inside n's own blocks dies with n; a use anywhere else would dangle.
  for (ValueId o : nd.outputs) {
    for (const Use& u : uses(g, o)) {
      const BlockId where = u.node == kNoNode ? u.block : node(g, u.node).owner;
      const bool inside = std::any_of(nd.blocks.begin(), nd.blocks.end(),
                                      [&](BlockId b) { return within(g, where, b); });
      if (!inside)
        throw internal("ir: erase_node: " + value_ref(g, o) + " (output of " + std::string(kind_str(g, n)) +
                       ") is still used");
    }
  }
  auto& list = block(g, nd.owner).nodes;
  list.erase(std::remove(list.begin(), list.end(), n), list.end());
  nd.erased = true;
  for (ValueId o : nd.outputs) value(g, o).erased = true;
  for (BlockId inner : nd.blocks) erase_block_contents(g, inner);
}

void walk(const Graph& g, const std::function<void(NodeId)>& fn) { walk_block(g, kTopBlock, fn); }

}  // namespace kiln::ir
