// remove_inference_noops: ops that hand back their input (or an equal copy) when a model
// runs for inference on kiln's CPU kernels. Each rule reads the op's schema arguments by
// position (the importer materializes defaults) and only acts on constants it can see.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "engine/ir/scalar_type.hpp"
#include "engine/passes/effects.hpp"
#include "engine/passes/passes.hpp"
#include "kiln/dtype.hpp"

namespace kiln::passes {

namespace {

// MemoryFormat and Layout codes, as TorchScript constants carry them.
constexpr std::int64_t kContiguousFormat = 0;
constexpr std::int64_t kPreserveFormat = 1;
constexpr std::int64_t kStridedLayout = 0;

// An argument as this pass sees it: a constant's value, None, or unknown (not a constant,
// or absent from the node): only `value` is set, only `none`, or neither.
struct Arg {
  bool none = false;
  const ir::AttrValue* value = nullptr;
};

Arg arg(const ir::Graph& g, ir::NodeId n, int i) {
  const ir::Node& nd = ir::node(g, n);
  if (i < 0 || static_cast<std::size_t>(i) >= nd.inputs.size()) return {};
  const ir::ValueId v = nd.inputs[static_cast<std::size_t>(i)];
  const ir::NodeId producer = ir::value(g, v).node;
  if (producer == ir::kNoNode || !ir::is_kind(g, producer, "prim::Constant")) return {};
  const ir::Attribute* a = ir::find_attr(g, producer, "value");
  if (!a) return Arg{ir::value(g, v).type.kind == ir::TypeKind::none, nullptr};
  return Arg{false, &a->value};
}

template <typename T>
bool arg_is(const Arg& a, const T& expected) {
  return a.value && std::holds_alternative<T>(*a.value) && std::get<T>(*a.value) == expected;
}

std::optional<DType> known_dtype(const ir::Graph& g, ir::ValueId v) {
  const ir::Type& t = ir::value(g, v).type;
  if (t.kind != ir::TypeKind::tensor) return std::nullopt;
  return t.tensor.dtype;
}

// Where aten::to's arguments sit in each overload; -1 where the overload has none.
struct ToSchema {
  std::string_view overload;
  int dtype, device, other, layout, pin_memory, copy, memory_format;
};

constexpr ToSchema kToSchemas[] = {
    // to.dtype(self, ScalarType dtype, bool non_blocking, bool copy, MemoryFormat? memory_format)
    {"dtype", 1, -1, -1, -1, -1, 3, 4},
    // to.device(self, Device device, ScalarType dtype, bool non_blocking, bool copy, MemoryFormat? memory_format)
    {"device", 2, 1, -1, -1, -1, 4, 5},
    // to.other(self, Tensor other, bool non_blocking, bool copy, MemoryFormat? memory_format)
    {"other", -1, -1, 1, -1, -1, 3, 4},
    // to.dtype_layout(self, *, ScalarType? dtype, Layout? layout, Device? device, bool? pin_memory,
    //                 bool non_blocking, bool copy, MemoryFormat? memory_format)
    {"dtype_layout", 1, 3, -1, 2, 4, 6, 7},
    // TorchScript's own: to.prim_Device(self, Device? device, int? dtype, bool non_blocking, bool copy)
    {"prim_Device", 2, 1, -1, -1, -1, 4, -1},
    // to.prim_dtype(self, int? dtype, bool non_blocking, bool copy)
    {"prim_dtype", 1, -1, -1, -1, -1, 3, -1},
    // to.prim_other(self, bool non_blocking, bool copy)
    {"prim_other", -1, -1, -1, -1, -1, 2, -1},
};

const ToSchema* to_schema(const ir::Graph& g, ir::NodeId n) {
  const std::string_view overload = ir::symbol_str(g, ir::node(g, n).overload);
  for (const ToSchema& s : kToSchemas)
    if (s.overload == overload) return &s;
  return nullptr;
}

// Absent, None, or the input's own dtype.
bool keeps_dtype(const ir::Graph& g, ir::NodeId n, int i) {
  if (i < 0) return true;
  const Arg a = arg(g, n, i);
  if (a.none) return true;
  const std::optional<DType> have = known_dtype(g, ir::node(g, n).inputs[0]);
  if (!have || !a.value || !std::holds_alternative<std::int64_t>(*a.value)) return false;
  return ir::dtype_from_scalar_type(std::get<std::int64_t>(*a.value)) == have;
}

// Absent, None, or the CPU, where kiln's tensors are.
bool keeps_device(const ir::Graph& g, ir::NodeId n, int i) {
  if (i < 0) return true;
  const Arg a = arg(g, n, i);
  return a.none || arg_is(a, std::string("cpu"));
}

// `to(other)` takes other's dtype (and device: the CPU, for kiln).
bool keeps_dtype_of_other(const ir::Graph& g, ir::NodeId n, int i) {
  if (i < 0) return true;
  const auto& inputs = ir::node(g, n).inputs;
  if (static_cast<std::size_t>(i) >= inputs.size()) return false;
  const std::optional<DType> have = known_dtype(g, inputs[0]);
  return have && known_dtype(g, inputs[static_cast<std::size_t>(i)]) == have;
}

bool absent_none_or(const ir::Graph& g, ir::NodeId n, int i, const ir::AttrValue& expected) {
  if (i < 0) return true;
  const Arg a = arg(g, n, i);
  return a.none || (a.value && *a.value == expected);
}

// A copy to contiguous memory only changes strides, which kiln's kernels take as they come;
// but it makes a different tensor, so while the graph still writes tensors in place it must
// stay (a write to the copy must not reach the original, nor one to the original the copy).
bool memory_format_is_noop(const ir::Graph& g, ir::NodeId n, int i, bool writes_tensors) {
  if (i < 0) return true;
  const Arg a = arg(g, n, i);
  if (a.none || arg_is(a, kPreserveFormat)) return true;
  return !writes_tensors && arg_is(a, kContiguousFormat);
}

bool to_is_noop(const ir::Graph& g, ir::NodeId n, bool writes_tensors) {
  const ToSchema* s = to_schema(g, n);
  if (!s || !arg_is(arg(g, n, s->copy), false)) return false;
  if (!memory_format_is_noop(g, n, s->memory_format, writes_tensors)) return false;
  return keeps_dtype(g, n, s->dtype) && keeps_device(g, n, s->device) && keeps_dtype_of_other(g, n, s->other) &&
         absent_none_or(g, n, s->layout, ir::AttrValue{kStridedLayout}) &&
         absent_none_or(g, n, s->pin_memory, ir::AttrValue{false});
}

// A 0-dim tensor from the constants table promotes like a Python number; the tensor a
// detach or to makes from it does not, so those are not no-ops on it.
bool is_wrapped_constant(const ir::Graph& g, ir::ValueId v) {
  const ir::NodeId p = ir::value(g, v).node;
  if (p == ir::kNoNode || !ir::is_kind(g, p, "prim::Constant") || ir::node(g, p).attrs.empty()) return false;
  const auto* ref = std::get_if<ir::TensorRef>(&ir::node(g, p).attrs[0].value);
  const auto& shape = ir::value(g, v).type.tensor.shape;
  return ref && ref->name.starts_with("CONSTANTS.") && shape && shape->empty();
}

bool is_noop(const ir::Graph& g, ir::NodeId n, bool writes_tensors) {
  const ir::Node& nd = ir::node(g, n);
  if (nd.inputs.empty() || nd.outputs.size() != 1) return false;
  if (is_wrapped_constant(g, nd.inputs[0])) return false;
  if (is_dropout(g, n)) return is_inference_dropout(g, n);
  const std::string_view kind = ir::kind_str(g, n);
  if (kind == "aten::detach" || kind == "prim::unchecked_cast") return true;
  // Only contiguous_format: contiguous(memory_format=channels_last) means a layout kiln's
  // kernels may be asked to honour, and preserve_format is an error in PyTorch.
  if (kind == "aten::contiguous") {
    const Arg a = arg(g, n, 1);
    return !writes_tensors && (a.none || arg_is(a, kContiguousFormat));
  }
  if (kind == "aten::type_as") return keeps_dtype_of_other(g, n, 1);
  if (kind == "aten::to") return to_is_noop(g, n, writes_tensors);
  return false;
}

}  // namespace

std::size_t remove_inference_noops(ir::Graph& g) {
  std::vector<ir::NodeId> nodes;
  bool writes_tensors = false;
  ir::walk(g, [&](ir::NodeId n) {
    nodes.push_back(n);
    writes_tensors = writes_tensors || is_inplace_op(g, n);
  });
  std::size_t removed = 0;
  for (ir::NodeId n : nodes) {
    if (!is_noop(g, n, writes_tensors)) continue;
    // view() needs strides compatible with the new shape, which the contiguous copy
    // guaranteed; without it, the reader must be a reshape (a view when it can be).
    if (ir::is_kind(g, n, "aten::contiguous")) {
      for (const ir::Use& u : ir::uses(g, ir::node(g, n).outputs[0]))
        if (u.node != ir::kNoNode && ir::is_kind(g, u.node, "aten::view") && u.index == 0)
          ir::node(g, u.node).kind = ir::intern(g, "aten::reshape");
    }
    ir::replace_all_uses(g, ir::node(g, n).outputs[0], ir::node(g, n).inputs[0]);
    ir::erase_node(g, n);
    ++removed;
  }
  return removed;
}

}  // namespace kiln::passes
