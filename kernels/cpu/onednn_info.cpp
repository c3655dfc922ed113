#include "kernels/cpu/onednn_info.hpp"

#include "kiln_config.h"

#if KILN_HAVE_ONEDNN
#include <oneapi/dnnl/dnnl.h>
#endif

namespace kiln::kernels::cpu {

std::optional<OnednnInfo> onednn_info() {
#if KILN_HAVE_ONEDNN
  const dnnl_version_t* v = dnnl_version();
  OnednnInfo info;
  info.version = std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
  switch (v->cpu_runtime) {
    case DNNL_RUNTIME_OMP: info.runtime = "OpenMP"; break;
    case DNNL_RUNTIME_TBB: info.runtime = "TBB"; break;
    case DNNL_RUNTIME_SEQ: info.runtime = "sequential"; break;
    case DNNL_RUNTIME_THREADPOOL: info.runtime = "threadpool"; break;
    default: info.runtime = "other"; break;
  }
  return info;
#else
  return std::nullopt;
#endif
}

}  // namespace kiln::kernels::cpu
