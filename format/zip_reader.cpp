// ZipReader: the zip container of a TorchScript archive (PKWARE APPNOTE 6.3, single disk,
// stored and deflate records, ZIP64).
//
// The file is untrusted: every offset and size is checked against the bytes present with
// 64-bit arithmetic that cannot wrap, every field is read with memcpy from a span whose
// bounds were checked, and nothing is allocated from a declared size before that size has
// been checked against a limit or against the file.
#include "format/zip_reader.hpp"

#include "format/printable.hpp"

#define ZLIB_CONST  // zlib's next_in then takes const bytes, so the file needs no const_cast
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <tuple>
#include <utility>

#include "kiln/error.hpp"

namespace kiln::format {

namespace {

constexpr std::uint32_t kLocalHeaderSig = 0x04034b50;
constexpr std::uint32_t kCentralHeaderSig = 0x02014b50;
constexpr std::uint32_t kEocdSig = 0x06054b50;
constexpr std::uint32_t kZip64EocdSig = 0x06064b50;
constexpr std::uint32_t kZip64LocatorSig = 0x07064b50;

constexpr std::uint64_t kLocalHeaderSize = 30;
constexpr std::uint64_t kCentralHeaderSize = 46;
constexpr std::uint64_t kEocdSize = 22;
constexpr std::uint64_t kMaxCommentSize = 0xFFFF;
constexpr std::uint64_t kZip64LocatorSize = 20;
constexpr std::uint64_t kZip64EocdSize = 56;  // without its extensible data
// The ZIP64 record's size field counts the bytes after itself (the first 12 excluded).
constexpr std::uint64_t kZip64EocdFixedAfterSize = kZip64EocdSize - 12;

constexpr std::uint16_t kZip64ExtraId = 0x0001;
constexpr std::uint16_t kFlagEncrypted = 1u << 0;
constexpr std::uint16_t kFlagStrongEncryption = 1u << 6;

constexpr std::uint16_t kMethodStored = 0;
constexpr std::uint16_t kMethodDeflate = 8;

constexpr std::uint16_t kMax16 = 0xFFFF;
constexpr std::uint32_t kMax32 = 0xFFFFFFFF;

std::string num(std::uint64_t v) { return std::to_string(v); }

std::string hex(std::uint64_t v, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%0*llx", digits, static_cast<unsigned long long>(v));
  return buf;
}

// Record names come from the file and may hold any byte.
std::string printable(std::string_view s) { return format::printable(s, 200); }

// True when [offset, offset + length) lies inside [0, limit), computed without overflow.
bool fits(std::uint64_t offset, std::uint64_t length, std::uint64_t limit) {
  return offset <= limit && length <= limit - offset;
}

// A little-endian field. Callers check the record's bounds first and report them with the
// record's name; this check only guards against a bug in that reasoning.
std::uint64_t load_le(std::span<const std::byte> bytes, std::uint64_t at, std::size_t width) {
  if (!fits(at, width, bytes.size())) {
    throw Error(ErrorKind::internal, "", "zip reader",
                "field of " + num(width) + " bytes at offset " + num(at) +
                    " read past the end of a " + num(bytes.size()) + "-byte buffer");
  }
  std::array<unsigned char, 8> raw{};
  std::memcpy(raw.data(), bytes.data() + at, width);
  std::uint64_t v = 0;
  for (std::size_t i = width; i-- > 0;) v = (v << 8) | raw[i];
  return v;
}

std::uint16_t le16(std::span<const std::byte> b, std::uint64_t at) {
  return static_cast<std::uint16_t>(load_le(b, at, 2));
}
std::uint32_t le32(std::span<const std::byte> b, std::uint64_t at) {
  return static_cast<std::uint32_t>(load_le(b, at, 4));
}
std::uint64_t le64(std::span<const std::byte> b, std::uint64_t at) { return load_le(b, at, 8); }

std::string_view text_at(std::span<const std::byte> b, std::uint64_t at, std::uint64_t size) {
  if (!fits(at, size, b.size())) {
    throw Error(ErrorKind::internal, "", "zip reader",
                "text of " + num(size) + " bytes at offset " + num(at) +
                    " read past the end of a " + num(b.size()) + "-byte buffer");
  }
  return {reinterpret_cast<const char*>(b.data() + at), static_cast<std::size_t>(size)};
}

struct Directory {
  std::uint64_t count = 0;
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
  // Where the end records (ZIP64 record, locator, classic record) begin.
  std::uint64_t trailer_start = 0;
};

// One pass over the end records, central directory and local headers.
class DirectoryParser {
 public:
  DirectoryParser(const FileBytes& file, const ZipLimits& limits)
      : name_(file.name()), bytes_(file.bytes()), size_(file.bytes().size()), limits_(limits) {}

