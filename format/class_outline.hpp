// ClassOutline — what a serialized TorchScript class declares, read without parsing its code.
//
// `kiln inspect` needs each module class's parameter and buffer names and the forward
// signature before (and without) importing the program. This reads just the class headers
// that PyTorch's printer writes (`class X(Module):`, `__parameters__ = [...]`,
// `__buffers__ = [...]`, `def forward(self: ..., a: Tensor) -> T:`); method bodies are left
// to the importer's parser.
#pragma once

#include <string>
#include <vector>

namespace kiln::format {

struct ClassOutline {
  struct Argument {
    std::string name;
    std::string type;  // as written, e.g. "Tensor", "Optional[Tensor]"
  };
  std::string qualified_name;  // "__torch__.torch.nn.modules.linear.Linear"
  std::string base;            // "Module", "NamedTuple", ...
  std::vector<std::string> parameters;
  std::vector<std::string> buffers;
  bool has_forward = false;
  std::vector<Argument> forward_args;  // without self
  std::string forward_returns;         // "" when not annotated
};

// Outlines every top-level class of one code file. `qualifier` is the file's module path
// ("__torch__.torch.nn.modules.linear"); `file` and `record` name it in errors.
std::vector<ClassOutline> outline_classes(const std::string& source, const std::string& qualifier,
                                          const std::string& file, const std::string& record);

}  // namespace kiln::format
