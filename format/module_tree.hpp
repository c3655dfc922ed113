// ModuleTree — the module object tree of a TorchScript archive, as a user thinks of it.
//
// Walks data.pkl's root object: submodules, parameters and buffers (told apart by each
// class's `__parameters__` / `__buffers__` declarations in code/), and plain attributes.
// Tensor names are dotted paths ("encoder.layer.0.attention.self.query.weight"), the names
// PyTorch's state_dict uses; tied weights appear under every name that refers to them.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "format/archive.hpp"
#include "format/class_outline.hpp"

namespace kiln::format {

struct ModuleTensor {
  std::string name;  // dotted path from the root
  enum class Kind { parameter, buffer, other } kind = Kind::other;
  TensorData data;
};

struct ModuleInfo {
  std::string path;        // "" for the root, else dotted ("encoder.layer.0")
  std::string class_name;  // qualified ("__torch__.torch.nn.modules.linear.Linear")
  bool custom_class = false;  // `__torch__.torch.classes.*`: state kept as raw bytes
};

struct ModuleTree {
  std::vector<ModuleInfo> modules;    // depth-first, root first
  std::vector<ModuleTensor> tensors;  // depth-first, in each object's attribute order
  ClassOutline root_class;            // the root module's outline (forward signature)
  std::vector<std::string> quantized;  // names of quantized tensors
};

// Builds the tree; throws kiln::Error when data.pkl's shape is not a module tree (e.g. an
// object without a dict state) or a tensor's storage is inconsistent.
ModuleTree module_tree(const Archive& archive);

}  // namespace kiln::format
