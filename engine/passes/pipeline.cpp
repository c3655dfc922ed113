#include "engine/passes/pipeline.hpp"

#include <cstdlib>
#include <string_view>

#include "engine/ir/verify.hpp"
#include "engine/passes/passes.hpp"

namespace kiln::passes {

bool fusions_enabled() {
  const char* v = std::getenv("KILN_FUSE");
  return !v || std::string_view(v) != "0";
}

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
  // Fusions last, on the simplified graph; KILN_FUSE=0 turns them off (to compare, or to
  // see the graph as traced in `kiln inspect --graph`).
  if (fusions_enabled()) {
    record("fuse_embedding_layer_norm", fuse_embedding_layer_norm(g));
    record("fuse_attention", fuse_attention(g));
    record("fuse_linear_gelu", fuse_linear_gelu(g));
    record("fuse_add_layer_norm", fuse_add_layer_norm(g));
    record("fuse_linear_concat", fuse_linear_concat(g));
    record("sink_expands", sink_expands(g));
  }
  // Types and the report of the graph that will run.
  result.shapes = infer_shapes(g, inputs, model.tensors, model.traced_input_shapes);
  ir::verify(g);
  return result;
}

}  // namespace kiln::passes
