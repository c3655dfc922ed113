// The IR verifier: checks the invariants every pass may assume and must keep.
// SSA (each value defined once, before each use, in a block that encloses the use), ids in
// range and not erased, back-links consistent (value -> producer, node -> block), the
// block arity of prim::If and prim::Loop, and graph outputs defined.
#pragma once

#include "engine/ir/graph.hpp"

namespace kiln::ir {

// Throws kiln::Error (kind internal: a broken graph is kiln's bug, not the user's) on the
// first violation, as "invalid IR: <node as printed>: <what is wrong>"; the error's file
// and where are the node's source location when it has one.
void verify(const Graph& g);

}  // namespace kiln::ir
