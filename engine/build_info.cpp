// kiln::build_info() and the C API's kiln_version(): what this copy of kiln is.
#include "kernels/cpu/onednn_info.hpp"
#include "kiln/kiln.h"
#include "kiln/kiln.hpp"
#include "kiln_config.h"

namespace kiln {

BuildInfo build_info() {
  BuildInfo b;
  b.version = KILN_VERSION;
  b.build_type = KILN_BUILD_TYPE;
  b.compiler = KILN_COMPILER;
  b.sanitize = KILN_SANITIZE;
  if (auto dnnl = kernels::cpu::onednn_info()) {
    b.onednn = true;
    b.onednn_version = dnnl->version;
    b.onednn_runtime = dnnl->runtime;
  }
  b.protobuf = KILN_HAVE_PROTOBUF != 0;
  return b;
}

}  // namespace kiln

extern "C" const char* kiln_version(void) { return KILN_VERSION; }