  std::vector<ZipEntry> parse() {
    const Directory dir = read_end_records();
    check_directory_bounds(dir);
    std::vector<ZipEntry> entries;
    entries.reserve(static_cast<std::size_t>(dir.count));
    std::uint64_t pos = dir.offset;
    const std::uint64_t end = dir.offset + dir.size;
    for (std::uint64_t i = 0; i < dir.count; ++i) entries.push_back(read_central_entry(i, pos, end));
    if (pos != end) {
      fail("central directory",
           num(dir.count) + " entries end at offset " + num(pos) + " but the directory of " +
               num(dir.size) + " bytes runs to offset " + num(end) +
               ": the entry count disagrees with the directory size");
    }
    for (ZipEntry& e : entries) locate_data(e);
    check_overlaps(entries, dir);
    return entries;
  }

 private:
  [[noreturn]] void fail(std::string where, std::string message) const {
    throw Error::bad_input(name_, std::move(where), std::move(message));
  }

  void expect_signature(const std::string& where, std::uint64_t at, std::uint32_t expected,
                        const char* what) const {
    const std::uint32_t got = le32(bytes_, at);
    if (got != expected) {
      fail(where, std::string("bad ") + what + " signature " + hex(got, 8) + " at offset " +
                      num(at) + " (expected " + hex(expected, 8) + ")");
    }
  }

  // The classic end record sits in the last 22 + 65535 bytes (its comment is at most 65535
  // bytes). A candidate counts only if its comment runs exactly to the end of the file, so
  // the signature bytes turning up inside a comment or a record cannot be mistaken for it.
  std::uint64_t find_eocd() const {
    if (size_ < kEocdSize) {
      fail("end of central directory",
           "file of " + num(size_) + " bytes is too short to be a zip archive (the end of "
           "central directory record alone takes " + num(kEocdSize) + ")");
    }
    const std::uint64_t last = size_ - kEocdSize;
    const std::uint64_t lowest = last > kMaxCommentSize ? last - kMaxCommentSize : 0;
    for (std::uint64_t pos = last + 1; pos-- > lowest;) {
      if (bytes_[pos] != std::byte{'P'}) continue;
      if (le32(bytes_, pos) != kEocdSig) continue;
      if (pos + kEocdSize + le16(bytes_, pos + 20) == size_) return pos;
    }
    fail("end of central directory",
         "no end of central directory record in the last " + num(size_ - lowest) +
             " bytes of the file (" + num(size_) + " bytes): not a zip archive, or truncated");
  }

