// Tests of format/zip_reader.cpp and format/file_bytes.cpp: the real archives PyTorch
// wrote, and archives made or damaged here to exercise every refusal.
#include "format/zip_reader.hpp"

#include <doctest/doctest.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "format/file_bytes.hpp"
#include "kiln/error.hpp"
#include "tests/support/bytes.hpp"
#include "tests/support/fixtures.hpp"

namespace {

namespace fs = std::filesystem;
using kiln::Error;
using kiln::format::FileBytes;
using kiln::format::ZipEntry;
using kiln::format::ZipLimits;
using kiln::format::ZipReader;
using Bytes = std::vector<std::byte>;

// ---------------------------------------------------------------------------------------
// Small helpers

using kiln::testing::bytes_of;

std::string text_of(std::span<const std::byte> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

std::string hex32(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

std::uint64_t get_le(std::span<const std::byte> b, std::uint64_t at, int width) {
  REQUIRE(at + static_cast<std::uint64_t>(width) <= b.size());
  std::uint64_t v = 0;
  for (int i = width - 1; i >= 0; --i) v = (v << 8) | std::to_integer<std::uint64_t>(b[at + i]);
  return v;
}
std::uint16_t get16(std::span<const std::byte> b, std::uint64_t at) {
  return static_cast<std::uint16_t>(get_le(b, at, 2));
}
std::uint32_t get32(std::span<const std::byte> b, std::uint64_t at) {
  return static_cast<std::uint32_t>(get_le(b, at, 4));
}
std::uint64_t get64(std::span<const std::byte> b, std::uint64_t at) { return get_le(b, at, 8); }

void put_le(Bytes& b, std::uint64_t at, std::uint64_t v, int width) {
  REQUIRE(at + static_cast<std::uint64_t>(width) <= b.size());
  for (int i = 0; i < width; ++i) b[at + i] = std::byte(static_cast<unsigned char>(v >> (8 * i)));
}
void put16(Bytes& b, std::uint64_t at, std::uint64_t v) { put_le(b, at, v, 2); }
void put32(Bytes& b, std::uint64_t at, std::uint64_t v) { put_le(b, at, v, 4); }
void put64(Bytes& b, std::uint64_t at, std::uint64_t v) { put_le(b, at, v, 8); }

void append_le(Bytes& b, std::uint64_t v, int width) {
  for (int i = 0; i < width; ++i) b.push_back(std::byte(static_cast<unsigned char>(v >> (8 * i))));
}
void append(Bytes& b, std::span<const std::byte> more) { b.insert(b.end(), more.begin(), more.end()); }
void append(Bytes& b, std::string_view s) { append(b, bytes_of(s)); }

Bytes slurp(const fs::path& path) {
  Bytes b = kiln::testing::read_file_bytes(path);
  REQUIRE(!b.empty());
  return b;
}

ZipReader open_bytes(std::span<const std::byte> b, ZipLimits limits = {}) {
  return ZipReader(FileBytes::borrow(b, "test.zip"), limits);
}

// The kiln::Error that f throws; anything else (or nothing) fails the test.
template <class F>
Error error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e;
  }
  FAIL("expected a kiln::Error, but nothing was thrown");
  return Error::bad_input("", "", "");
}

// Checks that f throws a bad-input kiln::Error at `where` whose message holds `message`.
template <class F>
void check_refused(F&& f, std::string_view where, std::string_view message) {
  const Error e = error_of(f);
  INFO("what(): " << e.what());
  CHECK(e.kind() == kiln::ErrorKind::bad_input);
  CHECK(e.file() == "test.zip");
  CHECK(e.where() == where);
  CHECK(contains(e.message(), message));
}

Bytes raw_deflate(std::span<const std::byte> in) {
  z_stream zs{};
  REQUIRE(deflateInit2(&zs, 9, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  Bytes out(deflateBound(&zs, static_cast<uLong>(in.size())));
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);
  const auto produced = zs.total_out;
  deflateEnd(&zs);
  REQUIRE(rc == Z_STREAM_END);
  out.resize(produced);
  return out;
}

// ---------------------------------------------------------------------------------------
// A little zip writer, so that tests can make exactly the archive they need and know
// where every structure landed.

struct TestRecord {
  std::string name;
  Bytes data;  // as it lies in the file: already deflated for method 8
  std::uint16_t method = 0;
  std::uint32_t crc = 0;
  std::uint64_t usize = 0;
  std::uint16_t flags = 0;
};

TestRecord stored(std::string name, std::string_view content) {
  Bytes data = bytes_of(content);
  return {std::move(name), data, 0, kiln::format::crc32(data), data.size(), 0};
}

TestRecord deflated(std::string name, std::span<const std::byte> content) {
  return {std::move(name), raw_deflate(content), 8, kiln::format::crc32(content), content.size(), 0};
}

constexpr unsigned kDeferUsize = 1, kDeferCsize = 2, kDeferOffset = 4;

struct WriteOptions {
  bool zip64 = false;             // write the ZIP64 end record and locator, as PyTorch does
  bool eocd_placeholders = false; // classic end record defers everything to ZIP64
  unsigned defer = 0;             // central fields written as 0xFFFFFFFF ...
  std::optional<unsigned> extra = {};  // ... and those in the ZIP64 extra field (default: defer)
  bool align64 = false;           // pad local headers like PyTorch so data is 64-byte aligned
  std::string comment = {};
};

struct TestZip {
  Bytes bytes;
  std::vector<std::uint64_t> local;    // offset of each local header
  std::vector<std::uint64_t> central;  // offset of each central directory entry
  std::uint64_t cd_offset = 0;
  std::uint64_t eocd = 0;
  std::uint64_t zip64_eocd = 0;
};

TestZip write_zip(const std::vector<TestRecord>& records, const WriteOptions& opt = {}) {
  TestZip z;
  Bytes& b = z.bytes;
  for (const TestRecord& r : records) {
    z.local.push_back(b.size());
    append_le(b, 0x04034b50, 4);
    append_le(b, 20, 2);
    append_le(b, r.flags, 2);
    append_le(b, r.method, 2);
    append_le(b, 0, 4);  // time, date
    append_le(b, r.crc, 4);
    append_le(b, r.data.size(), 4);
    append_le(b, r.usize, 4);
    append_le(b, r.name.size(), 2);
    std::size_t pad = 0;
    if (opt.align64) {
      const std::size_t unpadded = b.size() + 2 + r.name.size() + 4;
      pad = (64 - unpadded % 64) % 64;
    }
    append_le(b, opt.align64 ? 4 + pad : 0, 2);
    append(b, r.name);
    if (opt.align64) {
      append(b, "FB");
      append_le(b, pad, 2);
      append(b, std::string(pad, 'Z'));
    }
    append(b, r.data);
  }
  z.cd_offset = b.size();
  const unsigned extra = opt.extra.value_or(opt.defer);
  for (std::size_t i = 0; i < records.size(); ++i) {
    const TestRecord& r = records[i];
    z.central.push_back(b.size());
    Bytes x;
    if (extra != 0) {
      append_le(x, 0x0001, 2);
      const int n = ((extra & kDeferUsize) ? 8 : 0) + ((extra & kDeferCsize) ? 8 : 0) +
                    ((extra & kDeferOffset) ? 8 : 0);
      append_le(x, n, 2);
      if (extra & kDeferUsize) append_le(x, r.usize, 8);
      if (extra & kDeferCsize) append_le(x, r.data.size(), 8);
      if (extra & kDeferOffset) append_le(x, z.local[i], 8);
    }
    append_le(b, 0x02014b50, 4);
    append_le(b, 45, 2);
    append_le(b, 45, 2);
    append_le(b, r.flags, 2);
    append_le(b, r.method, 2);
    append_le(b, 0, 4);
    append_le(b, r.crc, 4);
    append_le(b, (opt.defer & kDeferCsize) ? 0xFFFFFFFF : r.data.size(), 4);
    append_le(b, (opt.defer & kDeferUsize) ? 0xFFFFFFFF : r.usize, 4);
    append_le(b, r.name.size(), 2);
    append_le(b, x.size(), 2);
    append_le(b, 0, 2);  // comment
    append_le(b, 0, 2);  // disk
    append_le(b, 0, 2);  // internal attributes
    append_le(b, 0, 4);  // external attributes
    append_le(b, (opt.defer & kDeferOffset) ? 0xFFFFFFFF : z.local[i], 4);
    append(b, r.name);
    append(b, x);
  }
  const std::uint64_t cd_size = b.size() - z.cd_offset;
  if (opt.zip64) {
    z.zip64_eocd = b.size();
    append_le(b, 0x06064b50, 4);
    append_le(b, 44, 8);
    append_le(b, 45, 2);
    append_le(b, 45, 2);
    append_le(b, 0, 4);
    append_le(b, 0, 4);
    append_le(b, records.size(), 8);
    append_le(b, records.size(), 8);
    append_le(b, cd_size, 8);
    append_le(b, z.cd_offset, 8);
    append_le(b, 0x07064b50, 4);
    append_le(b, 0, 4);
    append_le(b, z.zip64_eocd, 8);
    append_le(b, 1, 4);
  }
  z.eocd = b.size();
  const bool ph = opt.eocd_placeholders;
  append_le(b, 0x06054b50, 4);
  append_le(b, 0, 4);  // disks
  append_le(b, ph ? 0xFFFF : records.size(), 2);
  append_le(b, ph ? 0xFFFF : records.size(), 2);
  append_le(b, ph ? 0xFFFFFFFF : cd_size, 4);
  append_le(b, ph ? 0xFFFFFFFF : z.cd_offset, 4);
  append_le(b, opt.comment.size(), 2);
  append(b, opt.comment);
  return z;
}

std::vector<TestRecord> two_records() { return {stored("a", "alpha bytes"), stored("b", "bravo")}; }

// ---------------------------------------------------------------------------------------
// Fixture archives

std::vector<fs::path> fixture_archives() {
  std::vector<fs::path> out;
  const fs::path root = kiln::testing::fixtures_root();
  for (const auto& gen : fs::directory_iterator(root)) {
    if (!gen.is_directory()) continue;
    for (const auto& model : fs::directory_iterator(gen.path())) {
      if (!model.is_directory()) continue;
      for (const auto& file : fs::directory_iterator(model.path())) {
        if (file.is_regular_file() && file.path().extension() == ".pt") out.push_back(file.path());
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

fs::path smallest_archive() {
  const auto all = fixture_archives();
  REQUIRE(!all.empty());
  return *std::min_element(all.begin(), all.end(), [](const fs::path& a, const fs::path& b) {
    return fs::file_size(a) < fs::file_size(b);
  });
}

fs::path largest_archive() {
  const auto all = fixture_archives();
  REQUIRE(!all.empty());
  return *std::max_element(all.begin(), all.end(), [](const fs::path& a, const fs::path& b) {
    return fs::file_size(a) < fs::file_size(b);
  });
}

// Where each signature of a PyTorch archive (no comment, ZIP64 end records) lies, found
// by walking the raw bytes rather than through the reader under test.
struct Signatures {
  std::uint64_t eocd = 0, locator = 0, zip64_eocd = 0;
  std::vector<std::uint64_t> central;
};

Signatures signatures_of(std::span<const std::byte> b) {
  Signatures s;
  REQUIRE(b.size() >= 98);
  s.eocd = b.size() - 22;
  REQUIRE(get32(b, s.eocd) == 0x06054b50);
  s.locator = s.eocd - 20;
  REQUIRE(get32(b, s.locator) == 0x07064b50);
  s.zip64_eocd = get64(b, s.locator + 8);
  REQUIRE(get32(b, s.zip64_eocd) == 0x06064b50);
  std::uint64_t pos = get64(b, s.zip64_eocd + 48);
  const std::uint64_t count = get64(b, s.zip64_eocd + 32);
  for (std::uint64_t i = 0; i < count; ++i) {
    REQUIRE(get32(b, pos) == 0x02014b50);
    s.central.push_back(pos);
    pos += 46 + get16(b, pos + 28) + get16(b, pos + 30) + get16(b, pos + 32);
  }
  return s;
}

bool same_entry(const ZipEntry& a, const ZipEntry& b) {
  return a.name == b.name && a.method == b.method && a.crc32 == b.crc32 &&
         a.compressed_size == b.compressed_size && a.uncompressed_size == b.uncompressed_size &&
         a.local_header_offset == b.local_header_offset && a.data_offset == b.data_offset;
}

TEST_CASE("zip: fixture archives hold the records PyTorch writes") {
  const auto archives = fixture_archives();
  CHECK(!archives.empty());
  for (const fs::path& path : archives) {
    INFO("archive: " << path.string());
    ZipReader zip(FileBytes::map(path.string()));
    const auto bytes = zip.file()->bytes();
    const std::string stem = path.stem().string();
    std::set<std::string> names;
    for (const ZipEntry& e : zip.entries()) {
      INFO("record: " << e.name);
      names.insert(e.name);
      CHECK(e.name.rfind(stem + "/", 0) == 0);
      // Cross-check against the raw bytes: a local header for this very name is there.
      CHECK(get32(bytes, e.local_header_offset) == 0x04034b50);
      CHECK(text_of(bytes.subspan(e.local_header_offset + 30, e.name.size())) == e.name);
      CHECK(zip.find(e.name) == &e);
    }
    CHECK(names.size() == zip.entries().size());
    // The classic end record's count (PyTorch writes real values there too) agrees.
    CHECK(zip.entries().size() == get16(bytes, bytes.size() - 22 + 10));
    CHECK(names.count(stem + "/data.pkl") == 1);
    CHECK(names.count(stem + "/constants.pkl") == 1);
    CHECK(names.count(stem + "/.data/version") + names.count(stem + "/version") == 1);
    CHECK(zip.find(stem) == nullptr);
    CHECK(zip.find(stem + "/data.pk") == nullptr);
    CHECK(zip.find(stem + "/data.pkl ") == nullptr);

    // Sizes are right if the pickle ends exactly at its STOP opcode.
    const auto pkl = zip.read(*zip.find(stem + "/data.pkl"));
    REQUIRE(pkl.size() >= 2);
    CHECK(pkl.front() == std::byte{0x80});  // PROTO
    CHECK(pkl.back() == std::byte{'.'});    // STOP
    const ZipEntry* version = zip.find(stem + "/.data/version");
    if (version == nullptr) version = zip.find(stem + "/version");
    REQUIRE(version != nullptr);
    const std::string v = text_of(zip.read(*version));
    CHECK(!v.empty());
    CHECK(v.find_first_not_of("0123456789\n") == std::string::npos);
  }
}

TEST_CASE("zip: every fixture record reads back at its declared size and CRC") {
  const auto archives = fixture_archives();
  CHECK(!archives.empty());
  for (const fs::path& path : archives) {
    INFO("archive: " << path.string());
    ZipReader zip(FileBytes::map(path.string()));
    const auto file = zip.file()->bytes();
    std::size_t deflated_count = 0;
    for (const ZipEntry& e : zip.entries()) {
      INFO("record: " << e.name);
      REQUIRE((e.method == 0 || e.method == 8));
      const auto data = zip.read(e);
      CHECK(data.size() == e.uncompressed_size);
      CHECK(kiln::format::crc32(data) == e.crc32);
      CHECK_NOTHROW(zip.verify_crc(e));
      if (e.method == 0) {
        CHECK(e.data_offset % 64 == 0);
        const auto view = zip.view(e);
        CHECK(view.size() == e.uncompressed_size);
        CHECK(view.data() == file.data() + e.data_offset);
        CHECK(view.data() + view.size() <= file.data() + file.size());
        CHECK(std::equal(view.begin(), view.end(), data.begin(), data.end()));
      } else {
        ++deflated_count;
        const Error err = error_of([&] { (void)zip.view(e); });
        CHECK(contains(err.message(), "cannot be viewed in place"));
      }
    }
    // Code and debug pickles are deflated, so inflate is exercised on every archive.
    CHECK(deflated_count > 0);
  }
}

TEST_CASE("zip: map, read and borrow see the same archive") {
  const auto archives = fixture_archives();
  CHECK(!archives.empty());
  for (const fs::path& path : archives) {
    INFO("archive: " << path.string());
    const Bytes raw = slurp(path);
    const auto mapped = FileBytes::map(path.string());
    const auto read = FileBytes::read(path.string());
    const auto borrowed = FileBytes::borrow(raw, path.string());
    CHECK(mapped->name() == path.string());
    CHECK(read->name() == path.string());
    CHECK(borrowed->bytes().data() == raw.data());
    CHECK(std::ranges::equal(mapped->bytes(), raw));
    CHECK(std::ranges::equal(read->bytes(), raw));
    ZipReader a(mapped), b(read), c(borrowed);
    REQUIRE(a.entries().size() == b.entries().size());
    REQUIRE(a.entries().size() == c.entries().size());
    for (std::size_t i = 0; i < a.entries().size(); ++i) {
      INFO("record: " << a.entries()[i].name);
      CHECK(same_entry(a.entries()[i], b.entries()[i]));
      CHECK(same_entry(a.entries()[i], c.entries()[i]));
      const auto x = a.read(a.entries()[i]);
      CHECK(x == b.read(b.entries()[i]));
      CHECK(x == c.read(c.entries()[i]));
    }
  }
}

// Every prefix must be refused cleanly: no prefix of a PyTorch archive is itself a
// well-formed archive, since the end record has to sit exactly at the end.
void check_truncations(const Bytes& full, const std::vector<std::size_t>& lengths) {
  std::size_t refused = 0;
  std::optional<std::size_t> accepted;
  for (std::size_t len : lengths) {
    try {
      ZipReader zip(FileBytes::borrow(std::span(full).first(len), "truncated.pt"));
      if (!accepted) accepted = len;
    } catch (const Error& e) {
      ++refused;
      if (e.where().empty() || e.message().empty() || e.file() != "truncated.pt") {
        FAIL("error without a location or message at length " << len << ": " << e.what());
      }
    }
  }
  INFO("first accepted truncation: " << (accepted ? std::to_string(*accepted) : "none"));
  CHECK(refused == lengths.size());
}

TEST_CASE("zip: truncation at every offset of the smallest fixture is refused") {
  const Bytes full = slurp(smallest_archive());
  std::vector<std::size_t> lengths(full.size());
  for (std::size_t i = 0; i < full.size(); ++i) lengths[i] = i;
  check_truncations(full, lengths);
  CHECK_NOTHROW(open_bytes(full));
}

TEST_CASE("zip: truncation of the largest fixture is refused (last 4 KiB, 4000 points before)") {
  const Bytes full = slurp(largest_archive());
  std::vector<std::size_t> lengths;
  const std::size_t tail = full.size() > 4096 ? full.size() - 4096 : 0;
  // A fixed number of points, so an on-demand BERT-base fixture (438 MB) costs no more than
  // a tiny one; the step is odd so points fall on every alignment.
  const std::size_t step = std::max<std::size_t>(97, (tail / 4000) | 1);
  for (std::size_t i = 0; i < tail; i += step) lengths.push_back(i);
  for (std::size_t i = tail; i < full.size(); ++i) lengths.push_back(i);
  check_truncations(full, lengths);
}

TEST_CASE("zip: a flipped byte in any signature is refused") {
  const Bytes good = slurp(smallest_archive());
  const ZipReader reference = open_bytes(good);
  const Signatures sig = signatures_of(good);
  REQUIRE(sig.central.size() == reference.entries().size());

  struct Site {
    std::uint64_t offset;
    std::string where;
  };
  std::vector<Site> sites{{sig.eocd, "end of central directory"},
                          // Without its locator the archive reads as a classic one whose
                          // directory does not reach the end record.
                          {sig.locator, "central directory"},
                          {sig.zip64_eocd, "zip64 end of central directory"}};
  for (std::size_t i = 0; i < sig.central.size(); ++i) {
    sites.push_back({sig.central[i], "central directory entry " + std::to_string(i)});
  }
  for (const ZipEntry& e : reference.entries()) sites.push_back({e.local_header_offset, e.name});

  for (const Site& site : sites) {
    for (int k = 0; k < 4; ++k) {
      INFO("signature at " << site.offset << " byte " << k << " (" << site.where << ")");
      Bytes bad = good;
      bad[site.offset + k] ^= std::byte{0xFF};
      const Error e = error_of([&] { open_bytes(bad); });
      CHECK(e.where() == site.where);
      if (site.where != "central directory" && site.where != "end of central directory") {
        CHECK(contains(e.message(), "signature"));
      }
    }
  }
}

TEST_CASE("zip: a record or directory outside the file is refused") {
  SUBCASE("local header offset past the end, in a fixture") {
    Bytes bad = slurp(smallest_archive());
    const Signatures sig = signatures_of(bad);
    const std::string name(reinterpret_cast<const char*>(bad.data() + sig.central[0] + 46),
                           get16(bad, sig.central[0] + 28));
    put32(bad, sig.central[0] + 42, bad.size() + 1000);
    check_refused([&] { open_bytes(bad); }, name, "extends past the end of the file");
  }
  SUBCASE("local header offset past the end") {
    TestZip z = write_zip(two_records());
    put32(z.bytes, z.central[1] + 42, z.bytes.size() - 10);
    check_refused([&] { open_bytes(z.bytes); }, "b",
                  "local header of 30 bytes at offset " + std::to_string(z.bytes.size() - 10) +
                      " extends past the end of the file (" + std::to_string(z.bytes.size()) +
                      " bytes)");
  }
  SUBCASE("ZIP64 offset near 2^64 does not wrap around") {
    TestZip z = write_zip(two_records(), {.zip64 = true, .defer = kDeferOffset});
    CHECK_NOTHROW(open_bytes(z.bytes));
    const std::uint64_t extra_at = z.central[1] + 46 + 1 + 4;
    put64(z.bytes, extra_at, ~std::uint64_t{0} - 5);
    check_refused([&] { open_bytes(z.bytes); }, "b", "extends past the end of the file");
  }
  SUBCASE("ZIP64 sizes near 2^64 do not wrap around") {
    TestZip z = write_zip(two_records(), {.zip64 = true, .defer = kDeferUsize | kDeferCsize});
    CHECK_NOTHROW(open_bytes(z.bytes));
    const std::uint64_t extra_at = z.central[0] + 46 + 1 + 4;
    put64(z.bytes, extra_at, ~std::uint64_t{0});
    put64(z.bytes, extra_at + 8, ~std::uint64_t{0});
    check_refused([&] { open_bytes(z.bytes); }, "a",
                  "record of 18446744073709551615 bytes at offset 31 extends past the end");
  }
  SUBCASE("record data past the end") {
    TestZip z = write_zip(two_records());
    put32(z.bytes, z.central[1] + 20, 100000);
    put32(z.bytes, z.central[1] + 24, 100000);
    check_refused([&] { open_bytes(z.bytes); }, "b", "record of 100000 bytes at offset");
  }
  SUBCASE("central directory past the end") {
    TestZip z = write_zip(two_records());
    put32(z.bytes, z.eocd + 16, 0x7FFFFFFF);
    check_refused([&] { open_bytes(z.bytes); }, "central directory",
                  "at offset 2147483647 extends past the end of the file");
  }
  SUBCASE("ZIP64 central directory offset near 2^64") {
    TestZip z = write_zip(two_records(), {.zip64 = true, .eocd_placeholders = true});
    CHECK_NOTHROW(open_bytes(z.bytes));
    put64(z.bytes, z.zip64_eocd + 48, ~std::uint64_t{0} - 3);
    check_refused([&] { open_bytes(z.bytes); }, "central directory", "extends past the end");
  }
  SUBCASE("ZIP64 end record offset past its locator") {
    TestZip z = write_zip(two_records(), {.zip64 = true});
    put64(z.bytes, z.eocd - 20 + 8, z.bytes.size());
    check_refused([&] { open_bytes(z.bytes); }, "zip64 end of central directory",
                  "does not end before its locator");
  }
  SUBCASE("ZIP64 end record declaring a huge size") {
    TestZip z = write_zip(two_records(), {.zip64 = true});
    put64(z.bytes, z.zip64_eocd + 4, ~std::uint64_t{0} - 2);
    check_refused([&] { open_bytes(z.bytes); }, "zip64 end of central directory",
                  "bytes after its size field");
  }
}

TEST_CASE("zip: overlapping records are refused") {
  SUBCASE("a record that swallows the next one") {
    TestZip z = write_zip(two_records());
    const std::uint64_t a_data = z.local[0] + 30 + 1;
    const std::uint64_t swallowed = z.cd_offset - a_data;  // through b's header and data
    put32(z.bytes, z.central[0] + 20, swallowed);
    put32(z.bytes, z.central[0] + 24, swallowed);
    const Error e = error_of([&] { open_bytes(z.bytes); });
    CHECK(e.where() == "b");
    CHECK(contains(e.message(), "overlap record 'a' at [0, " + std::to_string(z.cd_offset) + ")"));
  }
  SUBCASE("a second directory entry reusing the first one's bytes") {
    // The classic overlapping zip bomb: many directory entries, one local header.
    TestZip z = write_zip({stored("a", "payload"), stored("a", "other")});
    put32(z.bytes, z.central[1] + 42, 0);
    put32(z.bytes, z.central[1] + 20, 7);
    put32(z.bytes, z.central[1] + 24, 7);
    const Error e = error_of([&] { open_bytes(z.bytes); });
    CHECK(e.where() == "a");
    CHECK(contains(e.message(), "overlap"));
  }
  SUBCASE("a record running into the central directory") {
    TestZip z = write_zip(two_records());
    const std::uint64_t b_data = z.local[1] + 30 + 1;
    put32(z.bytes, z.central[1] + 20, z.cd_offset - b_data + 10);
    put32(z.bytes, z.central[1] + 24, z.cd_offset - b_data + 10);
    const Error e = error_of([&] { open_bytes(z.bytes); });
    CHECK(e.where() == "b");
    CHECK(contains(e.message(), "overlap the central directory at [" +
                                    std::to_string(z.cd_offset) + ", "));
  }
  SUBCASE("duplicate names") {
    TestZip z = write_zip({stored("same", "1"), stored("x", "2"), stored("same", "3")});
    check_refused([&] { open_bytes(z.bytes); }, "same",
                  "two records with this name (central directory entries 0 and 2)");
  }
}

TEST_CASE("zip: a deflate bomb or a lying size is refused") {
  const Bytes zeros(1 << 20, std::byte{0});
  SUBCASE("declared size above the limit is refused before inflating") {
    TestZip z = write_zip({deflated("bomb", zeros)});
    CHECK(z.bytes.size() < 4096);
    const ZipReader zip = open_bytes(z.bytes, ZipLimits{.max_inflated_size = 1024});
    const ZipEntry& e = zip.entries().at(0);
    CHECK(e.uncompressed_size == zeros.size());
    check_refused([&] { (void)zip.read(e); }, "bomb",
                  "declared uncompressed size of 1048576 bytes exceeds the limit of 1024");
    check_refused([&] { zip.verify_crc(e); }, "bomb", "exceeds the limit");
    // The same archive is fine under the default limit.
    const ZipReader relaxed = open_bytes(z.bytes);
    CHECK(relaxed.read(relaxed.entries().at(0)) == zeros);
    CHECK_NOTHROW(relaxed.verify_crc(relaxed.entries().at(0)));
  }
  SUBCASE("declared size below the real one") {
    TestRecord r = deflated("bomb", zeros);
    r.usize = 1000;
    TestZip z = write_zip({r});
    const ZipReader zip = open_bytes(z.bytes, ZipLimits{.max_inflated_size = 1024});
    check_refused([&] { (void)zip.read(zip.entries().at(0)); }, "bomb",
                  "inflates to more than the declared 1000 bytes");
  }
  SUBCASE("declared size above the real one") {
    const Bytes content(1500, std::byte{'q'});
    TestRecord r = deflated("short", content);
    r.usize = 2000;
    TestZip z = write_zip({r});
    const ZipReader zip = open_bytes(z.bytes);
    check_refused([&] { (void)zip.read(zip.entries().at(0)); }, "short",
                  "ends after 1500 bytes, short of the declared 2000");
  }
  SUBCASE("compressed data cut short") {
    std::mt19937 rng(7);
    Bytes noise(5000);
    for (auto& x : noise) x = std::byte(static_cast<unsigned char>(rng()));
    TestRecord r = deflated("cut", noise);
    r.data.resize(r.data.size() / 2);
    TestZip z = write_zip({r});
    const ZipReader zip = open_bytes(z.bytes);
    check_refused([&] { (void)zip.read(zip.entries().at(0)); }, "cut",
                  "ends before its deflate stream does");
  }
  SUBCASE("bytes after the end of the stream") {
    TestRecord r = deflated("trailing", bytes_of("hello hello hello"));
    append(r.data, "junk");
    TestZip z = write_zip({r});
    const ZipReader zip = open_bytes(z.bytes);
    check_refused([&] { (void)zip.read(zip.entries().at(0)); }, "trailing",
                  "of the record's " + std::to_string(r.data.size()) + " compressed bytes");
  }
  SUBCASE("corrupt stream") {
    TestRecord r{"corrupt", Bytes(16, std::byte{0xFF}), 8, 0, 100, 0};
    TestZip z = write_zip({r});
    const ZipReader zip = open_bytes(z.bytes);
    check_refused([&] { (void)zip.read(zip.entries().at(0)); }, "corrupt", "corrupt deflate stream");
  }
}

TEST_CASE("zip: verify_crc names the record and both CRCs") {
  Bytes bad = slurp(smallest_archive());
  const ZipReader good = open_bytes(bad);
  const ZipEntry* stored_entry = nullptr;
  const ZipEntry* deflated_entry = nullptr;
  for (const ZipEntry& e : good.entries()) {
    if (e.method == 0 && e.compressed_size > 0 && !stored_entry) stored_entry = &e;
    if (e.method == 8 && !deflated_entry) deflated_entry = &e;
  }
  REQUIRE(stored_entry != nullptr);
  REQUIRE(deflated_entry != nullptr);
  const std::string stored_name = stored_entry->name;
  const std::string deflated_name = deflated_entry->name;
  bad[stored_entry->data_offset] ^= std::byte{0x01};
  bad[deflated_entry->data_offset + deflated_entry->compressed_size / 2] ^= std::byte{0x10};

  const ZipReader zip = open_bytes(bad);  // the directory is intact
  const ZipEntry& s = *zip.find(stored_name);
  const std::uint32_t actual = kiln::format::crc32(zip.view(s));
  CHECK(actual != s.crc32);
  check_refused([&] { zip.verify_crc(s); }, stored_name,
                "CRC-32 mismatch: the central directory says " + hex32(s.crc32) +
                    " but the record's bytes give " + hex32(actual));
  // A damaged deflate stream fails either to inflate or to match its CRC.
  const Error e = error_of([&] { zip.verify_crc(*zip.find(deflated_name)); });
  CHECK(e.where() == deflated_name);
}

TEST_CASE("zip: an empty file or random bytes are refused") {
  SUBCASE("empty") {
    check_refused([&] { open_bytes({}); }, "end of central directory",
                  "file of 0 bytes is too short");
  }
  SUBCASE("random bytes of many sizes") {
    std::mt19937_64 rng(42);
    for (std::size_t size : {1, 21, 22, 23, 97, 4096, 70000, 200000}) {
      INFO("size " << size);
      Bytes noise(size);
      for (auto& x : noise) x = std::byte(static_cast<unsigned char>(rng()));
      check_refused([&] { open_bytes(noise); }, "end of central directory",
                    size < 22 ? "is too short to be a zip archive" : "no end of central directory record");
    }
  }
  SUBCASE("random bytes ending in a plausible end record") {
    std::mt19937_64 rng(43);
    for (int round = 0; round < 200; ++round) {
      Bytes noise(1000);
      for (auto& x : noise) x = std::byte(static_cast<unsigned char>(rng()));
      const std::uint64_t at = noise.size() - 22;
      put32(noise, at, 0x06054b50);
      put32(noise, at + 4, 0);
      const std::uint64_t count = rng() % 4;
      put16(noise, at + 8, count);
      put16(noise, at + 10, count);
      put32(noise, at + 12, rng() % 1000);
      put32(noise, at + 16, rng() % 1000);
      put16(noise, at + 20, 0);
      CHECK_THROWS_AS(open_bytes(noise), Error);
    }
  }
}

TEST_CASE("zip: random damage to a real archive surfaces only as kiln::Error") {
  const Bytes good = slurp(smallest_archive());
  const Signatures sig = signatures_of(good);
  std::mt19937_64 rng(1234);
  int refused = 0, accepted = 0;
  for (int round = 0; round < 3000; ++round) {
    Bytes bad = good;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) {
      // Mostly the directory and end records, where the structure is.
      const std::uint64_t start = (rng() % 4 == 0) ? 0 : sig.central.front();
      const std::uint64_t at = start + rng() % (bad.size() - start);
      bad[at] ^= std::byte(static_cast<unsigned char>(1 + rng() % 255));
    }
    try {
      const ZipReader zip = open_bytes(bad);
      for (const ZipEntry& e : zip.entries()) {
        try {
          const auto data = zip.read(e);
          CHECK(data.size() == e.uncompressed_size);
          if (e.method == 0) (void)zip.view(e);
          zip.verify_crc(e);
        } catch (const Error&) {
        }
      }
      ++accepted;
    } catch (const Error& e) {
      CHECK(!e.message().empty());
      ++refused;
    }
  }
  INFO("random damage: " << refused << " refused, " << accepted << " parsed");
  CHECK(refused > 0);
}

TEST_CASE("zip: malformed directory entries are refused") {
  SUBCASE("encrypted") {
    auto records = two_records();
    records[1].flags = 1;
    check_refused([&] { open_bytes(write_zip(records).bytes); }, "b", "record is encrypted");
  }
  SUBCASE("NUL in a name") {
    auto records = two_records();
    records[1].name = std::string("b\0c", 3);
    check_refused([&] { open_bytes(write_zip(records).bytes); }, "central directory entry 1",
                  "holds a NUL byte at position 1");
  }
  SUBCASE("empty name") {
    auto records = two_records();
    records[0].name = "";
    check_refused([&] { open_bytes(write_zip(records).bytes); }, "central directory entry 0",
                  "empty name");
  }
  SUBCASE("stored sizes that differ") {
    TestZip z = write_zip(two_records());
    put32(z.bytes, z.central[0] + 24, 3);
    check_refused([&] { open_bytes(z.bytes); }, "a",
                  "stored record declares 11 bytes in the file but 3 uncompressed");
  }
  SUBCASE("more entries than the limit") {
    TestZip z = write_zip(two_records());
    CHECK_NOTHROW(open_bytes(z.bytes, ZipLimits{.max_entries = 2}));
    check_refused([&] { open_bytes(z.bytes, ZipLimits{.max_entries = 1}); }, "central directory",
                  "2 entries exceed the limit of 1");
  }
  SUBCASE("entry count too large for the directory") {
    TestZip z = write_zip(two_records());
    put16(z.bytes, z.eocd + 8, 3);
    put16(z.bytes, z.eocd + 10, 3);
    check_refused([&] { open_bytes(z.bytes); }, "central directory",
                  "3 entries cannot fit in a directory of 94 bytes");
  }
  SUBCASE("entry count too small for the directory") {
    TestZip z = write_zip(two_records());
    put16(z.bytes, z.eocd + 8, 1);
    put16(z.bytes, z.eocd + 10, 1);
    check_refused([&] { open_bytes(z.bytes); }, "central directory",
                  "the entry count disagrees with the directory size");
  }
  SUBCASE("entry running past the directory") {
    TestZip z = write_zip(two_records());
    put16(z.bytes, z.central[1] + 32, 40);  // a comment that is not there
    check_refused([&] { open_bytes(z.bytes); }, "central directory entry 1",
                  "runs past the end of the central directory");
  }
  SUBCASE("local header naming another record") {
    TestZip z = write_zip(two_records());
    z.bytes[z.local[1] + 30] = std::byte{'z'};
    check_refused([&] { open_bytes(z.bytes); }, "b", "names the record 'z' instead");
  }
  SUBCASE("spanned archive") {
    TestZip z = write_zip(two_records());
    put16(z.bytes, z.eocd + 4, 1);
    check_refused([&] { open_bytes(z.bytes); }, "end of central directory", "spans several disks");
  }
  SUBCASE("unsupported method: listed, but not read") {
    auto records = two_records();
    records[1].method = 12;  // bzip2
    const ZipReader zip = open_bytes(write_zip(records).bytes);
    const ZipEntry& e = *zip.find("b");
    CHECK(e.method == 12);
    check_refused([&] { (void)zip.read(e); }, "b", "unsupported compression method 12");
    check_refused([&] { (void)zip.view(e); }, "b", "cannot be viewed in place");
    check_refused([&] { zip.verify_crc(e); }, "b", "unsupported compression method 12");
  }
  SUBCASE("names escaped in messages") {
    auto records = two_records();
    records[1].name = "b\x01\xff";
    records[1].flags = 1;
    check_refused([&] { open_bytes(write_zip(records).bytes); }, "b\\x01\\xff", "encrypted");
  }
}

TEST_CASE("zip: ZIP64 fields are read from the records that hold them") {
  const Bytes payload = bytes_of(std::string(3000, 'x') + "tail");
  const std::vector<TestRecord> records{stored("s", "stored text"), deflated("d", payload),
                                        stored("empty", "")};
  auto check_contents = [&](const ZipReader& zip) {
    REQUIRE(zip.entries().size() == 3);
    CHECK(text_of(zip.view(*zip.find("s"))) == "stored text");
    CHECK(zip.read(*zip.find("d")) == payload);
    CHECK(zip.read(*zip.find("empty")).empty());
    for (const ZipEntry& e : zip.entries()) CHECK_NOTHROW(zip.verify_crc(e));
  };
  SUBCASE("classic archive") { check_contents(open_bytes(write_zip(records).bytes)); }
  SUBCASE("PyTorch's layout: ZIP64 end records and 64-byte aligned data") {
    TestZip z = write_zip(records, {.zip64 = true, .align64 = true});
    const ZipReader zip = open_bytes(z.bytes);
    check_contents(zip);
    for (const ZipEntry& e : zip.entries()) CHECK(e.data_offset % 64 == 0);
  }
  SUBCASE("end record placeholders") {
    check_contents(open_bytes(write_zip(records, {.zip64 = true, .eocd_placeholders = true}).bytes));
  }
  SUBCASE("every combination of fields deferred to the ZIP64 extra field") {
    for (unsigned defer = 1; defer < 8; ++defer) {
      CAPTURE(defer);
      check_contents(open_bytes(write_zip(records, {.zip64 = true, .defer = defer}).bytes));
    }
  }
  SUBCASE("a comment holding a decoy end record") {
    std::string comment = "PK\x05\x06";
    comment += std::string(30, '!');
    check_contents(open_bytes(write_zip(records, {.zip64 = true, .comment = comment}).bytes));
  }
  SUBCASE("placeholders without a locator") {
    TestZip z = write_zip(records, {.eocd_placeholders = true});
    check_refused([&] { open_bytes(z.bytes); }, "end of central directory",
                  "no ZIP64 end of central directory locator precedes it");
  }
  SUBCASE("end records that disagree") {
    TestZip z = write_zip(records, {.zip64 = true});
    put32(z.bytes, z.eocd + 12, get32(z.bytes, z.eocd + 12) + 1);
    check_refused([&] { open_bytes(z.bytes); }, "zip64 end of central directory",
                  "the end of central directory gives directory size");
  }
  SUBCASE("placeholder without an extra field") {
    TestZip z = write_zip(records, {.zip64 = true, .defer = kDeferOffset, .extra = 0u});
    check_refused([&] { open_bytes(z.bytes); }, "s",
                  "has no ZIP64 extended information extra field");
  }
  SUBCASE("extra field lacking a deferred value") {
    TestZip z = write_zip(records, {.zip64 = true, .defer = kDeferUsize | kDeferCsize | kDeferOffset,
                                    .extra = kDeferUsize | kDeferCsize});
    check_refused([&] { open_bytes(z.bytes); }, "s",
                  "ZIP64 extra field of 16 bytes lacks the local header offset");
  }
  SUBCASE("extra field running past the extra data") {
    TestZip z = write_zip(records, {.zip64 = true, .defer = kDeferOffset});
    put16(z.bytes, z.central[0] + 46 + 1 + 2, 9);
    check_refused([&] { open_bytes(z.bytes); }, "s",
                  "extra field 0x0001 of 9 bytes at byte 0 runs past the end of the extra data");
  }
  SUBCASE("an empty archive is valid") {
    const ZipReader zip = open_bytes(write_zip({}).bytes);
    CHECK(zip.entries().empty());
    CHECK(zip.find("a") == nullptr);
  }
}

TEST_CASE("zip: find looks names up exactly") {
  std::vector<TestRecord> records;
  for (int i = 0; i < 300; ++i) records.push_back(stored("m/data/" + std::to_string(i), std::to_string(i * 7)));
  const TestZip z = write_zip(records, {.zip64 = true, .align64 = true});
  const ZipReader zip = open_bytes(z.bytes);
  for (int i = 0; i < 300; ++i) {
    const ZipEntry* e = zip.find("m/data/" + std::to_string(i));
    REQUIRE(e != nullptr);
    CHECK(e == &zip.entries()[static_cast<std::size_t>(i)]);
    CHECK(text_of(zip.view(*e)) == std::to_string(i * 7));
  }
  CHECK(zip.find("m/data/300") == nullptr);
  CHECK(zip.find("m/data/") == nullptr);
  CHECK(zip.find("") == nullptr);
  CHECK(zip.find("M/data/1") == nullptr);
}

TEST_CASE("zip: entries from elsewhere cannot read outside the file") {
  const TestZip z = write_zip(two_records());
  const ZipReader zip = open_bytes(z.bytes);
  ZipEntry forged = zip.entries()[0];
  forged.data_offset = z.bytes.size() - 2;
  const Error e = error_of([&] { (void)zip.read(forged); });
  CHECK(e.kind() == kiln::ErrorKind::usage);
  CHECK(e.where() == "a");
}

TEST_CASE("zip: crc32 matches the standard check value") {
  CHECK(kiln::format::crc32(bytes_of("123456789")) == 0xCBF43926u);
  CHECK(kiln::format::crc32({}) == 0u);
  // Incremental use continues a running CRC.
  const std::uint32_t part = kiln::format::crc32(bytes_of("1234"));
  CHECK(kiln::format::crc32(bytes_of("56789"), part) == 0xCBF43926u);
}

// A scratch folder removed when the test ends.
struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("kiln_zip_test_" + std::to_string(::getpid()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

TEST_CASE("zip: FileBytes opens, reads and borrows") {
  TempDir dir;
  SUBCASE("missing file names the path and the reason") {
    const std::string missing = (dir.path / "nope.pt").string();
    for (auto open : {&FileBytes::map, &FileBytes::read}) {
      const Error e = error_of([&] { (void)open(missing); });
      CHECK(e.kind() == kiln::ErrorKind::bad_input);
      CHECK(e.file() == missing);
      CHECK(contains(e.message(), std::strerror(ENOENT)));
    }
  }
  SUBCASE("a directory is not a model file") {
    for (auto open : {&FileBytes::map, &FileBytes::read}) {
      const Error e = error_of([&] { (void)open(dir.path.string()); });
      CHECK(contains(e.message(), "not a regular file"));
    }
  }
  SUBCASE("an empty file has no bytes and no zip") {
    const std::string empty = (dir.path / "empty.pt").string();
    { std::ofstream touch(empty, std::ios::binary); }
    for (auto open : {&FileBytes::map, &FileBytes::read}) {
      const auto file = open(empty);
      CHECK(file->bytes().empty());
      CHECK(file->name() == empty);
      const Error e = error_of([&] { ZipReader zip(file); });
      CHECK(e.file() == empty);
      CHECK(e.where() == "end of central directory");
    }
  }
  SUBCASE("a written archive reads back through every mode") {
    const TestZip z = write_zip(two_records(), {.zip64 = true, .align64 = true});
    const std::string path = (dir.path / "two.zip").string();
    {
      std::ofstream out(path, std::ios::binary);
      out.write(reinterpret_cast<const char*>(z.bytes.data()), static_cast<std::streamsize>(z.bytes.size()));
    }
    for (auto open : {&FileBytes::map, &FileBytes::read}) {
      const ZipReader zip(open(path));
      CHECK(zip.source() == path);
      CHECK(text_of(zip.view(*zip.find("a"))) == "alpha bytes");
      CHECK(text_of(zip.view(*zip.find("b"))) == "bravo");
    }
  }
  SUBCASE("borrow keeps the caller's buffer") {
    const Bytes buffer = bytes_of("not a zip");
    const auto file = FileBytes::borrow(buffer, "buffer");
    CHECK(file->bytes().data() == buffer.data());
    CHECK(file->bytes().size() == buffer.size());
    CHECK(file->name() == "buffer");
  }
}

}  // namespace
