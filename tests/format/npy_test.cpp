// Tests of format/npy.cpp (and of the tests' own SHA-256, which the golden test relies on).
#include "format/npy.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/error.hpp"
#include "tests/support/bytes.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/fixtures.hpp"
#include "tests/support/sha256.hpp"

namespace {

namespace fs = std::filesystem;
using kiln::DType;
using kiln::Error;
using kiln::format::NpyArray;
using kiln::format::parse_npy;
using kiln::format::read_npy;
using kiln::format::serialize_npy;
using kiln::format::write_npy;
using kiln::testing::sha256_hex;

using kiln::testing::bytes_of;
using kiln::testing::lit;

std::string text_of(std::span<const std::byte> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// A .npy image with `dict` as its header, padded with spaces and '\n' so the data starts
// at a multiple of `align` (1: no padding and no newline at all).
std::vector<std::byte> npy_image(int major, std::string_view dict, std::string_view data = {},
                                 std::size_t align = 64, int minor = 0) {
  std::size_t prefix = major == 1 ? 10 : 12;
  std::string header(dict);
  if (align > 1) {
    std::size_t unpadded = prefix + header.size() + 1;
    header += std::string((align - unpadded % align) % align, ' ') + "\n";
  }
  std::string out = "\x93NUMPY";
  out += static_cast<char>(major);
  out += static_cast<char>(minor);
  for (std::size_t i = 0; i < prefix - 8; ++i) out += static_cast<char>((header.size() >> (8 * i)) & 0xff);
  out += header;
  out += data;
  return bytes_of(out);
}

std::string dict_for(std::string_view descr, std::string_view shape) {
  return "{'descr': '" + std::string(descr) + "', 'fortran_order': False, 'shape': " +
         std::string(shape) + ", }";
}

// Runs `parse` and checks it throws a bad_input kiln::Error at `where` whose message
// contains `needle`.
template <typename F>
void check_error(F&& parse, std::string_view where, std::string_view needle) {
  try {
    parse();
    FAIL_CHECK("no kiln::Error; expected one at '" << where << "' saying '" << needle << "'");
  } catch (const Error& e) {
    INFO("what(): " << std::string(e.what()));
    CHECK(e.kind() == kiln::ErrorKind::bad_input);
    CHECK(e.where() == where);
    CHECK(e.message().find(needle) != std::string::npos);
  }
}

void check_parse_error(const std::vector<std::byte>& image, std::string_view where,
                       std::string_view needle) {
  check_error([&] { parse_npy(image, "x.npy"); }, where, needle);
  try {
    parse_npy(image, "x.npy");
  } catch (const Error& e) {
    CHECK(e.file() == "x.npy");
  }
}

using kiln::testing::TempDir;

void write_file(const std::string& path, std::span<const std::byte> bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

}  // namespace

TEST_CASE("sha256: FIPS 180-4 and boundary-length test vectors") {
  CHECK(sha256_hex({}) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex(bytes_of("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex(bytes_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")) ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  // Lengths around the padding boundaries (55 and 56 bytes decide whether the length fits in
  // the last block), then the FIPS million 'a's.
  CHECK(sha256_hex(bytes_of(std::string(55, 'a'))) ==
        "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
  CHECK(sha256_hex(bytes_of(std::string(56, 'a'))) ==
        "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
  CHECK(sha256_hex(bytes_of(std::string(63, 'a'))) ==
        "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34");
  CHECK(sha256_hex(bytes_of(std::string(64, 'a'))) ==
        "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
  CHECK(sha256_hex(bytes_of(std::string(119, 'a'))) ==
        "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb");
  CHECK(sha256_hex(bytes_of(std::string(1000000, 'a'))) ==
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("npy: files written by NumPy 1.24's np.save parse") {
  SUBCASE("float32 (2, 3)") {
    auto image = bytes_of(lit(
        "\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
        "                                                          \n"
        "\x00\x00\x00\x00\x00\x00\x80\x3f\x00\x00\x00@\x00\x00@@\x00\x00\x80@\x00\x00\xa0@"));
    REQUIRE(image.size() == 152);
    NpyArray a = parse_npy(image, "f4.npy");
    CHECK(a.dtype == DType::float32);
    CHECK(a.shape == std::vector<std::int64_t>{2, 3});
    CHECK(a.numel() == 6);
    auto v = a.values<float>();
    REQUIRE(v.size() == 6);
    for (int i = 0; i < 6; ++i) CHECK(v[static_cast<std::size_t>(i)] == static_cast<float>(i));
  }
  SUBCASE("bool (3,)") {
    auto image = bytes_of(lit(
        "\x93NUMPY\x01\x00v\x00{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }"
        "                                                            \n"
        "\x01\x00\x01"));
    REQUIRE(image.size() == 131);
    NpyArray a = parse_npy(image, "b1.npy");
    CHECK(a.dtype == DType::bool_);
    CHECK(a.shape == std::vector<std::int64_t>{3});
    CHECK(text_of(a.data) == lit("\x01\x00\x01"));
  }
  SUBCASE("0-d int64") {
    auto image = bytes_of(lit(
        "\x93NUMPY\x01\x00v\x00{'descr': '<i8', 'fortran_order': False, 'shape': (), }"
        "                                                              \n"
        "\xf9\xff\xff\xff\xff\xff\xff\xff"));
    REQUIRE(image.size() == 136);
    NpyArray a = parse_npy(image, "i8.npy");
    CHECK(a.dtype == DType::int64);
    CHECK(a.shape.empty());
    CHECK(a.numel() == 1);
    REQUIRE(a.values<std::int64_t>().size() == 1);
    CHECK(a.values<std::int64_t>()[0] == -7);
  }
}

TEST_CASE("npy: version 1.0, 2.0 and 3.0 headers") {
  std::string data(lit("\x01\x00\x02\x00\x03\x00"));
  for (int major : {1, 2, 3}) {
    CAPTURE(major);
    NpyArray a = parse_npy(npy_image(major, dict_for("<i2", "(3,)"), data), "v.npy");
    CHECK(a.dtype == DType::int16);
    CHECK(a.shape == std::vector<std::int64_t>{3});
    CHECK(text_of(a.data) == data);
  }
}

TEST_CASE("npy: any header alignment is accepted, with or without the final newline") {
  std::string data(lit("\x00\x00\x80\x3f"));
  for (std::size_t align : {1, 2, 16, 64, 128}) {
    CAPTURE(align);
    NpyArray a = parse_npy(npy_image(1, dict_for("<f4", "()"), data, align), "a.npy");
    CHECK(a.dtype == DType::float32);
    CHECK(a.values<float>()[0] == 1.0f);
  }
}

TEST_CASE("npy: every supported dtype and byte-order mark") {
  struct Case {
    const char* descr;
    DType dtype;
  };
  const Case cases[] = {
      {"<f2", DType::float16}, {"<f4", DType::float32}, {"<f8", DType::float64},
      {"=f4", DType::float32}, {"|f8", DType::float64}, {"|i1", DType::int8},
      {"<i1", DType::int8},    {"=i1", DType::int8},    {">i1", DType::int8},
      {"<i2", DType::int16},   {"<i4", DType::int32},   {"<i8", DType::int64},
      {"=i8", DType::int64},   {"|u1", DType::uint8},   {"<u1", DType::uint8},
      {">u1", DType::uint8},   {"|b1", DType::bool_},   {"<b1", DType::bool_},
      {">b1", DType::bool_},
  };
  for (const Case& c : cases) {
    INFO("descr = " << std::string(c.descr));
    std::size_t size = kiln::dtype_size(c.dtype);
    std::string data(2 * size, '\0');
    data[0] = 1;
    data[size] = 1;
    NpyArray a = parse_npy(npy_image(1, dict_for(c.descr, "(2,)"), data), "d.npy");
    CHECK(a.dtype == c.dtype);
    CHECK(a.shape == std::vector<std::int64_t>{2});
    CHECK(text_of(a.data) == data);
  }
}

TEST_CASE("npy: header dict variations NumPy or hand-written files may use") {
  std::string data(24, '\x07');
  const char* dicts[] = {
      "{'shape': (2, 3), 'fortran_order': False, 'descr': '|u1'}",        // any key order
      "{\"descr\": \"|u1\", \"fortran_order\": False, \"shape\": (2,3)}",  // double quotes
      "  {  'descr' :'|u1' ,'fortran_order':False,'shape':( 2 , 3 , ) ,}  ",
      "{'descr': '|u1', 'fortran_order': False, 'shape': (2L, 3L), }",  // Python 2 longs
      "{'descr': '|u1',\t'fortran_order': False,\r\n'shape': (2, 3)}",
  };
  for (const char* d : dicts) {
    INFO("d = " << std::string(d));
    NpyArray a = parse_npy(npy_image(1, d, std::string_view(data).substr(0, 6)), "h.npy");
    CHECK(a.dtype == DType::uint8);
    CHECK(a.shape == std::vector<std::int64_t>{2, 3});
  }
}

TEST_CASE("npy: 0-d and empty arrays") {
  SUBCASE("0-d") {
    NpyArray a = parse_npy(npy_image(1, dict_for("<f8", "()"), std::string(8, '\0')), "s.npy");
    CHECK(a.shape.empty());
    CHECK(a.numel() == 1);
    CHECK(a.data.size() == 8);
  }
  SUBCASE("a zero dimension makes any shape empty") {
    for (const char* shape : {"(0,)", "(3, 0)", "(0, 2, 5)", "(4000000000, 0, 4000000000)"}) {
      INFO("shape = " << std::string(shape));
      NpyArray a = parse_npy(npy_image(1, dict_for("<f4", shape)), "e.npy");
      CHECK(a.numel() == 0);
      CHECK(a.data.empty());
    }
  }
  SUBCASE("empty arrays still refuse data") {
    check_parse_error(npy_image(1, dict_for("<f4", "(0, 3)"), "x"), "data", "unexpected bytes");
  }
}

TEST_CASE("npy: serialize_npy writes NumPy's header layout") {
  NpyArray a{DType::float32, {2, 3}, bytes_of(std::string(24, '\x11'))};
  std::vector<std::byte> out = serialize_npy(a);
  REQUIRE(out.size() == 128 + 24);
  std::string head = text_of(std::span(out).first(128));
  CHECK(head.substr(0, 8) == lit("\x93NUMPY\x01\x00"));
  CHECK(std::to_integer<int>(out[8]) == 118);
  CHECK(std::to_integer<int>(out[9]) == 0);
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  CHECK(head.substr(10) == dict + std::string(118 - dict.size() - 1, ' ') + "\n");

  SUBCASE("descrs NumPy itself writes") {
    const std::pair<DType, const char*> descrs[] = {
        {DType::float16, "'<f2'"}, {DType::float32, "'<f4'"}, {DType::float64, "'<f8'"},
        {DType::int8, "'|i1'"},    {DType::int16, "'<i2'"},   {DType::int32, "'<i4'"},
        {DType::int64, "'<i8'"},   {DType::uint8, "'|u1'"},   {DType::bool_, "'|b1'"},
    };
    for (const auto& entry : descrs) {
      // Not a structured binding: clang 14 cannot capture one in INFO's lambda.
      DType dtype = entry.first;
      std::string descr = entry.second;
      INFO("descr = " << descr);
      NpyArray b{dtype, {1}, std::vector<std::byte>(kiln::dtype_size(dtype))};
      CHECK(text_of(serialize_npy(b)).find(descr) != std::string::npos);
    }
  }
  SUBCASE("shapes are written as Python tuples") {
    for (const auto& entry : {std::pair{std::vector<std::int64_t>{}, "'shape': (), }"},
                              std::pair{std::vector<std::int64_t>{5}, "'shape': (5,), }"},
                              std::pair{std::vector<std::int64_t>{1, 0, 7}, "'shape': (1, 0, 7), }"}}) {
      std::string text = entry.second;
      INFO("text = " << text);
      NpyArray b{DType::uint8, entry.first, {}};
      b.data.resize(static_cast<std::size_t>(b.numel()));
      CHECK(text_of(serialize_npy(b)).find(text) != std::string::npos);
    }
  }
}

TEST_CASE("npy: serialize then parse round trips every writable dtype and shape") {
  const DType dtypes[] = {DType::float16, DType::float32, DType::float64, DType::int8, DType::int16,
                          DType::int32,   DType::int64,   DType::uint8,   DType::bool_};
  const std::vector<std::int64_t> shapes[] = {{}, {0}, {1}, {7}, {2, 3}, {3, 0, 2}, {2, 1, 3, 1, 2}};
  for (DType dtype : dtypes) {
    for (const auto& shape : shapes) {
      INFO("dtype = " << std::string(kiln::dtype_name(dtype)));
      CAPTURE(shape.size());
      NpyArray a{dtype, shape, {}};
      a.data.resize(static_cast<std::size_t>(a.numel()) * kiln::dtype_size(dtype));
      for (std::size_t i = 0; i < a.data.size(); ++i) {
        a.data[i] = static_cast<std::byte>(dtype == DType::bool_ ? i % 2 : i * 37 + 5);
      }
      std::vector<std::byte> image = serialize_npy(a);
      std::size_t header_len =
          std::to_integer<std::size_t>(image[8]) | std::to_integer<std::size_t>(image[9]) << 8;
      CHECK((10 + header_len) % 64 == 0);
      CHECK(std::to_integer<char>(image[10 + header_len - 1]) == '\n');
      NpyArray b = parse_npy(image, "rt.npy");
      CHECK(b.dtype == a.dtype);
      CHECK(b.shape == a.shape);
      CHECK(b.data == a.data);
    }
  }
}

TEST_CASE("npy: serialize_npy switches to version 2.0 when the header passes 65535 bytes") {
  // 22 000 dimensions of 1 make a dict of about 66 000 bytes.
  NpyArray a{DType::int8, std::vector<std::int64_t>(22000, 1), {std::byte{5}}};
  std::vector<std::byte> out = serialize_npy(a);
  CHECK(std::to_integer<int>(out[6]) == 2);
  CHECK(std::to_integer<int>(out[7]) == 0);
  std::size_t header_len = 0;
  for (std::size_t i = 0; i < 4; ++i) header_len |= std::to_integer<std::size_t>(out[8 + i]) << (8 * i);
  CHECK(header_len > 65535);
  CHECK((12 + header_len) % 64 == 0);
  REQUIRE(out.size() == 12 + header_len + 1);
  CHECK(std::to_integer<char>(out[12 + header_len - 1]) == '\n');
  CHECK(std::to_integer<int>(out.back()) == 5);
  CHECK(text_of(std::span(out).subspan(12, 40)).starts_with("{'descr': '|i1', 'fortran_order': False"));
  // Such a header is past the reader's 64 KiB bound, which is there for hostile files.
  check_parse_error(out, "header", "64 KiB");
}

TEST_CASE("npy: serialize_npy refuses what .npy cannot hold") {
  SUBCASE("bfloat16 has no NumPy descr") {
    NpyArray a{DType::bfloat16, {2}, std::vector<std::byte>(4)};
    check_error([&] { serialize_npy(a); }, "descr", "bfloat16");
    TempDir dir;
    std::string path = dir.file("bf16.npy");
    try {
      write_npy(path, a);
      FAIL_CHECK("write_npy wrote bfloat16");
    } catch (const Error& e) {
      CHECK(e.file() == path);
      CHECK(e.message().find("bfloat16") != std::string::npos);
    }
    CHECK_FALSE(fs::exists(path));
  }
  SUBCASE("data that disagrees with the shape") {
    for (const NpyArray& a : {NpyArray{DType::float32, {2, 3}, std::vector<std::byte>(23)},
                              NpyArray{DType::float32, {-1}, {}},
                              NpyArray{DType::int64, {1LL << 40, 1LL << 40}, {}}}) {
      try {
        serialize_npy(a);
        FAIL_CHECK("no error");
      } catch (const Error& e) {
        CHECK(e.kind() == kiln::ErrorKind::usage);
        CHECK(e.where() == "data");
      }
    }
  }
}

TEST_CASE("npy: write_npy then read_npy round trips through a file") {
  TempDir dir;
  NpyArray a{DType::float64, {2, 2}, {}};
  for (double v : {1.5, -2.25, 1e300, 0.0}) {
    auto bytes = std::as_bytes(std::span(&v, 1));
    a.data.insert(a.data.end(), bytes.begin(), bytes.end());
  }
  std::string path = dir.file("rt.npy");
  write_npy(path, a);
  NpyArray b = read_npy(path);
  CHECK(b.dtype == DType::float64);
  CHECK(b.shape == a.shape);
  CHECK(b.data == a.data);
  CHECK(b.values<double>()[2] == 1e300);

  // A small v1 file whose 12-byte prefix read runs into the header text.
  std::string small = dir.file("small.npy");
  write_file(small, npy_image(1, "{'descr':'|u1','fortran_order':False,'shape':(1,)}", "\x09", 1));
  CHECK(std::to_integer<int>(read_npy(small).data.at(0)) == 9);
}

TEST_CASE("npy: read_npy errors name the path") {
  TempDir dir;
  check_error([&] { read_npy(dir.file("missing.npy")); }, "", "cannot open");
  try {
    read_npy(dir.file("missing.npy"));
  } catch (const Error& e) {
    CHECK(e.file() == dir.file("missing.npy"));
    CHECK(std::string(e.what()).find("missing.npy") != std::string::npos);
  }
  check_error([&] { read_npy(dir.path.string()); }, "", "not a regular file");

  std::string bad = dir.file("bad.npy");
  write_file(bad, npy_image(1, dict_for(">f4", "(1,)"), "abcd"));
  try {
    read_npy(bad);
    FAIL_CHECK("no error");
  } catch (const Error& e) {
    CHECK(e.file() == bad);
    CHECK(e.where() == "descr");
  }

  std::string dir_path = dir.file("out_dir");
  fs::create_directories(dir_path);
  check_error([&] { write_npy(dir_path, NpyArray{DType::uint8, {}, {std::byte{1}}}); }, "",
              "cannot open for writing");
}

TEST_CASE("npy: read_npy refuses files over 16 GiB before reading them") {
  TempDir dir;
  std::string path = dir.file("huge.npy");
  write_file(path, npy_image(1, dict_for("|u1", "(17179869185,)")));
  std::error_code ec;
  // Sparse where the filesystem allows; skipped where it cannot grow the file.
  fs::resize_file(path, (std::uint64_t{16} << 30) + 1 + 64, ec);
  if (ec) {
    MESSAGE("skipped: cannot make a sparse 16 GiB file here: " << ec.message());
    return;
  }
  check_error([&] { read_npy(path); }, "", "16 GiB");
}

TEST_CASE("npy: malformed prefixes") {
  check_parse_error(bytes_of("PK\x03\x04 not npy at all"), "magic", "not a .npy file");
  check_parse_error(bytes_of(""), "magic", "too short");
  check_parse_error(bytes_of("\x93NUM"), "magic", "too short");
  check_parse_error(npy_image(4, dict_for("<f4", "()"), "abcd"), "version", "4.0");
  check_parse_error(npy_image(1, dict_for("<f4", "()"), "abcd", 64, 1), "version", "1.1");
  check_parse_error(npy_image(0, dict_for("<f4", "()"), "abcd"), "version", "0.0");
  check_parse_error(bytes_of(lit("\x93NUMPY\x02\x00\x10\x00")), "header", "truncated");
}

TEST_CASE("npy: a header length over 64 KiB is refused before it is read") {
  // A 12-byte file claiming a 4 GiB header.
  check_parse_error(bytes_of(lit("\x93NUMPY\x02\x00\xff\xff\xff\xff")), "header", "64 KiB");
  check_parse_error(bytes_of(lit("\x93NUMPY\x03\x00\x01\x00\x01\x00")), "header", "64 KiB");
  // Exactly 64 KiB is allowed through to the dict scanner.
  std::string dict = dict_for("|u1", "()");
  auto image = npy_image(2, dict + std::string(65536 - dict.size() - 1, ' ') + "\n", "\x01", 1);
  REQUIRE(image.size() == 12 + 65536 + 1);
  CHECK(parse_npy(image, "b.npy").data.size() == 1);
}

TEST_CASE("npy: unsupported descrs name the descr") {
  check_parse_error(npy_image(1, dict_for(">f4", "(1,)"), "abcd"), "descr", "big-endian data ('>f4')");
  check_parse_error(npy_image(1, dict_for(">i8", "(1,)"), "abcdefgh"), "descr", "big-endian");
  check_parse_error(npy_image(1, dict_for("|O", "(1,)"), "abcdefgh"), "descr", "object arrays ('|O')");
  check_parse_error(npy_image(1, dict_for("<U5", "(1,)"), "abcdefgh"), "descr", "'<U5'");
  check_parse_error(npy_image(1, dict_for("|S3", "(1,)"), "abc"), "descr", "'|S3'");
  check_parse_error(npy_image(1, dict_for("<u2", "(1,)"), "ab"), "descr", "'<u2'");
  check_parse_error(npy_image(1, dict_for("<c8", "(1,)"), "abcdefgh"), "descr", "'<c8'");
  check_parse_error(npy_image(1, dict_for("<M8[ns]", "(1,)"), "abcdefgh"), "descr", "'<M8[ns]'");
  check_parse_error(npy_image(1, dict_for("f4", "(1,)"), "abcd"), "descr", "'f4'");
  check_parse_error(npy_image(1, dict_for("", "(1,)"), "abcd"), "descr", "''");
  check_parse_error(npy_image(3, dict_for("<\xc3\xa9", "(1,)"), "abcd"), "descr", "'<\\xc3\\xa9'");
  check_parse_error(
      npy_image(1, "{'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, 'shape': (1,), }",
                "abcdefgh"),
      "descr", "structured");
  check_parse_error(npy_image(1, "{'descr': 4, 'fortran_order': False, 'shape': (1,), }", "abcd"), "header",
                    "expected a string for 'descr'");
}

TEST_CASE("npy: Fortran order is refused") {
  check_parse_error(npy_image(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }",
                              std::string(16, 'x')),
                    "header", "Fortran");
}

TEST_CASE("npy: malformed header dicts") {
  struct Case {
    const char* dict;
    const char* needle;
  };
  const Case cases[] = {
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1, }", "unknown key 'extra'"},
      {"{'descr': '<f4', 'fortran_order': False, }", "no 'shape' key"},
      {"{'descr': '<f4', 'shape': (1,), }", "no 'fortran_order' key"},
      {"{'fortran_order': False, 'shape': (1,), }", "no 'descr' key"},
      {"{}", "no 'descr' key"},
      {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,), }",
       "duplicate key 'descr'"},
      {"{'descr': '<f4', 'fortran_order': False, 'fortran_order': False, 'shape': (1,)}", "duplicate key"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'shape': (1,)}", "duplicate key 'shape'"},
      {"{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }", "True or False"},
      {"{'descr': '<f4', 'fortran_order': false, 'shape': (1,), }", "True or False"},
      {"{'descr': '<f4' 'fortran_order': False, 'shape': (1,), }", "',' or '}'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), ", "expected a key"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,)", "',' or '}'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), } x", "after the header dict"},
      {"{'descr: '<f4', 'fortran_order': False, 'shape': (1,), }", "expected ':'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x", "unterminated string"},
      {"{'de\\x73cr': '<f4', 'fortran_order': False, 'shape': (1,), }", "escapes"},
      {"{descr: '<f4', 'fortran_order': False, 'shape': (1,), }", "expected a key"},
      {"('descr', '<f4')", "start with '{'"},
      {"", "start with '{'"},
  };
  for (const Case& c : cases) {
    INFO("dict = " << std::string(c.dict));
    check_parse_error(npy_image(1, c.dict, "abcd"), "header", c.needle);
  }
}

TEST_CASE("npy: malformed and hostile shapes") {
  struct Case {
    const char* shape;
    const char* needle;
  };
  const Case cases[] = {
      {"(-1,)", "negative dimension -1"},
      {"(2, -3)", "negative dimension -3"},
      {"[1]", "not a tuple"},
      {"1", "not a tuple"},
      {"(1, 2", "expected a dimension"},  // dict_for appends ", }"
      {"(1 2)", "',' or ')'"},
      {"(1,,)", "expected a dimension"},
      {"(a,)", "expected a dimension"},
      {"(1.5,)", "',' or ')'"},
      {"(99999999999999999999,)", "does not fit in int64"},
      {"(9223372036854775808,)", "does not fit in int64"},
      {"(4000000000, 4000000000)", "too large"},
      {"(3037000500, 3037000500)", "too large"},
      {"(9223372036854775807,)", "too large"},  // fits as a count, not as float32 bytes
  };
  for (const Case& c : cases) {
    INFO("shape = " << std::string(c.shape));
    check_parse_error(npy_image(1, dict_for("<f4", c.shape), "abcd"), "shape", c.needle);
  }
}

TEST_CASE("npy: the data size must match the shape exactly, checked before allocating") {
  // Each of these tiny files claims far more data than any test machine could allocate; a
  // reader that allocated first would die with bad_alloc or an ASan report, not a kiln::Error.
  check_parse_error(npy_image(1, dict_for("|i1", "(2000000000, 2000000000)"), "abcd"), "data",
                    "needs 4000000000000000000 bytes of data but the file has 4");
  check_parse_error(npy_image(1, dict_for("<i8", "(1000000, 1000000)"), ""), "data", "truncated");
  check_parse_error(npy_image(1, dict_for("<f4", "(9223372036854775807, 0)"), "abcd"), "data",
                    "unexpected bytes");
  check_parse_error(npy_image(1, dict_for("<f4", "(2, 3)"), std::string(23, 'x')), "data",
                    "needs 24 bytes of data but the file has 23");
  check_parse_error(npy_image(1, dict_for("<f4", "(2, 3)"), std::string(25, 'x')), "data",
                    "1 unexpected bytes after the data");
  check_parse_error(npy_image(1, dict_for("<f4", "()"), ""), "data", "truncated");

  TempDir dir;
  std::string path = dir.file("hostile.npy");
  write_file(path, npy_image(1, dict_for("<f8", "(4000000000, 4000000000)"), "abcdefgh"));
  check_error([&] { read_npy(path); }, "shape", "too large");
  write_file(path, npy_image(1, dict_for("<f8", "(40000000000,)"), "abcdefgh"));
  check_error([&] { read_npy(path); }, "data", "truncated");
}

TEST_CASE("npy: bool data must be 0 or 1") {
  check_parse_error(npy_image(1, dict_for("|b1", "(3,)"), lit("\x01\x02\x00")), "data",
                    "bool element 1 is 2");
}

TEST_CASE("npy: every truncation of a valid file is an error, never a crash") {
  TempDir dir;
  for (int major : {1, 2}) {
    CAPTURE(major);
    auto image = npy_image(major, dict_for("<f4", "(2, 3)"), std::string(24, '\x42'));
    REQUIRE_NOTHROW(parse_npy(image, "t.npy"));
    std::string path = dir.file("t.npy");
    for (std::size_t n = 0; n < image.size(); ++n) {
      CAPTURE(n);
      // A copy of exactly n bytes, so ASan sees any read past the end.
      std::vector<std::byte> cut(image.begin(), image.begin() + static_cast<std::ptrdiff_t>(n));
      CHECK_THROWS_AS(parse_npy(cut, "t.npy"), Error);
      write_file(path, cut);
      CHECK_THROWS_AS(read_npy(path), Error);
    }
  }
}

TEST_CASE("npy: NumPy-written fixture files match their manifests") {
  std::vector<kiln::testing::Fixture> fixtures = kiln::testing::all_fixtures();
  CHECK_MESSAGE(!fixtures.empty(), "no fixtures under " << kiln::testing::fixtures_root().string());
  std::size_t files = 0;
  for (const auto& fx : fixtures) {
    for (const auto& c : fx.manifest.at("cases").as_array()) {
      for (const char* list : {"inputs", "outputs"}) {
        const kiln::format::JsonValue* entries = c.find(list);
        if (!entries) continue;
        for (const auto& entry : entries->as_array()) {
          std::string path = (fx.dir / entry.at("file").as_string()).string();
          CAPTURE(path);
          NpyArray a = read_npy(path);
          CHECK(kiln::dtype_name(a.dtype) == entry.at("dtype").as_string());
          std::vector<std::int64_t> shape;
          for (const auto& d : entry.at("shape").as_array()) shape.push_back(d.as_int());
          CHECK(a.shape == shape);
          CHECK(a.data.size() == static_cast<std::size_t>(a.numel()) * kiln::dtype_size(a.dtype));
          CHECK(sha256_hex(a.data) == entry.at("sha256").as_string());
          ++files;
        }
      }
    }
  }
  MESSAGE("checked " << files << " .npy files in " << fixtures.size() << " fixtures");
}
