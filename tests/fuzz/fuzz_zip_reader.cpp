// libFuzzer target: ZipReader over arbitrary bytes.
//
// Parses the directory, then for every entry: find() by name, view() of stored records
// (which must lie inside the input), read() (inflating deflate records, bounded by a small
// ZipLimits so one input cannot stall the run) and verify_crc(), each on its own so a bad
// record does not hide the later ones.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "format/file_bytes.hpp"
#include "format/zip_reader.hpp"
#include "tests/fuzz/fuzz_common.hpp"

using kiln::format::FileBytes;
using kiln::format::ZipEntry;
using kiln::format::ZipLimits;
using kiln::format::ZipReader;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  ZipLimits limits;
  limits.max_entries = 1 << 16;
  limits.max_inflated_size = 16u << 20;

  std::unique_ptr<ZipReader> zip;
  kiln::fuzz::expect_bad_input_only(
      [&] { zip = std::make_unique<ZipReader>(FileBytes::borrow(bytes, "fuzz.zip"), limits); });
  if (!zip) return 0;

  for (const ZipEntry& e : zip->entries()) {
    const ZipEntry* found = zip->find(e.name);
    if (!found || found->name != e.name) kiln::fuzz::finding("find() misses a listed entry");

    std::optional<std::span<const std::byte>> view;
    kiln::fuzz::expect_bad_input_only([&] {
      view = zip->view(e);
      kiln::fuzz::check_view(*view, data, size, "view() outside the input");
      if (view->size() != e.uncompressed_size) kiln::fuzz::finding("view() size is not the declared size");
    });
    kiln::fuzz::expect_bad_input_only([&] {
      const std::vector<std::byte> content = zip->read(e);
      if (content.size() != e.uncompressed_size) kiln::fuzz::finding("read() size is not the declared size");
      if (view && (view->size() != content.size() ||
                   (!content.empty() && std::memcmp(view->data(), content.data(), content.size()) != 0))) {
        kiln::fuzz::finding("read() of a stored record differs from view()");
      }
    });
    kiln::fuzz::expect_bad_input_only([&] { zip->verify_crc(e); });
  }
  return 0;
}
