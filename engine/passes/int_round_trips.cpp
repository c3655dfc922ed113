// aten::Int(prim::NumToTensor(x)) -> x: traces turn every size into a 0-dim tensor and
// back, and PyTorch's loader folds some of these pairs but not others.
#include "engine/passes/passes.hpp"

namespace kiln::passes {

std::size_t fold_int_round_trips(ir::Graph& g) {
  std::size_t changed = 0;
  ir::walk(g, [&](ir::NodeId n) {
    if (!ir::is_kind(g, n, "aten::Int")) return;
    const ir::Node& node = ir::node(g, n);
    if (node.inputs.empty() || node.outputs.size() != 1) return;
    const ir::NodeId producer = ir::value(g, node.inputs[0]).node;
    if (producer == ir::kNoNode || !ir::is_kind(g, producer, "prim::NumToTensor")) return;
    const ir::ValueId x = ir::node(g, producer).inputs.at(0);
    if (ir::value(g, x).type.kind != ir::TypeKind::int_) return;
    ir::replace_all_uses(g, node.outputs[0], x);
    ++changed;
  });
  return changed;
}

}  // namespace kiln::passes
