// libFuzzer target: archive bytes through the importer and the whole pass pipeline.
//
// Archive::from_buffer, import_model (parse every code file, resolve the module tree,
// inline, match every call against the op allowlist) and optimize (functionalize, shape
// inference, folding, DCE, CSE), then the verifier. Seeds are small fixture archives, whose
// code records are stored uncompressed, so mutations reach the source text. Anything but a
// bad_input kiln::Error is a finding; so is a graph the verifier rejects.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "engine/import/importer.hpp"
#include "engine/ir/verify.hpp"
#include "engine/passes/pipeline.hpp"
#include "format/archive.hpp"
#include "tests/fuzz/fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  std::optional<kiln::format::Archive> archive;
  kiln::fuzz::expect_bad_input_only([&] { archive.emplace(kiln::format::Archive::from_buffer(bytes, "fuzz.pt")); });
  if (!archive) return 0;
  kiln::fuzz::expect_bad_input_only([&] {
    kiln::import::ImportOptions options;
    options.max_nodes = std::size_t{1} << 16;  // keeps each run fast; the limit path is covered too
    kiln::import::ImportedModel model = kiln::import::import_model(*archive, options);
    kiln::ir::verify(model.graph);
    kiln::passes::optimize(model);
  });
  return 0;
}
