// optimize — the passes kiln runs on every imported model, in order, to a verified graph
// ready for planning: functionalize in-place ops, infer shapes and dtypes, fold shape
// arithmetic, remove inference no-ops, eliminate dead code and common subexpressions, and
// infer again so that the final graph's types and the shape report describe what will run.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "engine/import/importer.hpp"
#include "engine/passes/shape_inference.hpp"

namespace kiln::passes {

struct PassCount {
  std::string pass;
  std::size_t changed = 0;
};

struct OptimizeResult {
  ShapeReport shapes;
  std::vector<PassCount> passes;  // what each pass changed, in the order run
};

// Whether optimize runs the fusions: yes unless the environment has KILN_FUSE=0.
bool fusions_enabled();

// `inputs` empty means default_input_specs(model).
OptimizeResult optimize(import::ImportedModel& model, std::vector<InputSpec> inputs = {});

}  // namespace kiln::passes
