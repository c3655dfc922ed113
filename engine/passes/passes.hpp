// Graph-to-graph rewrites that keep a program's meaning for inference: each takes an
// imported, verified ir::Graph and leaves it verified. They return how many nodes they
// changed or removed, so a driver can iterate to a fixed point and `kiln inspect` can say
// what was done. Shape and dtype inference, constant folding of shape arithmetic and the
// shape report live in shape_inference.hpp; the pipeline that runs everything in order is
// `optimize` in pipeline.hpp.
//
// Conventions the importer guarantees (docs/ir.md):
// - Every op node's inputs are its schema's arguments in schema order, defaults included
//   (materialized as prim::Constant), so "argument i" is simply inputs[i].
// - prim::Constant has attribute "value" (int64, double, bool, string, int list, or a
//   TensorRef to archive data); a None constant has no attribute and type NoneType.
// - Ops with effects (prim::RaiseException, in-place aten ops ending in '_', and anything
//   the allowlist marks impure) are never removed or merged.
#pragma once

#include <cstddef>

#include "engine/ir/graph.hpp"

namespace kiln::passes {

// Rewrites in-place ops (`aten::add_`) whose mutated input is a fresh value (produced by a
// non-view aten op in the same block) into their functional form, replacing later reads of
// the mutated value (nested ones and graph outputs included) with the result. Reads before
// the in-place op keep the old value, which is right unless the reader may pass on an alias
// (a view or may-alias op, a non-aten op such as prim::ListConstruct, a list mutator). Throws
// kiln::Error (bad_input, naming the op and its source line) where the mutation could be
// seen through an alias: a graph input, a weight, a view, such an earlier reader, or a value
// read inside a nested block of an earlier node. Ops are rewritten in execution order, so a
// throw leaves the earlier ones functional and the graph valid and equivalent. Returns the
// number of ops rewritten.
std::size_t functionalize(ir::Graph& g);

// Removes nodes none of whose outputs is used and that have no effect, in every block,
// iterating until nothing more goes (a dead chain goes in one call). Unused prim::If and
// prim::Loop nodes go too when nothing inside them has an effect; unused block returns of
// loops are kept (they carry state); unused outputs of a live prim::If go with their block
// returns. Returns the number of nodes removed (a removed If or Loop counts with everything
// in it), plus one for each If that only lost outputs.
std::size_t eliminate_dead_code(ir::Graph& g);

// Merges nodes with the same kind, overload, inputs and attributes (pure ops only, no
// nested blocks), keeping the first in execution order; a node may be merged with one in
// the same block or in an enclosing block that precedes it. Constants with equal values and
// types are merged too. Returns the number of nodes removed.
// Without alias analysis, two reads of a value the graph writes may differ: while the graph
// still has in-place tensor ops or prim::SetAttr only constants merge, and while it mutates
// lists no node that reads or makes a list merges.
std::size_t eliminate_common_subexpressions(ir::Graph& g);

// Removes what is a no-op in inference: aten::dropout / feature_dropout / alpha_dropout
// with a constant train=false, aten::detach, aten::contiguous (kiln's kernels take strided
// inputs), aten::to / type_as to the dtype the input already has (known dtypes only, copy
// false), and prim::unchecked_cast. Uses are redirected to the input. Returns the number of
// nodes removed.
// In detail: feature_alpha_dropout too; contiguous only with memory_format contiguous_format
// (or None), and not while the graph has in-place ops (the copy is then a different tensor);
// every aten::to overload (dtype, device, other, dtype_layout, prim_Device, prim_dtype,
// prim_other) when each argument it has is constant and changes nothing: dtype None or the
// input's, device None or "cpu", layout None or strided, pin_memory None or false, copy
// false, memory_format None or preserve_format (contiguous_format as for contiguous).
// An aten::view reading a removed contiguous becomes aten::reshape (the same values).
std::size_t remove_inference_noops(ir::Graph& g);

// Replaces aten::Int(prim::NumToTensor(x)) with x where x is an int: the size-to-tensor-
// to-size round trips traces are full of. The pair becomes dead; DCE removes it. Returns
// the number of uses redirected.
std::size_t fold_int_round_trips(ir::Graph& g);

// Fusions (fusions.cpp): each rewrites a chain of ops whose intermediate results nothing
// else reads into one kiln:: op that computes the same, for kernels that make one pass over
// memory instead of several. Each returns how many chains it rewrote.
//
// kiln::linear_concat(x, w1, b1, w2, b2, ...) = cat([linear(x, w1, b1), linear(x, w2, b2),
// ...], -1): linears of one input with constant weights of one width (attention's Q, K
// and V), as one GEMM; each linear's result becomes an aten::slice (a view) of it.
std::size_t fuse_linear_concat(ir::Graph& g);
// kiln::linear_gelu(x, w, b, approximate) = gelu(linear(x, w, b), approximate)
std::size_t fuse_linear_gelu(ir::Graph& g);
// kiln::add_layer_norm(a, b, normalized_shape, weight, bias, eps) = layer_norm(a + b, ...),
// for float32 a and b of the same shape (a residual connection).
std::size_t fuse_add_layer_norm(ir::Graph& g);
// kiln::embedding_layer_norm(normalized_shape, weight, bias, eps, table1, ids1, table2, ids2,
// ...) = layer_norm((embedding(table1, ids1) + embedding(table2, ids2)) + ..., ...): BERT's
// word + token type + position embeddings.
std::size_t fuse_embedding_layer_norm(ir::Graph& g);
// kiln::attention(q, k, v, mask?, divisor?, scale?, from_sdpa) = softmax(q @ k^T / divisor
// (or * scale) + mask, -1) @ v: the eager attention chain (matmul, transpose, div or mul,
// add, softmax, matmul; from_sdpa false) and scaled_dot_product_attention without dropout,
// causal mask or bool mask (from_sdpa true: its scale, None meaning 1/sqrt(head size), and
// its softmax that gives zeros for a row masked entirely).
std::size_t fuse_attention(ir::Graph& g);

// Elementwise ops (to, add, sub, rsub, mul, div, masked_fill) whose tensor operands are
// expands of one shape to one size list (or 0-dim) run before the expand instead: op(
// expand(x)) becomes expand(op(x)). The SDPA attention mask Hugging Face builds, [batch, 1,
// seq, seq] from [batch, 1, 1, seq], is then computed on batch x seq elements and stays a
// broadcast view that kiln::attention reads as such. Returns how many ops moved.
std::size_t sink_expands(ir::Graph& g);

}  // namespace kiln::passes
