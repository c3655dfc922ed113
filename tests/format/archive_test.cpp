// Golden tests of Archive and module_tree against what PyTorch and Python's zipfile saw
// when the fixture generator saved each archive (manifest "container" and "tensors").
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "format/archive.hpp"
#include "format/module_tree.hpp"
#include "kiln/error.hpp"
#include "tests/support/bytes.hpp"
#include "tests/support/fixtures.hpp"
#include "tests/support/sha256.hpp"

using kiln::format::Archive;
using kiln::format::JsonValue;
using kiln::format::ModuleTensor;
using kiln::format::TensorData;

namespace {

std::string archive_path(const kiln::testing::Fixture& f) {
  return (f.dir / f.manifest.at("archive").as_string()).string();
}

// The tensor's elements in C order, gathered through its strides, as numpy's tobytes().
std::vector<std::byte> element_bytes(const TensorData& d) {
  std::vector<std::byte> out;
  const std::int64_t n = d.numel();
  out.reserve(static_cast<size_t>(n) * d.element_size);
  std::vector<std::int64_t> index(d.sizes.size(), 0);
  for (std::int64_t i = 0; i < n; ++i) {
    std::int64_t offset = d.storage_offset;
    for (size_t k = 0; k < index.size(); ++k) offset += index[k] * d.strides[k];
    const std::byte* p = d.storage.data() + offset * static_cast<std::int64_t>(d.element_size);
    out.insert(out.end(), p, p + d.element_size);
    for (size_t k = index.size(); k-- > 0;) {
      if (++index[k] < d.sizes[k]) break;
      index[k] = 0;
    }
  }
  return out;
}

std::string code_file_of(const std::string& qualifier) {
  std::string path = qualifier;
  std::replace(path.begin(), path.end(), '.', '/');
  return "code/" + path + ".py";
}

}  // namespace

TEST_CASE("archive: the container matches what Python's zipfile read") {
  const auto fixtures = kiln::testing::all_fixtures();
  REQUIRE(!fixtures.empty());
  for (const auto& f : fixtures) {
    INFO(f.generation << "/" << f.name);
    const Archive a = Archive::open(archive_path(f));
    const JsonValue& c = f.manifest.at("container");
    CHECK(a.root() == c.at("root").as_string());
    CHECK(a.root() == f.name);  // PyTorch names the root after the file, never "archive"
    CHECK(a.zip().entries().size() == static_cast<size_t>(c.at("records").as_int()));
    CHECK(a.version() == c.at("version").as_int());
    CHECK(a.version_record() == c.at("version_record").as_string());
    CHECK(a.has_byteorder_record() == !c.at("byteorder").is_null());
    std::set<std::string> expected, got;
    for (const JsonValue& name : c.at("code_files").as_array()) expected.insert(name.as_string());
    for (const auto& [qualifier, source] : a.code()) {
      got.insert(code_file_of(qualifier));
      // A file holds classes, or free functions (scripted code calling torch.nn.functional).
      CHECK((source.find("class ") != std::string::npos || source.find("def ") != std::string::npos));
    }
    CHECK(got == expected);
    CHECK(a.data()->text.rfind("__torch__.", 0) == 0);
  }
}

TEST_CASE("archive: every parameter and buffer equals PyTorch's, byte for byte") {
  for (const auto& f : kiln::testing::all_fixtures()) {
    INFO(f.generation << "/" << f.name);
    const Archive a = Archive::open(archive_path(f));
    const auto tree = kiln::format::module_tree(a);
    const JsonValue& expected = f.manifest.at("tensors");

    std::set<std::string> names;
    for (const ModuleTensor& t : tree.tensors) names.insert(t.name);
    std::set<std::string> expected_names;
    for (const auto& member : expected.as_object()) expected_names.insert(member.first);
    CHECK(names == expected_names);

    for (const ModuleTensor& t : tree.tensors) {
      INFO("tensor " << t.name);
      const JsonValue* e = expected.find(t.name);
      if (!e) continue;
      CHECK(t.kind == (e->at("kind").as_string() == "parameter" ? ModuleTensor::Kind::parameter
                                                                : ModuleTensor::Kind::buffer));
      REQUIRE(t.data.dtype.has_value());
      CHECK(std::string(kiln::dtype_name(*t.data.dtype)) == e->at("dtype").as_string());
      std::vector<std::int64_t> shape;
      for (const JsonValue& d : e->at("shape").as_array()) shape.push_back(d.as_int());
      CHECK(t.data.sizes == shape);
      CHECK(kiln::testing::sha256_hex(element_bytes(t.data)) == e->at("sha256").as_string());
    }
  }
}