  Directory read_end_records() const {
    const std::uint64_t eocd = find_eocd();
    const std::uint16_t disk = le16(bytes_, eocd + 4);
    const std::uint16_t cd_disk = le16(bytes_, eocd + 6);
    const std::uint16_t count_here = le16(bytes_, eocd + 8);
    const std::uint16_t count = le16(bytes_, eocd + 10);
    const std::uint32_t cd_size = le32(bytes_, eocd + 12);
    const std::uint32_t cd_offset = le32(bytes_, eocd + 16);
    const bool placeholders = disk == kMax16 || cd_disk == kMax16 || count_here == kMax16 ||
                              count == kMax16 || cd_size == kMax32 || cd_offset == kMax32;
    const bool has_locator =
        eocd >= kZip64LocatorSize && le32(bytes_, eocd - kZip64LocatorSize) == kZip64LocatorSig;

    if (!has_locator) {
      if (placeholders) {
        fail("end of central directory",
             "the record at offset " + num(eocd) +
                 " defers to ZIP64 (a field is 0xFFFF or 0xFFFFFFFF) but no ZIP64 end of "
                 "central directory locator precedes it");
      }
      if (disk != 0 || cd_disk != 0 || count_here != count) {
        fail("end of central directory",
             "archive spans several disks (this is disk " + num(disk) + ", the directory starts on disk " +
                 num(cd_disk) + ", " + num(count_here) + " of " + num(count) +
                 " entries are here); only single-file archives are supported");
      }
      return {count, cd_offset, cd_size, eocd};
    }

    const std::uint64_t locator = eocd - kZip64LocatorSize;
    const std::uint32_t z64_disk = le32(bytes_, locator + 4);
    const std::uint64_t z64 = le64(bytes_, locator + 8);
    const std::uint32_t total_disks = le32(bytes_, locator + 16);
    if (z64_disk != 0 || total_disks > 1) {
      fail("zip64 end of central directory locator",
           "archive spans several disks (the ZIP64 record is on disk " + num(z64_disk) + " of " +
               num(total_disks) + "); only single-file archives are supported");
    }
    const std::string where = "zip64 end of central directory";
    if (!fits(z64, kZip64EocdSize, locator)) {
      fail(where, "record of at least " + num(kZip64EocdSize) + " bytes at offset " + num(z64) +
                      " does not end before its locator at offset " + num(locator));
    }
    expect_signature(where, z64, kZip64EocdSig, "ZIP64 end of central directory");
    const std::uint64_t record_size = le64(bytes_, z64 + 4);
    if (record_size < kZip64EocdFixedAfterSize || !fits(z64 + 12, record_size, locator)) {
      fail(where, "record at offset " + num(z64) + " declares " + num(record_size) +
                      " bytes after its size field; that must be at least " +
                      num(kZip64EocdFixedAfterSize) + " and end before the locator at offset " +
                      num(locator));
    }
    const std::uint32_t disk64 = le32(bytes_, z64 + 16);
    const std::uint32_t cd_disk64 = le32(bytes_, z64 + 20);
    const std::uint64_t count_here64 = le64(bytes_, z64 + 24);
    const std::uint64_t count64 = le64(bytes_, z64 + 32);
    const std::uint64_t cd_size64 = le64(bytes_, z64 + 40);
    const std::uint64_t cd_offset64 = le64(bytes_, z64 + 48);
    if (disk64 != 0 || cd_disk64 != 0 || count_here64 != count64 ||
        (disk != 0 && disk != kMax16) || (cd_disk != 0 && cd_disk != kMax16)) {
      fail(where, "archive spans several disks (this is disk " + num(disk64) +
                      ", the directory starts on disk " + num(cd_disk64) + ", " +
                      num(count_here64) + " of " + num(count64) +
                      " entries are here); only single-file archives are supported");
    }
    // Both records are meant to describe one directory; a disagreement means one was
    // edited or damaged, and neither can be trusted over the other.
    auto agree = [&](const char* what, std::uint64_t classic, std::uint64_t placeholder,
                     std::uint64_t wide) {
      if (classic != placeholder && classic != wide) {
        fail(where, std::string("the end of central directory gives ") + what + " " + num(classic) +
                        " but the ZIP64 record gives " + num(wide));
      }
    };
    agree("entry count", count, kMax16, count64);
    agree("entry count on this disk", count_here, kMax16, count_here64);
    agree("directory size", cd_size, kMax32, cd_size64);
    agree("directory offset", cd_offset, kMax32, cd_offset64);
    return {count64, cd_offset64, cd_size64, z64};
  }

  void check_directory_bounds(const Directory& dir) const {
    const std::string where = "central directory";
    if (!fits(dir.offset, dir.size, size_)) {
      fail(where, "directory of " + num(dir.size) + " bytes at offset " + num(dir.offset) +
                      " extends past the end of the file (" + num(size_) + " bytes)");
    }
    // Archives with bytes prepended (self-extractors) shift every offset; kiln never
    // writes or needs those, and a directory that does not end where the end records
    // begin is more often damage than design.
    if (dir.offset + dir.size != dir.trailer_start) {
      fail(where, "directory of " + num(dir.size) + " bytes at offset " + num(dir.offset) +
                      " ends at offset " + num(dir.offset + dir.size) +
                      ", but the end of central directory records begin at offset " +
                      num(dir.trailer_start));
    }
    if (dir.count > limits_.max_entries) {
      fail(where, num(dir.count) + " entries exceed the limit of " + num(limits_.max_entries));
    }
    if (dir.count > dir.size / kCentralHeaderSize) {
      fail(where, num(dir.count) + " entries cannot fit in a directory of " + num(dir.size) +
                      " bytes (each takes at least " + num(kCentralHeaderSize) +
                      "): the entry count disagrees with the directory size");
    }
  }

