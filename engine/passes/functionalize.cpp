// functionalize: `y = x.add_(1)` becomes `y = aten::add(x, 1)` and every later read of x
// reads y. That is only the program's meaning when nothing else can see x's storage, so
// anything not clearly a fresh tensor private to the in-place op's block is refused rather
// than guessed at: kiln has no alias analysis, and a wrong guess gives wrong numbers silently.
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/passes/effects.hpp"
#include "engine/passes/passes.hpp"
#include "kiln/error.hpp"

namespace kiln::passes {

namespace {

// Ops whose output may share storage with an input: views, and ops that return their input
// itself when there is nothing to do (`to`, `contiguous`, `reshape`, dropout in eval).
bool may_alias_input(const ir::Graph& g, ir::NodeId n) {
  if (is_dropout(g, n)) return true;
  return kind_in(
      g, n,
      {"aten::view", "aten::view_as", "aten::_unsafe_view", "aten::reshape", "aten::reshape_as", "aten::_reshape_alias",
       "aten::slice", "aten::select", "aten::narrow", "aten::permute", "aten::transpose", "aten::swapaxes",
       "aten::swapdims", "aten::movedim", "aten::moveaxis", "aten::t", "aten::T", "aten::mT", "aten::H", "aten::mH",
       "aten::adjoint", "aten::numpy_T", "aten::expand", "aten::expand_as", "aten::broadcast_to",
       "aten::broadcast_tensors", "aten::meshgrid", "aten::unsqueeze", "aten::squeeze", "aten::flatten",
       "aten::unflatten", "aten::ravel", "aten::split", "aten::split_with_sizes", "aten::unsafe_split",
       "aten::unsafe_split_with_sizes", "aten::tensor_split", "aten::chunk", "aten::unsafe_chunk", "aten::hsplit",
       "aten::vsplit", "aten::dsplit", "aten::unbind", "aten::as_strided", "aten::diagonal", "aten::unfold",
       "aten::detach", "aten::alias", "aten::real", "aten::imag", "aten::view_as_real", "aten::view_as_complex",
       "aten::conj", "aten::_conj", "aten::resolve_conj", "aten::resolve_neg", "aten::positive", "aten::to",
       "aten::type_as", "aten::contiguous", "aten::cpu", "aten::pin_memory", "aten::to_dense", "aten::coalesce",
       "aten::sum_to_size", "aten::einsum", "aten::atleast_1d", "aten::atleast_2d", "aten::atleast_3d",
       "aten::align_as", "aten::align_to", "aten::rename", "aten::refine_names", "aten::lift_fresh", "aten::data",
       "aten::values", "aten::indices", "aten::_values", "aten::_indices", "aten::crow_indices", "aten::col_indices",
       "aten::ccol_indices", "aten::row_indices", "aten::__getitem__", "aten::native_dropout"});
}

// A node reading a value that may hand on an alias of it: a possible view, a container
// that stores it, or an op outside aten whose outputs we cannot see through
// (prim::ListConstruct, prim::If). Metadata queries are the harmless exception.
bool may_pass_on_alias(const ir::Graph& g, ir::NodeId reader) {
  if (kind_in(g, reader, {"prim::dtype", "prim::device", "prim::shape", "prim::layout"})) return false;
  return !is_aten(ir::kind_str(g, reader)) || may_alias_input(g, reader) || is_container_mutator(g, reader);
}

// "aten::add_" -> "aten::add", "aten::__iand__" -> "aten::__and__".
std::string functional_kind(std::string_view kind) {
  if (is_inplace_dunder(kind)) return "aten::__" + std::string(kind.substr(std::string_view("aten::__i").size()));
  return std::string(kind.substr(0, kind.size() - 1));
}

// A bad_input error at `n`'s source line, for the user to change the model.
Error error_at(const ir::Graph& g, ir::NodeId n, std::string message) {
  std::string file, where;
  if (const auto& loc = ir::node(g, n).loc) {
    file = loc->file;
    where = std::to_string(loc->line) + ":" + std::to_string(loc->column);
  }
  return Error::bad_input(std::move(file), std::move(where), std::move(message));
}

Error refuse(const ir::Graph& g, ir::NodeId n, const std::string& what) {
  return error_at(g, n, "in-place " + std::string(ir::kind_str(g, n)) + " on " + what + " is not supported");
}

// Why the value `n` writes may be visible other than through later reads in `n`'s block;
// empty when it is a fresh tensor made in that block.
std::string why_not_fresh(const ir::Graph& g, ir::NodeId n) {
  const ir::Value& v = ir::value(g, ir::node(g, n).inputs[0]);
  if (v.node == ir::kNoNode) return v.block == ir::kTopBlock ? "a graph input" : "a loop-carried value";
  const std::string producer(ir::kind_str(g, v.node));
  if (producer == "prim::Constant") return "a constant";
  if (v.block != ir::node(g, n).owner) return "a value defined outside its block";
  if (!is_aten(producer) || may_alias_input(g, v.node) || is_inplace_op(g, v.node))
    return "a possible alias (the output of " + producer + ")";
  return {};
}

// The node of block `b` that holds use `u`: u's own node, or the node whose nested block
// holds it. kNoNode for a return of `b` itself, which comes after all its nodes.
ir::NodeId anchor_in(const ir::Graph& g, const ir::Use& u, ir::BlockId b) {
  ir::NodeId at = u.node;
  ir::BlockId where = u.node == ir::kNoNode ? u.block : ir::node(g, u.node).owner;
  while (where != b) {
    at = ir::block(g, where).owner;
    where = ir::node(g, at).owner;
  }
  return at;
}

std::unordered_map<std::uint32_t, std::size_t> positions(const ir::Graph& g, ir::BlockId b) {
  std::unordered_map<std::uint32_t, std::size_t> pos;
  const auto& nodes = ir::block(g, b).nodes;
  for (std::size_t i = 0; i < nodes.size(); ++i) pos.emplace(ir::idx(nodes[i]), i);
  return pos;
}

// The reads of `n`'s mutated input that run after `n` (those must see its result). Reads
// before `n` keep the old value, which is right unless they could pass on an alias that is
// read after the write, so those are refused.
std::vector<ir::Use> later_reads(const ir::Graph& g, ir::NodeId n) {
  const ir::BlockId b = ir::node(g, n).owner;
  const auto pos = positions(g, b);
  const std::size_t here = pos.at(ir::idx(n));
  std::vector<ir::Use> later;
  for (const ir::Use& u : ir::uses(g, ir::node(g, n).inputs[0])) {
    if (u.node == n) continue;
    const ir::NodeId at = anchor_in(g, u, b);
    if (at == ir::kNoNode || pos.at(ir::idx(at)) > here) {
      later.push_back(u);
      continue;
    }
    const std::string reader(ir::kind_str(g, at));
    if (u.node != at) throw refuse(g, n, "a value read inside a block of an earlier " + reader);
    if (may_pass_on_alias(g, at)) throw refuse(g, n, "a value aliased by an earlier " + reader);
  }
  return later;
}

void rewrite(ir::Graph& g, ir::NodeId n) {
  const ir::Node& nd = ir::node(g, n);
  if (nd.inputs.empty() || nd.outputs.size() != 1)
    throw error_at(g, n, "in-place " + std::string(ir::kind_str(g, n)) + " with " + std::to_string(nd.inputs.size()) +
                             " inputs and " + std::to_string(nd.outputs.size()) + " results is not supported");
  if (std::string why = why_not_fresh(g, n); !why.empty()) throw refuse(g, n, why);
  const ir::ValueId result = ir::node(g, n).outputs[0];
  for (const ir::Use& u : later_reads(g, n)) {
    if (u.node == ir::kNoNode)
      ir::block(g, u.block).returns[u.index] = result;
    else
      ir::node(g, u.node).inputs[u.index] = result;
  }
  ir::node(g, n).kind = ir::intern(g, functional_kind(ir::kind_str(g, n)));
}

}  // namespace

std::size_t functionalize(ir::Graph& g) {
  std::vector<ir::NodeId> inplace;
  ir::walk(g, [&](ir::NodeId n) {
    if (is_inplace_op(g, n)) inplace.push_back(n);
  });
  // In execution order, so that in `x.add_(1).mul_(2)` the mul_ sees add_ already
  // rewritten into a fresh aten::add.
  for (ir::NodeId n : inplace) rewrite(g, n);
  return inplace.size();
}

}  // namespace kiln::passes
