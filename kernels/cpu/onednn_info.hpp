// What the linked oneDNN library reports about itself.
//
// Asked at run time rather than from headers, because a shared libdnnl can be newer
// than the one kiln was compiled against, and `kiln --version` should say what runs.
#pragma once

#include <optional>
#include <string>

namespace kiln::kernels::cpu {

struct OnednnInfo {
  std::string version;  // "2.6.3"
  std::string runtime;  // CPU threading runtime: "OpenMP", "TBB", "sequential", "threadpool"
};

// Empty when kiln was built without oneDNN.
std::optional<OnednnInfo> onednn_info();

}  // namespace kiln::kernels::cpu