TEST_CASE("archive: the forward signature names the traced inputs") {
  for (const auto& f : kiln::testing::all_fixtures()) {
    INFO(f.generation << "/" << f.name);
    const Archive a = Archive::open(archive_path(f));
    const auto tree = kiln::format::module_tree(a);
    REQUIRE(tree.root_class.has_forward);
    std::vector<std::string> args, expected;
    for (const auto& arg : tree.root_class.forward_args) args.push_back(arg.name);
    for (const JsonValue& n : f.manifest.at("input_names").as_array()) expected.push_back(n.as_string());
    CHECK(args == expected);
    for (const auto& arg : tree.root_class.forward_args) CHECK(arg.type == "Tensor");
  }
}

TEST_CASE("archive: mapped, copied and borrowed loads agree, and tensors view the file in place") {
  const auto fixtures = kiln::testing::all_fixtures();
  REQUIRE(!fixtures.empty());
  const std::string path = archive_path(fixtures.front());
  const std::vector<std::byte> bytes = kiln::testing::read_file_bytes(path);
  REQUIRE(!bytes.empty());

  const Archive mapped = Archive::open(path);
  const Archive copied = Archive::open_copy(path);
  const Archive borrowed = Archive::from_buffer(bytes, "buffer.pt", {.verify_crc = true});
  const auto t1 = kiln::format::module_tree(mapped).tensors;
  const auto t2 = kiln::format::module_tree(copied).tensors;
  const auto t3 = kiln::format::module_tree(borrowed).tensors;
  REQUIRE(t1.size() == t2.size());
  REQUIRE(t1.size() == t3.size());
  for (size_t i = 0; i < t1.size(); ++i) {
    CHECK(t1[i].name == t3[i].name);
    CHECK(element_bytes(t1[i].data) == element_bytes(t2[i].data));
    CHECK(element_bytes(t1[i].data) == element_bytes(t3[i].data));
    // Borrowed bytes are used in place: no copy of the weights is made.
    CHECK(t3[i].data.storage.data() >= bytes.data());
    CHECK(t3[i].data.storage.data() + t3[i].data.storage.size() <= bytes.data() + bytes.size());
    // PyTorch aligns stored records to 64 bytes so tensors can be used where they lie.
    CHECK((t3[i].data.storage.data() - bytes.data()) % 64 == 0);
  }
}

TEST_CASE("archive: damaged archives are refused with an error naming the file") {
  const auto fixtures = kiln::testing::all_fixtures();
  REQUIRE(!fixtures.empty());
  const std::string path = archive_path(fixtures.front());
  const std::vector<std::byte> original = kiln::testing::read_file_bytes(path);
  REQUIRE(!original.empty());

  auto load = [](const std::vector<std::byte>& bytes) {
    const Archive a = Archive::from_buffer(bytes, "damaged.pt", {.verify_crc = true});
    (void)kiln::format::module_tree(a);
  };
  REQUIRE_NOTHROW(load(original));

  // Every truncation point in steps, and the last 300 bytes one by one: the central
  // directory and end records live there.
  for (size_t n = 0; n < original.size(); n += (n + 300 >= original.size() ? 1 : 997)) {
    std::vector<std::byte> cut(original.begin(), original.begin() + static_cast<std::ptrdiff_t>(n));
    INFO("truncated to " << n << " bytes");
    CHECK_THROWS_AS(load(cut), kiln::Error);
  }
  // A flipped byte in any record's data is caught with --verify (zip headers also hold
  // fields nobody checks, like timestamps, so only record data is certain to be caught).
  const Archive intact = Archive::from_buffer(original, "intact.pt");
  std::vector<size_t> positions;
  for (const auto& e : intact.zip().entries()) {
    if (e.compressed_size == 0) continue;
    positions.push_back(e.data_offset);
    // The last byte of a deflate stream may be unused padding bits: only stored records.
    if (e.method == 0) positions.push_back(e.data_offset + e.compressed_size - 1);
  }
  REQUIRE(positions.size() > 10);
  for (size_t pos : positions) {
    std::vector<std::byte> flipped = original;
    flipped[pos] ^= std::byte{0x5A};
    INFO("flipped byte " << pos);
    try {
      load(flipped);
      FAIL("accepted a flipped byte at " << pos);
    } catch (const kiln::Error& e) {
      CHECK(e.file() == "damaged.pt");
    }
  }
}
