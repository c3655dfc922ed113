// kiln::ir::Graph — kiln's SSA IR: a Graph owns every Value, Node and Block in vectors
// indexed by stable ids; a Block is an ordered list of nodes with parameters and returns;
// nodes of prim::If / prim::Loop own nested Blocks. Data is plain and public; the free
// functions below keep the back-links (value -> producer, node -> block) consistent.
// verify.hpp checks a graph's invariants, print.hpp dumps it the way PyTorch does.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "engine/ir/types.hpp"

namespace kiln::ir {

// Distinct id types, so a NodeId can never be passed where a ValueId is meant. Ids index the
// graph's vectors and stay valid after erasure (the slot is only marked erased), so passes
// can keep ids in maps while they rewrite.
enum class ValueId : std::uint32_t {};
enum class NodeId : std::uint32_t {};
enum class BlockId : std::uint32_t {};
enum class Symbol : std::uint32_t {};  // an interned string; Symbol{0} is ""

inline constexpr NodeId kNoNode{0xffffffffu};
inline constexpr BlockId kTopBlock{0};

constexpr std::uint32_t idx(ValueId v) { return static_cast<std::uint32_t>(v); }
constexpr std::uint32_t idx(NodeId n) { return static_cast<std::uint32_t>(n); }
constexpr std::uint32_t idx(BlockId b) { return static_cast<std::uint32_t>(b); }
constexpr std::uint32_t idx(Symbol s) { return static_cast<std::uint32_t>(s); }

// Where in the model's source a node came from, for error messages.
struct SourceLoc {
  std::string file;  // e.g. "code/__torch__.py"
  std::uint32_t line = 0;
  std::uint32_t column = 0;
  bool operator==(const SourceLoc&) const = default;
};

// A reference to a tensor stored in the model archive (a parameter or a tensor constant),
// by its record name; the IR never holds tensor data.
struct TensorRef {
  std::string name;
  bool operator==(const TensorRef&) const = default;
};

using AttrValue = std::variant<std::int64_t, double, bool, std::string, std::vector<std::int64_t>, TensorRef>;

struct Attribute {
  std::string name;  // "value" for prim::Constant, "name" for prim::GetAttr
  AttrValue value;
};

struct Value {
  Type type;
  std::string name;         // debug name from the source ("x", "h.1"); empty prints the id
  NodeId node = kNoNode;    // the producing node; kNoNode for a block parameter
  BlockId block{};          // the block it is defined in (the producer's block, or the param's)
  std::uint32_t index = 0;  // position among the producer's outputs or the block's params
  bool erased = false;
};

struct Node {
  Symbol kind{};      // "aten::linear", "prim::If"
  Symbol overload{};  // "Tensor" for aten::add.Tensor; "" when none
  std::vector<ValueId> inputs;
  std::vector<ValueId> outputs;
  std::vector<Attribute> attrs;
  std::vector<BlockId> blocks;  // nested blocks: 2 for prim::If, 1 for prim::Loop
  BlockId owner{};              // the block this node sits in
  std::optional<SourceLoc> loc;
  bool erased = false;
};

struct Block {
  NodeId owner = kNoNode;        // the node holding this block; kNoNode for the top block
  std::vector<ValueId> params;   // graph inputs for the top block; loop counter + carried for a loop body
  std::vector<NodeId> nodes;     // in execution order
  std::vector<ValueId> returns;  // graph outputs for the top block
  bool erased = false;
};

// Interned strings, per graph: op kinds compare as integers, and a graph carries its own
// table so there is no global mutable state shared between threads.
struct SymbolTable {
  std::vector<std::string> names{std::string()};
  std::unordered_map<std::string, Symbol> index{{std::string(), Symbol{0}}};
};

// The top block (kTopBlock, made by the constructor) holds the graph inputs as params and
// the graph outputs as returns.
struct Graph {
  std::vector<Value> values;
  std::vector<Node> nodes;
  std::vector<Block> blocks{Block{}};
  SymbolTable symbols;
};

Symbol intern(Graph& g, std::string_view text);
std::string_view symbol_str(const Graph& g, Symbol s);
// The node's kind, e.g. "aten::add" (without overload).
std::string_view kind_str(const Graph& g, NodeId n);
bool is_kind(const Graph& g, NodeId n, std::string_view kind);

inline Value& value(Graph& g, ValueId v) { return g.values.at(idx(v)); }
inline const Value& value(const Graph& g, ValueId v) { return g.values.at(idx(v)); }
inline Node& node(Graph& g, NodeId n) { return g.nodes.at(idx(n)); }
inline const Node& node(const Graph& g, NodeId n) { return g.nodes.at(idx(n)); }
inline Block& block(Graph& g, BlockId b) { return g.blocks.at(idx(b)); }
inline const Block& block(const Graph& g, BlockId b) { return g.blocks.at(idx(b)); }

ValueId add_input(Graph& g, Type type, std::string name = {});
void add_output(Graph& g, ValueId v);

// A new node with one output per type. `kind` may carry an overload after a dot:
// "aten::add.Tensor" is kind "aten::add", overload "Tensor". append_node puts it at the end
// of `b`; insert_node_before puts it just before `before`, in the same block.
NodeId append_node(Graph& g, BlockId b, std::string_view kind, std::vector<ValueId> inputs,
                   std::vector<Type> output_types);
NodeId insert_node_before(Graph& g, NodeId before, std::string_view kind,
                          std::vector<ValueId> inputs, std::vector<Type> output_types);

// Moves node `n` to just before `before`, in the same block (the caller keeps every use
// after its definition: a prim::Constant may move anywhere earlier).
void move_before(Graph& g, NodeId n, NodeId before);

// A prim::Constant at the end of `b` with attribute value=`v`; returns its output.
ValueId append_constant(Graph& g, BlockId b, AttrValue v, Type type);

// A new output of node `n` (an If or Loop grows one per merged variable), in n's block.
ValueId add_node_output(Graph& g, NodeId n, Type type, std::string name = {});

// A new empty block nested in node `n` (prim::If's then/else, prim::Loop's body).
BlockId add_block(Graph& g, NodeId n);
ValueId add_block_param(Graph& g, BlockId b, Type type, std::string name = {});

// First attribute named `name`, or null.
const Attribute* find_attr(const Graph& g, NodeId n, std::string_view name);

// One place a value is read: input `index` of `node`, or return `index` of `block` (when
// node is kNoNode).
struct Use {
  NodeId node = kNoNode;
  BlockId block{};
  std::uint32_t index = 0;
  bool operator==(const Use&) const = default;
};

// Uses are found by scanning the graph rather than kept in per-value lists: BERT graphs
// have a few thousand nodes, and one source of truth cannot go stale.
std::vector<Use> uses(const Graph& g, ValueId v);

// Every read of `from` (node inputs, block returns, graph outputs) now reads `to`.
void replace_all_uses(Graph& g, ValueId from, ValueId to);

// Removes `n`, its nested blocks and everything in them, and marks their values erased.
// Throws kiln::Error (internal) if an output of `n` is still used outside `n`.
void erase_node(Graph& g, NodeId n);

// Calls `fn` for every live node in execution order, nested blocks' nodes right after
// (inside) their owner, i.e. pre-order. `fn` must not add or erase nodes.
void walk(const Graph& g, const std::function<void(NodeId)>& fn);

}  // namespace kiln::ir
