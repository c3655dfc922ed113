#include "engine/passes/pipeline.hpp"

#include "engine/ir/verify.hpp"
#include "engine/passes/passes.hpp"

namespace kiln::passes {

OptimizeResult optimize(import::ImportedModel& model, std::vector<InputSpec> inputs) {
  if (inputs.empty()) inputs = default_input_specs(model);
  ir::Graph& g = model.graph;
  OptimizeResult result;
  auto record = [&](const char* name, std::size_t changed) { result.passes.push_back(PassCount{name, changed}); };
  // No-ops first: eval-mode dropout returns its input, which functionalize would
  // otherwise have to treat as a possible alias of an in-place op's operand.
  record("remove_inference_noops", remove_inference_noops(g));
  record("functionalize", functionalize(g));
  ShapeReport first = infer_shapes(g, inputs, model.tensors, model.traced_input_shapes);
  record("fold_constants", fold_constants(g, first));
  // Again, now that dtypes are known (`to` the dtype a tensor already has).
  record("remove_inference_noops", remove_inference_noops(g));
  record("eliminate_dead_code", eliminate_dead_code(g));
  record("eliminate_common_subexpressions", eliminate_common_subexpressions(g));
  record("eliminate_dead_code", eliminate_dead_code(g));
  // Types and the report of the graph that will run.
  result.shapes = infer_shapes(g, inputs, model.tensors, model.traced_input_shapes);
  ir::verify(g);
  return result;
}

}  // namespace kiln::passes
