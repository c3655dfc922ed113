// kiln — run TorchScript models traced from Hugging Face BERT-family models, without PyTorch.
//
// This is the public C++ API. Today it exposes the error and dtype types and what the
// library was built with; loading and running models arrive with the engine.
//
//   kiln::BuildInfo b = kiln::build_info();
//   std::printf("kiln %s (oneDNN %s)\n", b.version.c_str(), b.onednn ? "on" : "off");
#pragma once

#include <string>

#include "kiln/dtype.hpp"
#include "kiln/error.hpp"

namespace kiln {

// How this copy of kiln was built; printed by `kiln --version`.
struct BuildInfo {
  std::string version;         // "0.1.0"
  std::string build_type;      // meson buildtype: "release", "debug", ...
  std::string compiler;        // "gcc 12.2.0"
  std::string sanitize;        // "none" or e.g. "address,undefined"
  bool onednn = false;         // linked against oneDNN
  std::string onednn_version;  // "2.6.3" as reported by the linked library, when onednn
  std::string onednn_runtime;  // "OpenMP", "sequential", ... when onednn
  bool protobuf = false;       // ONNX I/O available
};

BuildInfo build_info();

}  // namespace kiln