  // Reads the entry at `pos` and advances `pos` past it.
  ZipEntry read_central_entry(std::uint64_t index, std::uint64_t& pos, std::uint64_t end) const {
    const std::string at_index = "central directory entry " + num(index);
    if (!fits(pos, kCentralHeaderSize, end)) {
      fail(at_index, "entry at offset " + num(pos) + " runs past the end of the central "
                     "directory at offset " + num(end));
    }
    expect_signature(at_index, pos, kCentralHeaderSig, "central directory entry");
    const std::uint16_t flags = le16(bytes_, pos + 8);
    const std::uint16_t method = le16(bytes_, pos + 10);
    const std::uint32_t crc = le32(bytes_, pos + 16);
    const std::uint32_t csize32 = le32(bytes_, pos + 20);
    const std::uint32_t usize32 = le32(bytes_, pos + 24);
    const std::uint16_t name_len = le16(bytes_, pos + 28);
    const std::uint16_t extra_len = le16(bytes_, pos + 30);
    const std::uint16_t comment_len = le16(bytes_, pos + 32);
    const std::uint16_t disk16 = le16(bytes_, pos + 34);
    const std::uint32_t lho32 = le32(bytes_, pos + 42);
    const std::uint64_t variable = std::uint64_t{name_len} + extra_len + comment_len;
    if (!fits(pos + kCentralHeaderSize, variable, end)) {
      fail(at_index, "entry of " + num(kCentralHeaderSize + variable) + " bytes at offset " +
                         num(pos) + " runs past the end of the central directory at offset " +
                         num(end));
    }

    ZipEntry e;
    e.name = std::string(text_at(bytes_, pos + kCentralHeaderSize, name_len));
    if (e.name.empty()) fail(at_index, "entry has an empty name");
    if (auto nul = e.name.find('\0'); nul != std::string::npos) {
      fail(at_index, "name '" + printable(e.name) + "' holds a NUL byte at position " + num(nul));
    }
    const std::string where = printable(e.name);
    if (flags & (kFlagEncrypted | kFlagStrongEncryption)) {
      fail(where, "record is encrypted (general purpose flags " + hex(flags, 4) +
                      "); encrypted archives are not supported");
    }
    e.method = method;
    e.crc32 = crc;
    e.uncompressed_size = usize32;
    e.compressed_size = csize32;
    e.local_header_offset = lho32;
    std::uint64_t disk = disk16;
    apply_zip64_extra(where, pos + kCentralHeaderSize + name_len, extra_len, usize32 == kMax32,
                      csize32 == kMax32, lho32 == kMax32, disk16 == kMax16, e, disk);
    if (disk != 0) {
      fail(where, "record starts on disk " + num(disk) +
                      "; only single-file archives are supported");
    }
    if (method == kMethodStored && e.compressed_size != e.uncompressed_size) {
      fail(where, "stored record declares " + num(e.compressed_size) + " bytes in the file but " +
                      num(e.uncompressed_size) + " uncompressed; stored sizes must be equal");
    }
    pos += kCentralHeaderSize + variable;
    return e;
  }

  // The ZIP64 extended information field carries the 64-bit value of each 32-bit field that
  // holds the placeholder, in a fixed order, and only those: its layout depends on which.
  void apply_zip64_extra(const std::string& where, std::uint64_t start, std::uint64_t length,
                         bool usize_deferred, bool csize_deferred, bool lho_deferred,
                         bool disk_deferred, ZipEntry& e, std::uint64_t& disk) const {
    bool seen = false;
    std::uint64_t at = 0;
    while (at < length) {
      if (length - at < 4) {
        fail(where, "extra data of " + num(length) + " bytes ends with " + num(length - at) +
                        " stray bytes, too few for a field header");
      }
      const std::uint16_t id = le16(bytes_, start + at);
      const std::uint16_t field_size = le16(bytes_, start + at + 2);
      if (field_size > length - at - 4) {
        fail(where, "extra field " + hex(id, 4) + " of " + num(field_size) + " bytes at byte " +
                        num(at) + " runs past the end of the extra data (" + num(length) +
                        " bytes)");
      }
      if (id == kZip64ExtraId) {
        if (seen) fail(where, "entry has two ZIP64 extended information extra fields");
        seen = true;
        const std::uint64_t data = start + at + 4;
        std::uint64_t used = 0;
        auto take = [&](bool deferred, std::size_t width, const char* what, std::uint64_t& into) {
          if (!deferred) return;
          if (field_size - used < width) {
            fail(where, std::string("ZIP64 extra field of ") + num(field_size) +
                            " bytes lacks the " + what + " that the directory entry defers to it");
          }
          into = load_le(bytes_, data + used, width);
          used += width;
        };
        take(usize_deferred, 8, "uncompressed size", e.uncompressed_size);
        take(csize_deferred, 8, "compressed size", e.compressed_size);
        take(lho_deferred, 8, "local header offset", e.local_header_offset);
        take(disk_deferred, 4, "starting disk number", disk);
      }
      at += 4 + std::uint64_t{field_size};
    }
    if (!seen && (usize_deferred || csize_deferred || lho_deferred || disk_deferred)) {
      fail(where, "entry defers a size, offset or disk number to ZIP64 (the field is 0xFFFF or "
                  "0xFFFFFFFF) but has no ZIP64 extended information extra field");
    }
  }

