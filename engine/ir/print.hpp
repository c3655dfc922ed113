// Text dump of kiln's IR, close to PyTorch's `graph.str()` so that the two can be read side
// by side: "graph(%x : Float(*, 16)):", one line per node "%5 : Tensor = aten::relu(%x)",
// nested blocks as "block0(...):" ... "-> (...)", and "return (...)".
// Overload names are not printed (PyTorch does not either); source locations are, as a
// trailing "# file:line:column" comment.
#pragma once

#include <string>

#include "engine/ir/graph.hpp"

namespace kiln::ir {

// "%name" for a named value, else "%<id>". Names are not made unique here; the importer
// gives distinct names (PyTorch's "h.1" style) where it needs them.
std::string value_ref(const Graph& g, ValueId v);

// One node, without its nested blocks and without indentation or newline:
// "%5 : Tensor = aten::relu(%x)".
std::string node_str(const Graph& g, NodeId n);

// The whole graph, ending in a newline.
std::string print(const Graph& g);

}  // namespace kiln::ir
