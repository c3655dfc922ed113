// ZipReader — reads the zip container of a TorchScript archive, safely and without copies.
//
// Parses the end-of-central-directory record (and its ZIP64 locator and record), the central
// directory and each entry's local header. Sizes and CRCs come from the central directory,
// because PyTorch writes data descriptors with zero sizes in local headers. Stored records
// are views into the file's bytes (PyTorch pads them to 64-byte alignment so tensors can be
// used in place); deflated records (code and debug pickles) are inflated on request, bounded
// by their declared size. Every inconsistency (truncation, offsets outside the file,
// overlapping entries, bad signatures, a size that lies) is a kiln::Error naming the file
// and the record.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "format/file_bytes.hpp"

namespace kiln::format {

struct ZipEntry {
  std::string name;                 // full name inside the zip, e.g. "model/data/0"
  std::uint16_t method = 0;         // 0 stored, 8 deflate (others are refused on read)
  std::uint32_t crc32 = 0;          // from the central directory
  std::uint64_t compressed_size = 0;
  std::uint64_t uncompressed_size = 0;
  std::uint64_t local_header_offset = 0;
  std::uint64_t data_offset = 0;    // where the record's (possibly compressed) bytes start
};

struct ZipLimits {
  std::uint64_t max_entries = 1'000'000;
  // Largest record inflate() will produce; a deflate bomb stops here.
  std::uint64_t max_inflated_size = 1ull << 30;
};

class ZipReader {
 public:
  // Parses the directory; throws kiln::Error on any structural problem.
  explicit ZipReader(std::shared_ptr<const FileBytes> file, ZipLimits limits = {});

  const std::vector<ZipEntry>& entries() const { return entries_; }
  // nullptr when absent. Names are compared exactly.
  const ZipEntry* find(std::string_view name) const;

  // A stored record's bytes, viewed in place (no copy). Throws for a compressed record.
  std::span<const std::byte> view(const ZipEntry& entry) const;
  // The record's bytes: inflated for deflate, copied for stored. Checks the inflated size
  // equals the declared one.
  std::vector<std::byte> read(const ZipEntry& entry) const;
  // Recomputes the record's CRC-32 and throws kiln::Error naming it on a mismatch.
  void verify_crc(const ZipEntry& entry) const;

  const std::shared_ptr<const FileBytes>& file() const { return file_; }
  const std::string& source() const { return file_->name(); }

 private:
  std::shared_ptr<const FileBytes> file_;
  ZipLimits limits_;
  std::vector<ZipEntry> entries_;
  // Indices into entries_ sorted by name: find() is then logarithmic, so a loader looking
  // up every record of a many-entry archive stays linearithmic rather than quadratic.
  std::vector<std::size_t> by_name_;
};

// CRC-32 (IEEE 802.3, as zip uses), exposed for tests and tools.
std::uint32_t crc32(std::span<const std::byte> bytes, std::uint32_t crc = 0);

}  // namespace kiln::format