  // The local header's name and extra lengths differ from the directory's (PyTorch pads
  // the local extra so data starts 64-byte aligned); its sizes are zero when a data
  // descriptor follows, so only its lengths are used.
  void locate_data(ZipEntry& e) const {
    const std::string where = printable(e.name);
    const std::uint64_t lho = e.local_header_offset;
    if (!fits(lho, kLocalHeaderSize, size_)) {
      fail(where, "local header of " + num(kLocalHeaderSize) + " bytes at offset " + num(lho) +
                      " extends past the end of the file (" + num(size_) + " bytes)");
    }
    expect_signature(where, lho, kLocalHeaderSig, "local header");
    const std::uint16_t name_len = le16(bytes_, lho + 26);
    const std::uint16_t extra_len = le16(bytes_, lho + 28);
    const std::uint64_t variable = std::uint64_t{name_len} + extra_len;
    if (!fits(lho + kLocalHeaderSize, variable, size_)) {
      fail(where, "local header of " + num(kLocalHeaderSize + variable) + " bytes at offset " +
                      num(lho) + " extends past the end of the file (" + num(size_) + " bytes)");
    }
    const std::string_view local_name = text_at(bytes_, lho + kLocalHeaderSize, name_len);
    if (local_name != e.name) {
      fail(where, "local header at offset " + num(lho) + " names the record '" +
                      printable(local_name) + "' instead");
    }
    e.data_offset = lho + kLocalHeaderSize + variable;
    if (!fits(e.data_offset, e.compressed_size, size_)) {
      fail(where, "record of " + num(e.compressed_size) + " bytes at offset " + num(e.data_offset) +
                      " extends past the end of the file (" + num(size_) + " bytes)");
    }
  }

  // A record that shares bytes with another or with the directory is how zip bombs get
  // their leverage and how a crafted archive shows different contents to different readers.
  void check_overlaps(const std::vector<ZipEntry>& entries, const Directory& dir) const {
    struct Span {
      std::uint64_t begin, end;
      std::size_t owner;  // an index into entries, or one of the two below
    };
    constexpr std::size_t kDirectory = std::numeric_limits<std::size_t>::max();
    constexpr std::size_t kTrailer = kDirectory - 1;
    std::vector<Span> spans;
    spans.reserve(entries.size() + 2);
    for (std::size_t i = 0; i < entries.size(); ++i) {
      const ZipEntry& e = entries[i];
      spans.push_back({e.local_header_offset, e.data_offset + e.compressed_size, i});
    }
    if (dir.size > 0) spans.push_back({dir.offset, dir.offset + dir.size, kDirectory});
    spans.push_back({dir.trailer_start, size_, kTrailer});
    std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
      return std::tie(a.begin, a.end, a.owner) < std::tie(b.begin, b.end, b.owner);
    });
    auto describe = [&](const Span& s) {
      std::string range = "[" + num(s.begin) + ", " + num(s.end) + ")";
      if (s.owner == kDirectory) return "the central directory at " + range;
      if (s.owner == kTrailer) return "the end of central directory records at " + range;
      return "record '" + printable(entries[s.owner].name) + "' at " + range;
    };
    // Sorted by start, any overlap shows up between neighbours.
    for (std::size_t i = 1; i < spans.size(); ++i) {
      const Span& a = spans[i - 1];
      const Span& b = spans[i];
      if (b.begin >= a.end) continue;
      // The directory and end records were placed back to back above, so one is an entry.
      const Span& entry = b.owner < kTrailer ? b : a;
      const Span& other = b.owner < kTrailer ? a : b;
      fail(printable(entries[entry.owner].name),
           "local header and data at [" + num(entry.begin) + ", " + num(entry.end) +
               ") overlap " + describe(other));
    }
  }

