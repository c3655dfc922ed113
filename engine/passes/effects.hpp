// What the passes must know about an op beyond its dataflow: whether running it does
// something besides computing its outputs (an effect: it must stay where it is), whether
// two runs with equal inputs can differ (random: never merged, but removable when unused),
// and whether it writes a value another node may read (a mutation). Internal to
// engine/passes; kinds are matched by name because the importer keeps PyTorch's names.
#pragma once

#include <algorithm>
#include <initializer_list>
#include <iterator>
#include <string_view>
#include <variant>

#include "engine/ir/graph.hpp"

namespace kiln::passes {

inline bool is_aten(std::string_view kind) { return kind.starts_with("aten::"); }

inline bool kind_in(const ir::Graph& g, ir::NodeId n, std::initializer_list<std::string_view> kinds) {
  return std::find(kinds.begin(), kinds.end(), ir::kind_str(g, n)) != kinds.end();
}

// The in-place dunder operators (`x &= y`). Other dunders (`__and__`, `__getitem__`,
// `__is__`) also end in '_' but only read their operands.
inline bool is_inplace_dunder(std::string_view kind) {
  constexpr std::string_view dunders[] = {"aten::__iand__", "aten::__ior__", "aten::__ixor__",
                                          "aten::__ilshift__", "aten::__irshift__"};
  return std::find(std::begin(dunders), std::end(dunders), kind) != std::end(dunders);
}

// An aten op that writes its first argument: `aten::add_`, `aten::masked_fill_`, `aten::__iand__`.
inline bool is_inplace_op(const ir::Graph& g, ir::NodeId n) {
  const std::string_view kind = ir::kind_str(g, n);
  if (!is_aten(kind) || !kind.ends_with('_')) return false;
  if (kind.starts_with("aten::__")) return is_inplace_dunder(kind);
  return true;
}

// TorchScript's list (and dict) mutators that do not end in '_'. Their result is often
// unused, so without this DCE would drop `l.append(x)`.
inline bool is_container_mutator(const ir::Graph& g, ir::NodeId n) {
  return kind_in(g, n,
                 {"aten::append", "aten::insert", "aten::pop", "aten::clear", "aten::extend", "aten::remove",
                  "aten::reverse", "aten::_set_item", "aten::__setitem__", "aten::setdefault", "aten::update",
                  "aten::popitem", "aten::Delete"});
}

// Writes a value that other nodes may read: an in-place op, a container mutator, or a
// module attribute store.
inline bool mutates(const ir::Graph& g, ir::NodeId n) {
  return is_inplace_op(g, n) || is_container_mutator(g, n) || ir::is_kind(g, n, "prim::SetAttr");
}

// True when `n` (or anything nested in its blocks) does more than compute its outputs, so it
// may be neither removed nor merged. A node without blocks and without outputs can exist
// only for its effect (prim::Print, prim::SetAttr, the list overloads of aten::sort).
inline bool has_effect(const ir::Graph& g, ir::NodeId n) {
  const ir::Node& nd = ir::node(g, n);
  if (mutates(g, n)) return true;
  if (kind_in(g, n,
              {"prim::RaiseException", "prim::Print", "aten::warn", "prim::CallFunction", "prim::CallMethod",
               "prim::PythonOp", "prim::AddStatValue", "prim::TimePoint"}))
    return true;
  if (nd.blocks.empty()) return nd.outputs.empty();
  return std::any_of(nd.blocks.begin(), nd.blocks.end(), [&](ir::BlockId b) {
    const auto& nodes = ir::block(g, b).nodes;
    return std::any_of(nodes.begin(), nodes.end(), [&](ir::NodeId inner) { return has_effect(g, inner); });
  });
}

// The `train` argument (inputs[2]) of the dropout family is a constant false.
inline bool is_inference_dropout(const ir::Graph& g, ir::NodeId n) {
  const ir::Node& nd = ir::node(g, n);
  if (nd.inputs.size() < 3) return false;
  const ir::NodeId producer = ir::value(g, nd.inputs[2]).node;
  if (producer == ir::kNoNode || !ir::is_kind(g, producer, "prim::Constant")) return false;
  const ir::Attribute* a = ir::find_attr(g, producer, "value");
  return a && std::holds_alternative<bool>(a->value) && !std::get<bool>(a->value);
}

inline bool is_dropout(const ir::Graph& g, ir::NodeId n) {
  return kind_in(g, n,
                 {"aten::dropout", "aten::feature_dropout", "aten::alpha_dropout", "aten::feature_alpha_dropout"});
}

// Two runs with equal inputs may give different results (they draw random numbers), so two
// such nodes are never merged. They have no effect beyond their outputs: DCE may drop them.
inline bool is_random(const ir::Graph& g, ir::NodeId n) {
  if (is_dropout(g, n)) return !is_inference_dropout(g, n);
  return kind_in(g, n,
                 {"aten::native_dropout", "aten::rand", "aten::randn", "aten::rand_like", "aten::randn_like",
                  "aten::randint", "aten::randint_like", "aten::randperm", "aten::bernoulli", "aten::multinomial",
                  "aten::normal", "aten::poisson", "aten::uniform", "aten::exponential", "aten::geometric",
                  "aten::cauchy", "aten::log_normal", "aten::random", "aten::rrelu", "aten::rrelu_with_noise"});
}

}  // namespace kiln::passes
