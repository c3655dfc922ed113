// libFuzzer target: the whole TorchScript archive loader over arbitrary bytes.
//
// Archive::from_buffer (zip, version, byteorder, code/, constants.pkl, data.pkl), then
// module_tree() (the object walk, class outlines of code/, every module tensor resolved),
// every tensor constant resolved, and extra_files(). Every tensor view must lie inside the
// input; its first and last bytes are read so ASan checks them.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "format/archive.hpp"
#include "format/module_tree.hpp"
#include "tests/fuzz/fuzz_common.hpp"

using kiln::format::Archive;
using kiln::format::ModuleTensor;
using kiln::format::PickleRef;
using kiln::format::PickleValue;
using kiln::format::TensorData;

namespace {

void check_tensor(const TensorData& d, const std::uint8_t* data, std::size_t size) {
  kiln::fuzz::check_view(d.storage, data, size, "tensor storage outside the input");
  if (d.is_contiguous()) {
    kiln::fuzz::expect_bad_input_only([&] {
      kiln::fuzz::check_view(d.contiguous_bytes(), data, size, "contiguous_bytes() outside the input");
    });
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  std::optional<Archive> archive;
  kiln::fuzz::expect_bad_input_only([&] { archive.emplace(Archive::from_buffer(bytes, "fuzz.pt")); });
  if (!archive) return 0;
  const Archive& a = *archive;

  kiln::fuzz::expect_bad_input_only([&] {
    const kiln::format::ModuleTree tree = kiln::format::module_tree(a);
    for (const ModuleTensor& t : tree.tensors) check_tensor(t.data, data, size);
  });
  for (const PickleRef& c : a.constants()) {
    if (!c || c->kind != PickleValue::Kind::tensor) continue;
    kiln::fuzz::expect_bad_input_only([&] { check_tensor(a.tensor(c->tensor, true), data, size); });
  }
  (void)a.extra_files();
  return 0;
}