  const std::string& name_;
  std::span<const std::byte> bytes_;
  std::uint64_t size_;
  const ZipLimits& limits_;
};

// Frees zlib's state on every way out of inflate_record.
struct InflateGuard {
  z_stream* stream;
  ~InflateGuard() { inflateEnd(stream); }
};

}  // namespace

ZipReader::ZipReader(std::shared_ptr<const FileBytes> file, ZipLimits limits)
    : file_(std::move(file)), limits_(limits) {
  if (!file_) throw Error(ErrorKind::usage, "", "", "ZipReader needs a file, got null");
  entries_ = DirectoryParser(*file_, limits_).parse();
  by_name_.resize(entries_.size());
  for (std::size_t i = 0; i < by_name_.size(); ++i) by_name_[i] = i;
  std::sort(by_name_.begin(), by_name_.end(), [&](std::size_t a, std::size_t b) {
    return std::tie(entries_[a].name, a) < std::tie(entries_[b].name, b);
  });
  // Two records with one name would let different readers pick different contents.
  for (std::size_t i = 1; i < by_name_.size(); ++i) {
    const ZipEntry& a = entries_[by_name_[i - 1]];
    const ZipEntry& b = entries_[by_name_[i]];
    if (a.name == b.name) {
      throw Error::bad_input(source(), printable(a.name),
                             "the archive holds two records with this name (central directory "
                             "entries " + num(by_name_[i - 1]) + " and " + num(by_name_[i]) + ")");
    }
  }
}

const ZipEntry* ZipReader::find(std::string_view name) const {
  auto it = std::lower_bound(by_name_.begin(), by_name_.end(), name,
                             [&](std::size_t i, std::string_view n) { return entries_[i].name < n; });
  if (it == by_name_.end() || entries_[*it].name != name) return nullptr;
  return &entries_[*it];
}

namespace {

// Entries are plain structs a caller can copy or build; one that does not describe bytes
// of this file is the caller's mistake, and must not become an out-of-bounds read.
std::span<const std::byte> record_bytes(const FileBytes& file, const ZipEntry& entry) {
  const auto bytes = file.bytes();
  if (!fits(entry.data_offset, entry.compressed_size, bytes.size())) {
    throw Error(ErrorKind::usage, file.name(), printable(entry.name),
                "entry's " + num(entry.compressed_size) + " bytes at offset " +
                    num(entry.data_offset) + " are not inside this file (" + num(bytes.size()) +
                    " bytes); was it taken from another archive?");
  }
  return bytes.subspan(static_cast<std::size_t>(entry.data_offset),
                       static_cast<std::size_t>(entry.compressed_size));
}

std::vector<std::byte> inflate_record(const std::string& source, const ZipEntry& entry,
                                      std::span<const std::byte> in, const ZipLimits& limits) {
  const std::string where = printable(entry.name);
  const std::uint64_t declared = entry.uncompressed_size;
  if (declared > limits.max_inflated_size) {
    throw Error::bad_input(source, where,
                           "declared uncompressed size of " + num(declared) +
                               " bytes exceeds the limit of " + num(limits.max_inflated_size) +
                               " bytes for an inflated record");
  }
  if constexpr (sizeof(std::size_t) < sizeof(std::uint64_t)) {
    if (declared > SIZE_MAX) {
      throw Error::bad_input(source, where, "declared uncompressed size of " + num(declared) +
                                                " bytes does not fit in memory");
    }
  }
  std::vector<std::byte> out(static_cast<std::size_t>(declared));

  z_stream zs{};
  // Negative window bits: zip holds raw deflate, without zlib's header and checksum.
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) {
    throw Error(ErrorKind::internal, source, where, "zlib could not start inflating");
  }
  InflateGuard guard{&zs};

