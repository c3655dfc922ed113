// The importer — a TorchScript archive's `forward` as one kiln IR graph.
//
// Parses every `code/` file, resolves `self.x` against the module object tree from
// data.pkl (parameters, buffers and tensor constants become TensorRef constants that name
// archive data: nothing is copied), inlines submodule methods and free functions, and maps
// each call to an op of kiln's allowlist (op_schema.hpp) with every default argument
// filled in. Control flow becomes prim::If / prim::Loop with nested blocks. The graph is
// what the source says, no passes run, so that its ops can be compared with PyTorch's
// inlined graph; passes/pipeline.hpp optimizes it.
//
// Anything outside the allowlist, or source kiln does not understand, is refused here, at
// load time, with the archive, the code record, the line and column.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/ir/graph.hpp"
#include "format/archive.hpp"

namespace kiln::import {

struct ImportOptions {
  std::string method = "forward";
  // Bounds on what a hostile archive can make kiln build: nodes after inlining, and how
  // deeply methods may call methods.
  std::size_t max_nodes = std::size_t{1} << 22;
  int max_inline_depth = 64;
};

// A tensor the graph refers to by name (TensorRef): a parameter, a buffer, or a tensor
// from constants.pkl.
struct ArchiveTensor {
  enum class Kind { parameter, buffer, attribute, constant } kind = Kind::parameter;
  format::TensorData data;
};

struct ImportedModel {
  ir::Graph graph;
  // The method's parameters after self, in order: the model's input names.
  std::vector<std::string> input_names;
  // Every TensorRef in the graph: "encoder.layer.0.attention.self.query.weight", "CONSTANTS.c0".
  std::map<std::string, ArchiveTensor> tensors;
  int archive_version = 0;
  // The shapes the model was traced with, from traced_inputs.pkl (torch 2.x archives), by
  // input position; empty when the archive does not say.
  std::vector<std::vector<std::int64_t>> traced_input_shapes;
};

// Throws kiln::Error (bad_input) for archives it cannot import; where is
// "<code record>:<line>:<column>" for errors in the source.
ImportedModel import_model(const format::Archive& archive, const ImportOptions& options = {});

}  // namespace kiln::import