  // zlib counts in uInt; records past 4 GiB are fed and drained in pieces.
  constexpr std::uint64_t kPiece = std::numeric_limits<uInt>::max();
  std::uint64_t in_fed = 0;
  std::uint64_t out_given = 0;
  unsigned char probe = 0;
  bool probing = false;
  for (;;) {
    if (zs.avail_in == 0 && in_fed < in.size()) {
      const std::uint64_t piece = std::min<std::uint64_t>(in.size() - in_fed, kPiece);
      zs.next_in = reinterpret_cast<const Bytef*>(in.data() + in_fed);
      zs.avail_in = static_cast<uInt>(piece);
      in_fed += piece;
    }
    if (zs.avail_out == 0) {
      if (out_given < declared) {
        const std::uint64_t piece = std::min<std::uint64_t>(declared - out_given, kPiece);
        zs.next_out = reinterpret_cast<Bytef*>(out.data() + out_given);
        zs.avail_out = static_cast<uInt>(piece);
        out_given += piece;
      } else {
        // The declared size is produced; one spare byte tells whether the stream agrees
        // or would go on (a size that lies).
        zs.next_out = &probe;
        zs.avail_out = 1;
        probing = true;
      }
    }
    const int rc = inflate(&zs, Z_NO_FLUSH);
    const std::uint64_t produced = out_given - (probing ? 0 : zs.avail_out);
    if (probing && zs.avail_out == 0) {
      throw Error::bad_input(source, where,
                             "deflate stream inflates to more than the declared " + num(declared) +
                                 " bytes");
    }
    if (rc == Z_OK) continue;
    if (rc == Z_STREAM_END) {
      if (produced != declared) {
        throw Error::bad_input(source, where,
                               "deflate stream ends after " + num(produced) +
                                   " bytes, short of the declared " + num(declared));
      }
      const std::uint64_t consumed = in_fed - zs.avail_in;
      if (consumed != in.size()) {
        throw Error::bad_input(source, where,
                               "deflate stream ends after " + num(consumed) + " of the record's " +
                                   num(in.size()) + " compressed bytes");
      }
      return out;
    }
    if (rc == Z_BUF_ERROR) {
      // Output space is always offered, so no progress means the input ran out.
      throw Error::bad_input(source, where,
                             "compressed data (" + num(in.size()) +
                                 " bytes) ends before its deflate stream does, after " +
                                 num(produced) + " of the declared " + num(declared) + " bytes");
    }
    throw Error::bad_input(source, where,
                           std::string("corrupt deflate stream after ") + num(produced) +
                               " bytes of output (zlib: " +
                               (zs.msg ? std::string(zs.msg) : "error " + std::to_string(rc)) + ")");
  }
}

}  // namespace

std::span<const std::byte> ZipReader::view(const ZipEntry& entry) const {
  if (entry.method != kMethodStored) {
    throw Error::bad_input(source(), printable(entry.name),
                           "record is compressed (method " + num(entry.method) +
                               ") and cannot be viewed in place; only stored records can");
  }
  if (entry.compressed_size != entry.uncompressed_size) {
    throw Error(ErrorKind::usage, source(), printable(entry.name),
                "stored entry's sizes differ (" + num(entry.compressed_size) + " and " +
                    num(entry.uncompressed_size) + "); was it taken from another archive?");
  }
  return record_bytes(*file_, entry);
}

std::vector<std::byte> ZipReader::read(const ZipEntry& entry) const {
  switch (entry.method) {
    case kMethodStored: {
      const auto bytes = view(entry);
      return {bytes.begin(), bytes.end()};
    }
    case kMethodDeflate:
      return inflate_record(source(), entry, record_bytes(*file_, entry), limits_);
    default:
      throw Error::bad_input(source(), printable(entry.name),
                             "unsupported compression method " + num(entry.method) +
                                 " (only 0, stored, and 8, deflate, are supported)");
  }
}

void ZipReader::verify_crc(const ZipEntry& entry) const {
  const std::uint32_t actual =
      entry.method == kMethodStored ? crc32(view(entry)) : crc32(read(entry));
  if (actual != entry.crc32) {
    throw Error::bad_input(source(), printable(entry.name),
                           "CRC-32 mismatch: the central directory says " + hex(entry.crc32, 8) +
                               " but the record's bytes give " + hex(actual, 8));
  }
}

std::uint32_t crc32(std::span<const std::byte> bytes, std::uint32_t crc) {
  constexpr std::size_t kPiece = std::size_t{1} << 30;  // zlib counts in uInt
  uLong c = crc;
  while (!bytes.empty()) {
    const std::size_t piece = std::min(bytes.size(), kPiece);
    c = ::crc32(c, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(piece));
    bytes = bytes.subspan(piece);
  }
  return static_cast<std::uint32_t>(c);
}

}  // namespace kiln::format
