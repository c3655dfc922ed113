// Tests of format/pickle.cpp: Python-written protocol 2 data, hand-assembled PyTorch
// pickles, every fixture archive's pickles, and hostile input that must fail cleanly.
#include "format/pickle.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "format/file_bytes.hpp"
#include "format/zip_reader.hpp"
#include "kiln/error.hpp"
#include "tests/support/bytes.hpp"
#include "tests/support/fixtures.hpp"

namespace {

using kiln::DType;
using kiln::Error;
using kiln::format::PickleLimits;
using kiln::format::PickleRef;
using kiln::format::PickleValue;
using kiln::format::unpickle;
using Kind = PickleValue::Kind;

using kiln::testing::bytes_of;
using kiln::testing::lit;

PickleRef load(std::string_view image, PickleLimits limits = {}) {
  return unpickle(bytes_of(image), "m.pt", "m/data.pkl", limits);
}

// Checks that unpickling throws a bad_input kiln::Error for m.pt:m/data.pkl whose message
// contains `needle` (and, when given, starts "at byte <at>: ").
void check_error(std::string_view image, std::string_view needle, long at = -1, PickleLimits limits = {}) {
  try {
    load(image, limits);
    FAIL_CHECK("no kiln::Error; expected one saying '" << needle << "'");
  } catch (const Error& e) {
    INFO("what(): " << std::string(e.what()));
    CHECK(e.kind() == kiln::ErrorKind::bad_input);
    CHECK(e.file() == "m.pt");
    CHECK(e.where() == "m/data.pkl");
    CHECK(e.message().find(needle) != std::string::npos);
    CHECK(e.message().rfind("at byte ", 0) == 0);
    if (at >= 0) CHECK(e.message().rfind("at byte " + std::to_string(at) + ": ", 0) == 0);
  }
}

// Assembles a pickle opcode by opcode; starts with PROTO 2.
struct P {
  std::string b{"\x80\x02", 2};

  P& raw(std::string_view s) { b += s; return *this; }
  P& op(int c) { b += static_cast<char>(c); return *this; }
  P& le(std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) b += static_cast<char>((v >> (8 * i)) & 0xff);
    return *this;
  }
  P& mark() { return op('('); }
  P& stop() { return op('.'); }
  P& none() { return op('N'); }
  P& boolean(bool v) { return op(v ? 0x88 : 0x89); }
  P& int1(int v) { return op('K').le(static_cast<std::uint64_t>(v), 1); }
  P& integer(std::int64_t v) { return op(0x8a).op(8).le(static_cast<std::uint64_t>(v), 8); }
  P& str(std::string_view s) { return op('X').le(s.size(), 4).raw(s); }
  P& global(std::string_view module, std::string_view name) {
    return op('c').raw(module).raw("\n").raw(name).raw("\n");
  }
  P& put(int i) { return op('q').le(static_cast<std::uint64_t>(i), 1); }
  P& get(int i) { return op('h').le(static_cast<std::uint64_t>(i), 1); }
  P& tuple() { return op('t'); }
  P& empty_tuple() { return op(')'); }
  P& reduce() { return op('R'); }
  P& int_tuple(const std::vector<int>& v) {
    mark();
    for (int x : v) int1(x);
    return tuple();
  }
  // ("storage", torch.<type>, key, "cpu", numel) BINPERSID
  P& storage(std::string_view type, std::string_view key, int numel) {
    mark().str("storage").global("torch", type).str(key).str("cpu");
    if (numel < 256) int1(numel); else integer(numel);
    return tuple().op('Q');
  }
  P& hooks() { return global("collections", "OrderedDict").empty_tuple().reduce(); }
  // torch._utils._rebuild_tensor_v2(<storage already pushed by `push_storage`>, ...)
  template <typename F>
  P& tensor(F push_storage, int offset, const std::vector<int>& sizes, const std::vector<int>& strides,
            bool requires_grad = false) {
    global("torch._utils", "_rebuild_tensor_v2").mark();
    push_storage(*this);
    int1(offset).int_tuple(sizes).int_tuple(strides).boolean(requires_grad).hooks();
    return tuple().reduce();
  }
  P& float_tensor(std::string_view key, int numel, const std::vector<int>& sizes,
                  const std::vector<int>& strides) {
    return tensor([&](P& p) { p.storage("FloatStorage", key, numel); }, 0, sizes, strides);
  }
  std::string done() { stop(); return b; }
};

std::vector<std::int64_t> ints(const PickleValue& list) {
  std::vector<std::int64_t> out;
  for (const PickleRef& e : list.items) {
    REQUIRE(e->kind == Kind::integer);
    out.push_back(e->integer);
  }
  return out;
}

const PickleRef& entry(const PickleValue& dict, std::string_view key) {
  for (const auto& [k, v] : dict.entries) {
    if (k->kind == Kind::string && k->text == key) return v;
  }
  FAIL("no key " << key);
  static PickleRef none;
  return none;
}

// Nested EMPTY_LISTs appended one into the next, `n` deep.
std::string nested_lists(std::size_t n) {
  P p;
  for (std::size_t i = 0; i < n; ++i) p.op(']');
  for (std::size_t i = 1; i < n; ++i) p.op('a');
  return p.done();
}

// The error unpickling gives, or nullopt when it succeeds. Not inlined, so that each caught
// exception is caught in a frame of its own: clang 14's ASan (use-after-return in runtime
// mode) leaks a little stack for every exception caught in a loop of one frame, and the
// loops below catch tens of thousands.
[[gnu::noinline]] std::optional<Error> unpickle_error(std::span<const std::byte> bytes, const std::string& file,
                                                      const std::string& record) {
  try {
    unpickle(bytes, file, record);
    return std::nullopt;
  } catch (const Error& e) {
    return e;
  }
}

struct FixturePickles {
  std::string name;
  std::string stem;  // the archive's root folder
  std::shared_ptr<kiln::format::ZipReader> zip;
  std::span<const std::byte> data, constants;
  bool has_tensors;  // op fixtures (op_*) may have no parameters or buffers
};

std::vector<FixturePickles> fixture_pickles() {
  std::vector<FixturePickles> out;
  for (const auto& f : kiln::testing::all_fixtures()) {
    auto path = (f.dir / f.manifest.at("archive").as_string()).string();
    auto zip = std::make_shared<kiln::format::ZipReader>(kiln::format::FileBytes::map(path));
    REQUIRE(!zip->entries().empty());
    const std::string& first = zip->entries().front().name;
    std::string stem = first.substr(0, first.find('/'));
    const auto* data = zip->find(stem + "/data.pkl");
    const auto* constants = zip->find(stem + "/constants.pkl");
    REQUIRE(data);
    REQUIRE(constants);
    out.push_back({f.generation + "/" + f.name, stem, zip, zip->view(*data), zip->view(*constants),
                   f.manifest.at("tensors").size() > 0});
  }
  REQUIRE(!out.empty());
  return out;
}

}  // namespace

TEST_CASE("pickle: Python's protocol 2 ints of every width") {
  // pickle.dumps([0, 1, 255, 256, 65535, 65536, -1, -2**31, 2**31-1, 2**31, -2**31-1,
  //               2**63-1, -2**63, 2**40, -129], protocol=2)  (Python 3.11)
  auto v = load(lit(
      "\x80\x02]q\x00(K\x00K\x01K\xffM\x00\x01M\xff\xffJ\x00\x00\x01\x00J\xff\xff\xff\xffJ\x00\x00\x00\x80"
      "J\xff\xff\xff\x7f\x8a\x05\x00\x00\x00\x80\x00\x8a\x05\xff\xff\xff\x7f\xff\x8a\x08\xff\xff\xff\xff\xff"
      "\xff\xff\x7f\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80\x8a\x06\x00\x00\x00\x00\x00\x01J\x7f\xff\xff\xff"
      "e."));
  REQUIRE(v->kind == Kind::list);
  CHECK(ints(*v) == std::vector<std::int64_t>{0, 1, 255, 256, 65535, 65536, -1, -2147483648LL, 2147483647,
                                               2147483648LL, -2147483649LL,
                                               std::numeric_limits<std::int64_t>::max(),
                                               std::numeric_limits<std::int64_t>::min(), 1LL << 40, -129});
  // pickle.dumps(2**64, protocol=2): LONG1 of 9 bytes.
  check_error(lit("\x80\x02\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01."), "LONG1 of 9 bytes", 2);
}

TEST_CASE("pickle: LONG1 of every length up to 8 bytes, two's complement") {
  struct Case {
    std::string_view bytes;
    std::int64_t value;
  };
  const Case cases[] = {
      {lit(""), 0},
      {lit("\xff"), -1},
      {lit("\x7f"), 127},
      {lit("\x80"), -128},
      {lit("\x80\x00"), 128},
      {lit("\x00\x80"), -32768},
      {lit("\x01\x02\x03"), 0x030201},
      {lit("\xff\xff\x7f\xff"), static_cast<std::int32_t>(0xff7fffffu)},
      {lit("\x00\x00\x00\x00\x80"), -(1LL << 39)},
      {lit("\x01\x00\x00\x00\x00\x00"), 1},
      {lit("\xff\xff\xff\xff\xff\xff\x7f"), (1LL << 55) - 1},
      {lit("\x00\x00\x00\x00\x00\x00\x00\x80"), std::numeric_limits<std::int64_t>::min()},
  };
  for (const Case& c : cases) {
    CAPTURE(c.bytes.size());
    P p;
    p.op(0x8a).op(static_cast<int>(c.bytes.size())).raw(c.bytes);
    auto v = load(p.done());
    REQUIRE(v->kind == Kind::integer);
    CHECK(v->integer == c.value);
  }
}

TEST_CASE("pickle: Python's protocol 2 floats, strings and containers") {
  SUBCASE("floats, big-endian doubles") {
    // pickle.dumps([0.0, -1.5, 1e300, float('inf'), 2.5e-310], protocol=2)
    auto v = load(lit(
        "\x80\x02]q\x00(G\x00\x00\x00\x00\x00\x00\x00\x00G\xbf\xf8\x00\x00\x00\x00\x00\x00G~7\xe4<\x88\x00u\x9c"
        "G\x7f\xf0\x00\x00\x00\x00\x00\x00G\x00\x00.\x05\x5c\x9a\x3f" "le."));
    REQUIRE(v->kind == Kind::list);
    REQUIRE(v->items.size() == 5);
    for (const auto& e : v->items) REQUIRE(e->kind == Kind::floating);
    CHECK(v->items[0]->floating == 0.0);
    CHECK(v->items[1]->floating == -1.5);
    CHECK(v->items[2]->floating == 1e300);
    CHECK(std::isinf(v->items[3]->floating));
    CHECK(v->items[4]->floating == 2.5e-310);
  }
  SUBCASE("strings are kept as their UTF-8 bytes") {
    // pickle.dumps(["", "abc", "h\u00e9llo", "\u65e5\u672c"], protocol=2)
    auto v = load(lit(
        "\x80\x02]q\x00(X\x00\x00\x00\x00q\x01X\x03\x00\x00\x00" "abcq\x02X\x06\x00\x00\x00h\xc3\xa9llo"
        "q\x03X\x06\x00\x00\x00\xe6\x97\xa5\xe6\x9c\xacq\x04" "e."));
    REQUIRE(v->items.size() == 4);
    CHECK(v->items[0]->text.empty());
    CHECK(v->items[1]->text == "abc");
    CHECK(v->items[2]->text == "h\xc3\xa9llo");
    CHECK(v->items[3]->text == "\xe6\x97\xa5\xe6\x9c\xac");
    for (const auto& e : v->items) CHECK(e->kind == Kind::string);
  }
  SUBCASE("a dict of lists, tuples of every length, None and bools") {
    // pickle.dumps({"a": 1, "b": [1, 2], "c": (1,), "d": (1, 2), "e": (1, 2, 3),
    //               "f": (1, 2, 3, 4), "g": None, "h": True, "i": False, "j": ()}, protocol=2)
    auto v = load(lit(
        "\x80\x02}q\x00(X\x01\x00\x00\x00" "aq\x01K\x01X\x01\x00\x00\x00" "bq\x02]q\x03(K\x01K\x02"
        "eX\x01\x00\x00\x00" "cq\x04K\x01\x85q\x05X\x01\x00\x00\x00" "dq\x06K\x01K\x02\x86q\x07X\x01\x00\x00\x00"
        "eq\x08K\x01K\x02K\x03\x87q\x09X\x01\x00\x00\x00" "fq\x0a(K\x01K\x02K\x03K\x04tq\x0bX\x01\x00\x00\x00"
        "gq\x0cNX\x01\x00\x00\x00hq\x0d\x88X\x01\x00\x00\x00iq\x0e\x89X\x01\x00\x00\x00jq\x0f)u."));
    REQUIRE(v->kind == Kind::dict);
    REQUIRE(v->entries.size() == 10);
    const char* keys = "abcdefghij";
    for (std::size_t i = 0; i < 10; ++i) CHECK(v->entries[i].first->text == std::string(1, keys[i]));
    CHECK(entry(*v, "a")->integer == 1);
    CHECK(entry(*v, "b")->kind == Kind::list);
    CHECK(ints(*entry(*v, "b")) == std::vector<std::int64_t>{1, 2});
    CHECK(entry(*v, "c")->kind == Kind::tuple);
    CHECK(ints(*entry(*v, "c")) == std::vector<std::int64_t>{1});
    CHECK(ints(*entry(*v, "d")) == std::vector<std::int64_t>{1, 2});
    CHECK(ints(*entry(*v, "e")) == std::vector<std::int64_t>{1, 2, 3});
    CHECK(ints(*entry(*v, "f")) == std::vector<std::int64_t>{1, 2, 3, 4});
    CHECK(entry(*v, "g")->kind == Kind::none);
    CHECK(entry(*v, "h")->kind == Kind::boolean);
    CHECK(entry(*v, "h")->boolean);
    CHECK_FALSE(entry(*v, "i")->boolean);
    CHECK(entry(*v, "j")->kind == Kind::tuple);
    CHECK(entry(*v, "j")->items.empty());
  }
  SUBCASE("a shared list is one value, through the memo") {
    // a = [7]; pickle.dumps([a, a], protocol=2)
    auto v = load(lit("\x80\x02]q\x00(]q\x01K\x07" "ah\x01" "e."));
    REQUIRE(v->items.size() == 2);
    CHECK(v->items[0] == v->items[1]);
    CHECK(ints(*v->items[0]) == std::vector<std::int64_t>{7});
  }
  SUBCASE("bytes: Python's protocol 2 calls _codecs.encode, which is refused") {
    // pickle.dumps(b"\xff\x00", protocol=2)
    check_error(lit("\x80\x02" "c_codecs\x0a" "encode\x0aq\x00X\x03\x00\x00\x00\xc3\xbf\x00q\x01X\x06\x00\x00\x00"
                    "latin1q\x02\x86q\x03Rq\x04."),
                "GLOBAL '_codecs.encode' is not allowed", 2);
  }
}

TEST_CASE("pickle: opcodes outside PyTorch's writer") {
  SUBCASE("LIST, APPEND, DICT, SETITEM") {
    auto v = load(P().mark().int1(1).int1(2).op('l').int1(3).op('a').mark().str("k").int1(4).op('d')
                      .str("k2").int1(5).op('s').op(0x86).done());
    REQUIRE(v->kind == Kind::tuple);
    CHECK(ints(*v->items[0]) == std::vector<std::int64_t>{1, 2, 3});
    const PickleValue& d = *v->items[1];
    REQUIRE(d.kind == Kind::dict);
    REQUIRE(d.entries.size() == 2);
    CHECK(entry(d, "k")->integer == 4);
    CHECK(entry(d, "k2")->integer == 5);
  }
  SUBCASE("POP, POP_MARK, DUP, MEMOIZE") {
    auto v = load(P().int1(9).op('0').mark().int1(1).int1(2).op('1').str("x").op(0x94).op('2').op('h').le(0, 1)
                      .op(0x87).done());
    REQUIRE(v->kind == Kind::tuple);
    REQUIRE(v->items.size() == 3);
    CHECK(v->items[0] == v->items[1]);
    CHECK(v->items[1] == v->items[2]);
    CHECK(v->items[0]->text == "x");
  }
  SUBCASE("every string opcode gives raw bytes") {
    std::string blob("\xff\x00\xfe", 3);
    auto v = load(P().mark()
                      .op('T').le(3, 4).raw(blob)
                      .op('U').le(3, 1).raw(blob)
                      .op('B').le(3, 4).raw(blob)
                      .op('C').le(3, 1).raw(blob)
                      .op(0x8c).le(3, 1).raw(blob)
                      .op(0x8d).le(3, 8).raw(blob)
                      .op('X').le(3, 4).raw(blob)
                      .tuple().done());
    REQUIRE(v->items.size() == 7);
    for (const auto& e : v->items) {
      CHECK(e->kind == Kind::string);
      CHECK(e->text == blob);
    }
  }
  SUBCASE("LONG_BINPUT and LONG_BINGET with a 32-bit key") {
    auto v = load(P().str("s").op('r').le(0xfffffffe, 4).op('0').op('j').le(0xfffffffe, 4).done());
    CHECK(v->text == "s");
  }
}

TEST_CASE("pickle: dict keys compare the way Python's do") {
  // {"a": 1, "a": 2} keeps one entry; True, 1 and 1.0 are one key; 2.5 and "2.5" are two.
  P p;
  p.op('}').mark().str("a").int1(1).str("a").int1(2).boolean(true).int1(3).int1(1).int1(4)
      .op('G').raw(lit("\x3f\xf0\x00\x00\x00\x00\x00\x00")).int1(5)
      .op('G').raw(lit("\x40\x04\x00\x00\x00\x00\x00\x00")).int1(6).str("2.5").int1(7).op('u');
  auto v = load(p.done());
  REQUIRE(v->kind == Kind::dict);
  REQUIRE(v->entries.size() == 4);
  CHECK(v->entries[0].first->text == "a");
  CHECK(v->entries[0].second->integer == 2);
  CHECK(v->entries[1].first->kind == Kind::boolean);  // the first key object stays
  CHECK(v->entries[1].second->integer == 5);
  CHECK(v->entries[2].first->floating == 2.5);
  CHECK(v->entries[3].first->text == "2.5");
}

TEST_CASE("pickle: a tensor rebuilt from a storage persistent id") {
  // What torch.jit.save writes for a (2, 3) float tensor and a transposed view of the
  // same storage, as in data.pkl.
  P p;
  p.mark();
  p.tensor([](P& q) { q.storage("FloatStorage", "0", 6).put(1); }, 0, {2, 3}, {3, 1});
  p.tensor([](P& q) { q.get(1); }, 0, {3, 2}, {1, 3}, true);
  p.tensor([](P& q) { q.get(1); }, 4, {2}, {1});
  p.tuple();
  auto v = load(p.done());
  REQUIRE(v->kind == Kind::tuple);
  REQUIRE(v->items.size() == 3);
  const auto& a = v->items[0]->tensor;
  const auto& b = v->items[1]->tensor;
  const auto& c = v->items[2]->tensor;
  for (const auto& t : v->items) CHECK(t->kind == Kind::tensor);
  REQUIRE(a.storage);
  CHECK(a.storage == b.storage);
  CHECK(a.storage == c.storage);
  CHECK(a.storage->kind == Kind::storage);
  const auto& s = a.storage->storage;
  CHECK(s.type_name == "FloatStorage");
  CHECK(s.dtype == DType::float32);
  CHECK(s.element_size == 4);
  CHECK(s.key == "0");
  CHECK(s.location == "cpu");
  CHECK(s.numel == 6);
  CHECK(a.sizes == std::vector<std::int64_t>{2, 3});
  CHECK(a.strides == std::vector<std::int64_t>{3, 1});
  CHECK(a.storage_offset == 0);
  CHECK_FALSE(a.requires_grad);
  CHECK_FALSE(a.is_parameter);
  CHECK_FALSE(a.quantized);
  CHECK(b.sizes == std::vector<std::int64_t>{3, 2});
  CHECK(b.strides == std::vector<std::int64_t>{1, 3});
  CHECK(b.requires_grad);
  CHECK(c.storage_offset == 4);

  SUBCASE("a 0-d tensor and an empty one") {
    P q;
    q.mark();
    q.tensor([](P& r) { r.storage("LongStorage", "7", 1); }, 0, {}, {});
    q.tensor([](P& r) { r.storage("LongStorage", "8", 0); }, 0, {0, 5}, {5, 1});
    auto t = load(q.tuple().done());
    CHECK(t->items[0]->tensor.sizes.empty());
    CHECK(t->items[0]->tensor.storage->storage.dtype == DType::int64);
    CHECK(t->items[1]->tensor.sizes == std::vector<std::int64_t>{0, 5});
  }
  SUBCASE("math-bit metadata: all false is fine, a set bit is refused") {
    auto with_meta = [](bool neg) {
      P q;
      q.global("torch._utils", "_rebuild_tensor_v2").mark().storage("FloatStorage", "0", 1).int1(0)
          .int_tuple({}).int_tuple({}).boolean(false).hooks()
          .op('}').str("neg").boolean(neg).op('s').tuple().reduce();
      return q.done();
    };
    CHECK(load(with_meta(false))->kind == Kind::tensor);
    check_error(with_meta(true), "tensor metadata 'neg' is not supported");
  }
}

TEST_CASE("pickle: every storage type") {
  struct Case {
    const char* name;
    std::optional<DType> dtype;
    std::size_t size;
  };
  const Case cases[] = {
      {"FloatStorage", DType::float32, 4},  {"DoubleStorage", DType::float64, 8},
      {"HalfStorage", DType::float16, 2},   {"BFloat16Storage", DType::bfloat16, 2},
      {"LongStorage", DType::int64, 8},     {"IntStorage", DType::int32, 4},
      {"ShortStorage", DType::int16, 2},    {"CharStorage", DType::int8, 1},
      {"ByteStorage", DType::uint8, 1},     {"BoolStorage", DType::bool_, 1},
      {"QInt8Storage", std::nullopt, 1},    {"QUInt8Storage", std::nullopt, 1},
      {"QInt32Storage", std::nullopt, 4},   {"QUInt4x2Storage", std::nullopt, 1},
      {"ComplexFloatStorage", std::nullopt, 8}, {"ComplexDoubleStorage", std::nullopt, 16},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    auto v = load(P().storage(c.name, "k_1-x", 3).done());
    REQUIRE(v->kind == Kind::storage);
    CHECK(v->storage.type_name == c.name);
    CHECK(v->storage.dtype == c.dtype);
    CHECK(v->storage.element_size == c.size);
    CHECK(v->storage.key == "k_1-x");
    CHECK(v->storage.numel == 3);
    // A storage type alone is an inert marker.
    auto g = load(P().global("torch", c.name).done());
    CHECK(g->kind == Kind::global);
    CHECK(g->text == std::string("torch.") + c.name);
  }
  check_error(P().storage("UntypedStorage", "0", 1).done(), "GLOBAL 'torch.UntypedStorage' is not allowed");
}

TEST_CASE("pickle: parameters, quantized tensors and _rebuild_from_type_v2") {
  SUBCASE("_rebuild_parameter and _rebuild_parameter_with_state") {
    P p;
    p.mark();
    p.global("torch._utils", "_rebuild_parameter").mark().float_tensor("0", 4, {4}, {1}).put(5)
        .boolean(true).hooks().tuple().reduce();
    p.global("torch._utils", "_rebuild_parameter_with_state").mark().get(5).boolean(false).hooks()
        .op('}').tuple().reduce();
    p.get(5);
    auto v = load(p.tuple().done());
    const auto& w = v->items[0]->tensor;
    CHECK(v->items[0]->kind == Kind::tensor);
    CHECK(w.is_parameter);
    CHECK(w.requires_grad);
    CHECK(w.sizes == std::vector<std::int64_t>{4});
    CHECK(v->items[1]->tensor.is_parameter);
    CHECK_FALSE(v->items[1]->tensor.requires_grad);
    // The tensor the memo holds is not changed by being made a parameter.
    CHECK_FALSE(v->items[2]->tensor.is_parameter);
    CHECK(v->items[2]->tensor.storage == w.storage);
  }
  SUBCASE("_rebuild_qtensor keeps its quantizer parameters") {
    P p;
    p.global("torch._utils", "_rebuild_qtensor").mark().storage("QInt8Storage", "3", 8).int1(0)
        .int_tuple({2, 4}).int_tuple({4, 1})
        .mark().global("torch", "per_tensor_affine").op('G').raw(lit("\x3f\xb9\x99\x99\x99\x99\x99\x9a"))
        .int1(3).tuple()
        .boolean(false).hooks().tuple().reduce();
    auto v = load(p.done());
    REQUIRE(v->kind == Kind::tensor);
    const auto& t = v->tensor;
    CHECK(t.quantized);
    CHECK(t.storage->storage.type_name == "QInt8Storage");
    CHECK_FALSE(t.storage->storage.dtype.has_value());
    REQUIRE(t.qparams);
    REQUIRE(t.qparams->kind == Kind::tuple);
    REQUIRE(t.qparams->items.size() == 3);
    CHECK(t.qparams->items[0]->text == "torch.per_tensor_affine");
    CHECK(t.qparams->items[1]->floating == 0.1);
    CHECK(t.qparams->items[2]->integer == 3);
  }
  SUBCASE("_rebuild_from_type_v2 applies the rebuild function to its arguments") {
    P p;
    p.global("torch._tensor", "_rebuild_from_type_v2").mark()
        .global("torch._utils", "_rebuild_tensor_v2").global("torch", "Tensor")
        .mark().storage("HalfStorage", "0", 2).int1(0).int_tuple({2}).int_tuple({1}).boolean(false).hooks()
        .tuple().op('}').tuple().reduce();
    auto v = load(p.done());
    REQUIRE(v->kind == Kind::tensor);
    CHECK(v->tensor.storage->storage.dtype == DType::float16);
    // func must be a tensor rebuild function, not, say, OrderedDict or itself.
    P bad;
    bad.global("torch._tensor", "_rebuild_from_type_v2").mark().global("collections", "OrderedDict")
        .global("torch", "Tensor").empty_tuple().op('}').tuple().reduce();
    check_error(bad.done(), "must be a tensor rebuild function");
    P self;
    self.global("torch._tensor", "_rebuild_from_type_v2").put(0).mark().get(0).global("torch", "Tensor")
        .mark().get(0).global("torch", "Tensor").empty_tuple().op('}').tuple().op('}').tuple().reduce();
    check_error(self.done(), "must be a tensor rebuild function");
  }
}

TEST_CASE("pickle: __torch__ objects") {
  SUBCASE("a module: GLOBAL, EMPTY_TUPLE, NEWOBJ, state dict, BUILD") {
    P p;
    p.global("__torch__.transformers.models.bert.modeling_bert", "BertModel").put(0).empty_tuple().op(0x81)
        .op('}').mark().str("training").boolean(false)
        .str("lin").global("__torch__.torch.nn.modules.linear", "Linear").empty_tuple().op(0x81)
        .op('}').mark().str("weight").float_tensor("0", 6, {2, 3}, {3, 1}).op('u').op('b')
        .op('u').op('b');
    auto v = load(p.done());
    REQUIRE(v->kind == Kind::object);
    CHECK(v->text == "__torch__.transformers.models.bert.modeling_bert.BertModel");
    REQUIRE(v->state);
    REQUIRE(v->state->kind == Kind::dict);
    CHECK_FALSE(entry(*v->state, "training")->boolean);
    const auto& lin = entry(*v->state, "lin");
    CHECK(lin->kind == Kind::object);
    CHECK(lin->text == "__torch__.torch.nn.modules.linear.Linear");
    CHECK(entry(*lin->state, "weight")->kind == Kind::tensor);
  }
  SUBCASE("a TorchBind class keeps whatever its __getstate__ returned") {
    P p;
    p.global("__torch__.torch.classes.quantized", "LinearPackedParamsBase").empty_tuple().op(0x81)
        .mark().str("qlinear").op('C').le(2, 1).raw(lit("\x00\xff")).tuple().op('b');
    auto v = load(p.done());
    REQUIRE(v->kind == Kind::object);
    CHECK(v->text == "__torch__.torch.classes.quantized.LinearPackedParamsBase");
    REQUIRE(v->state->kind == Kind::tuple);
    CHECK(v->state->items[1]->text == std::string("\x00\xff", 2));
  }
  SUBCASE("REDUCE on a class: () gives no state, another argument becomes the state") {
    auto a = load(P().global("__torch__", "Cls").empty_tuple().reduce().done());
    CHECK(a->kind == Kind::object);
    CHECK(a->text == "__torch__.Cls");
    CHECK_FALSE(a->state);
    auto e = load(P().global("__torch__.m", "Color").int1(2).reduce().done());
    CHECK(e->kind == Kind::object);
    REQUIRE(e->state);
    CHECK(e->state->integer == 2);
  }
  SUBCASE("BUILD twice, BUILD on a non-object, NEWOBJ on a non-class") {
    check_error(P().global("__torch__", "A").empty_tuple().op(0x81).op('}').op('b').op('}').op('b').done(),
                "already has its state");
    check_error(P().op('}').op('}').op('b').done(), "BUILD on a dict; expected an object");
    check_error(P().global("collections", "OrderedDict").empty_tuple().op(0x81).done(),
                "only __torch__ classes can be instantiated");
    check_error(P().global("__torch__", "A").int1(1).op(0x81).done(), "NEWOBJ arguments are an int");
    check_error(P().global("__torch__torch", "A").done(), "GLOBAL '__torch__torch.A' is not allowed");
  }
}

TEST_CASE("pickle: torch.jit._pickle helpers, OrderedDict and torch.device") {
  SUBCASE("build_intlist and friends return their list, tagged") {
    P p;
    p.mark();
    p.global("torch.jit._pickle", "build_intlist").mark().op(']').mark().int1(1).int1(2).op('e').tuple().reduce();
    p.global("torch.jit._pickle", "build_doublelist").mark().op(']').op('G').raw(lit("\x3f\xf8\0\0\0\0\0\0"))
        .op('a').tuple().reduce();
    p.global("torch.jit._pickle", "build_boollist").mark().op(']').boolean(true).op('a').tuple().reduce();
    p.global("torch.jit._pickle", "build_tensorlist").mark().op(']').float_tensor("0", 1, {}, {}).op('a')
        .tuple().reduce();
    p.global("torch.jit._pickle", "build_genericlist").mark().op(']').str("x").op('a').tuple().reduce();
    auto v = load(p.tuple().done());
    REQUIRE(v->items.size() == 5);
    CHECK(ints(*v->items[0]) == std::vector<std::int64_t>{1, 2});
    CHECK(v->items[0]->type_tag == "List[int]");
    CHECK(v->items[1]->items[0]->floating == 1.5);
    CHECK(v->items[1]->type_tag == "List[float]");
    CHECK(v->items[2]->type_tag == "List[bool]");
    CHECK(v->items[3]->items[0]->kind == Kind::tensor);
    CHECK(v->items[3]->type_tag == "List[Tensor]");
    CHECK(v->items[4]->kind == Kind::list);
    CHECK(v->items[4]->items[0]->text == "x");
    check_error(P().global("torch.jit._pickle", "build_intlist").mark().op(']').str("1").op('a').tuple().reduce()
                    .done(),
                "build_intlist: element is a str");
    check_error(P().global("torch.jit._pickle", "build_tensorlist").mark().op(']').int1(1).op('a').tuple().reduce()
                    .done(),
                "build_tensorlist: element is an int");
  }
  SUBCASE("restore_type_tag") {
    P p;
    p.global("torch.jit._pickle", "restore_type_tag").mark().op('}').str("a").float_tensor("0", 1, {}, {})
        .op('s').str("Dict[str, Tensor]").tuple().reduce();
    auto v = load(p.done());
    REQUIRE(v->kind == Kind::dict);
    CHECK(v->type_tag == "Dict[str, Tensor]");
    CHECK(entry(*v, "a")->kind == Kind::tensor);
    check_error(P().global("torch.jit._pickle", "restore_type_tag").mark().int1(1).str("int").tuple().reduce()
                    .done(),
                "expected a list or dict");
  }
  SUBCASE("collections.OrderedDict() is an empty dict") {
    auto v = load(P().hooks().done());
    CHECK(v->kind == Kind::dict);
    CHECK(v->entries.empty());
    check_error(P().global("collections", "OrderedDict").mark().int1(1).tuple().reduce().done(),
                "takes 0 arguments, got 1");
  }
  SUBCASE("torch.device") {
    auto v = load(P().global("torch", "device").str("cpu").op(0x85).reduce().done());
    CHECK(v->kind == Kind::device);
    CHECK(v->text == "cpu");
    check_error(P().global("torch", "device").int1(0).op(0x85).reduce().done(), "(device) is an int");
  }
}

TEST_CASE("pickle: GLOBALs outside the allowlist are refused by name") {
  const std::pair<const char*, const char*> forbidden[] = {
      {"os", "system"},
      {"posix", "system"},
      {"builtins", "eval"},
      {"__builtin__", "exec"},
      {"subprocess", "Popen"},
      {"torch", "load"},
      {"torch._utils", "_rebuild_device_tensor_from_numpy"},
      {"builtins", "complex"},
      {"torch.distributed.rpc", "rref"},
      {"torch.jit._pickle", "build_tensor_from_id"},
      {"__main__", "TensorID"},
      {"numpy.core.multiarray", "_reconstruct"},
  };
  for (const auto& [module, name] : forbidden) {
    std::string q = std::string(module) + "." + name;
    CAPTURE(q);
    // The usual shape of a code-execution payload: GLOBAL, an argument tuple, REDUCE.
    check_error(P().global(module, name).str("echo pwned").op(0x85).reduce().done(),
                "GLOBAL '" + q + "' is not allowed (loading never executes code from the archive)", 2);
  }
  check_error(P().global("os", "sys\xfftem").done(), "expected a Python identifier", 2);
  check_error(P().global("os.path", "join.x").done(), "expected a Python identifier", 2);
  check_error(P().global("", "x").done(), "GLOBAL module is empty", 2);
  check_error(P().op('c').raw("os\nsystem").done(), "no terminating newline", 2);
  check_error(P().op('c').raw(std::string(5000, 'a')).raw("\nb\n").done(), "longer than 4096", 2);
}

TEST_CASE("pickle: REDUCE, NEWOBJ and BUILD only apply allowlisted callables") {
  check_error(P().str("os.system").empty_tuple().reduce().done(),
              "REDUCE on a str, which is not an allowlisted callable", 17);
  check_error(P().int1(1).empty_tuple().reduce().done(), "REDUCE on an int", 5);
  check_error(P().global("torch", "FloatStorage").empty_tuple().reduce().done(),
              "REDUCE on 'torch.FloatStorage', which is not callable");
  check_error(P().global("torch", "per_tensor_affine").empty_tuple().reduce().done(), "which is not callable");
  check_error(P().global("torch._utils", "_rebuild_tensor_v2").str("x").reduce().done(),
              "applied to a str; expected a tuple");
  check_error(P().global("torch", "device").empty_tuple().op(0x81).done(), "only __torch__ classes");
  check_error(P().global("__torch__", "A").op('b').done(), "stack underflow: BUILD needs 2 values, found 1");
  check_error(P().int1(1).int1(2).op('b').done(), "BUILD on an int; expected an object");
}

TEST_CASE("pickle: malformed tensors and persistent ids") {
  auto tensor = [](const std::vector<int>& sizes, const std::vector<int>& strides, int numel, int offset = 0) {
    return P().tensor([&](P& q) { q.storage("FloatStorage", "0", numel); }, offset, sizes, strides).done();
  };
  CHECK(load(tensor({2, 3}, {3, 1}, 6))->kind == Kind::tensor);
  CHECK(load(tensor({2, 3}, {0, 1}, 3))->kind == Kind::tensor);  // expanded: stride 0
  check_error(tensor({2, 3}, {3, 1}, 5), "reaches element 0 + 6 of a storage of 5");
  check_error(tensor({2}, {1}, 6, 5), "reaches element 5 + 2 of a storage of 6");
  check_error(tensor({2, 3}, {1}, 6), "2 sizes but 1 strides");
  check_error(tensor(std::vector<int>(65, 1), std::vector<int>(65, 1), 1), "rank 65 is over the limit of 64");
  {
    P p;
    p.global("torch._utils", "_rebuild_tensor_v2").mark().storage("FloatStorage", "0", 6).int1(0)
        .mark().integer(-1).tuple().int_tuple({1}).boolean(false).hooks().tuple().reduce();
    check_error(p.done(), "sizes must be non-negative ints, found a negative int");
  }
  {
    P p;
    p.global("torch._utils", "_rebuild_tensor_v2").mark().integer(1LL << 40).int1(0)
        .int_tuple({1}).int_tuple({1}).boolean(false).hooks().tuple().reduce();
    check_error(p.done(), "argument 1 (storage) is an int");
  }
  {
    P p;  // a huge view of a small storage must not overflow while checking its extent
    p.global("torch._utils", "_rebuild_tensor_v2").mark().storage("FloatStorage", "0", 6).int1(0)
        .mark().integer(1LL << 62).integer(1LL << 62).tuple().mark().integer(1LL << 62).int1(1).tuple()
        .boolean(false).hooks().tuple().reduce();
    check_error(p.done(), "overflows int64");
  }
  check_error(P().global("torch._utils", "_rebuild_tensor_v2").mark().int1(0).tuple().reduce().done(),
              "takes 6 or 7 arguments, got 1");
  // Persistent ids.
  check_error(P().mark().str("module").str("x").tuple().op('Q').done(),
              "unknown persistent id (a tuple of 2 starting 'module')");
  check_error(P().int1(3).op('Q').done(), "unknown persistent id (an int)");
  check_error(P().mark().str("storage").str("FloatStorage").str("0").str("cpu").int1(1).tuple().op('Q').done(),
              "argument 2 (storage type) is a str");
  check_error(P().mark().str("storage").global("torch", "device").str("0").str("cpu").int1(1).tuple().op('Q')
                  .done(),
              "names 'torch.device', which is not a storage type");
  check_error(P().mark().str("storage").global("torch", "FloatStorage").str("0").str("cpu").integer(-1).tuple()
                  .op('Q').done(),
              "negative numel -1");
  check_error(P().mark().str("storage").global("torch", "DoubleStorage").str("0").str("cpu")
                  .integer(1LL << 61).tuple().op('Q').done(),
              "overflow int64 bytes");
  for (const char* key : {"", "../code", "a/b", "x\n"}) {
    CAPTURE(key);
    check_error(P().storage("FloatStorage", key, 1).done(), "storage key");
  }
}

TEST_CASE("pickle: protocol, STOP and framing") {
  check_error("", "empty pickle", 0);
  check_error(lit("]."), "not PROTO", 0);
  check_error(lit("\x80"), "truncated: PROTO", 0);
  // pickle.dumps([1], protocol=3) and protocol=4 (which adds FRAME and MEMOIZE).
  check_error(lit("\x80\x03]q\x00K\x01" "a."), "pickle protocol 3 is not supported", 0);
  check_error(lit("\x80\x04\x95\x06\x00\x00\x00\x00\x00\x00\x00]\x94K\x01" "a."), "pickle protocol 4", 0);
  check_error(P().none().raw(lit("\x80\x02")).done(), "PROTO after the start", 3);
  check_error(P().none().b, "the pickle ends without STOP", 3);
  check_error(P().none().done() + "x", "1 trailing bytes after STOP", 4);
  check_error(P().done(), "STOP with 0 values on the stack; expected 1", 2);
  check_error(P().none().none().done(), "STOP with 2 values on the stack", 4);
  check_error(P().none().mark().done(), "STOP with 1 open MARK(s)", 4);
}

TEST_CASE("pickle: opcodes kiln does not read are named") {
  check_error(P().op('i').raw("os\nsystem\n").done(), "unsupported opcode 0x69 ('i')", 2);
  check_error(P().mark().global("__torch__", "A").op('o').done(), "unsupported opcode 0x6f ('o')", 16);
  check_error(P().op(0x95).le(0, 8).done(), "unsupported opcode 0x95;", 2);
  check_error(P().op('I').raw("1\n").done(), "unsupported opcode 0x49 ('I')", 2);
  check_error(P().op(0x8e).le(1, 8).raw("x").done(), "unsupported opcode 0x8e", 2);
  check_error(P().op(0).done(), "unsupported opcode 0x00", 2);
}

TEST_CASE("pickle: stack underflow and MARK misuse") {
  check_error(P().op('a').done(), "stack underflow: APPEND needs 2 values, found 0", 2);
  check_error(P().op(']').mark().int1(1).op('a').op('t').done(), "APPEND needs 2 values above the mark, found 1", 6);
  check_error(P().op('t').done(), "TUPLE without a MARK", 2);
  check_error(P().int1(1).mark().op(0x85).done(), "TUPLE1 needs 1 value above the mark, found 0");
  check_error(P().int1(1).int1(2).op(0x87).done(), "TUPLE3 needs 3 values, found 2");
  check_error(P().mark().int1(1).op('e').done(), "APPENDS has no list below its MARK");
  check_error(P().op(']').mark().op(']').mark().int1(1).op('1').op('1').op('e').done(), "APPENDS without a MARK");
  check_error(P().op('}').mark().int1(1).op('u').done(), "odd number of values");
  check_error(P().mark().int1(1).op('d').done(), "odd number of values");
  check_error(P().int1(1).mark().int1(2).op('e').done(), "APPENDS on an int; expected a list");
  check_error(P().op(']').int1(1).int1(2).op('s').done(), "SETITEM on a list; expected a dict");
  check_error(P().op('0').done(), "POP needs 1 value, found 0");
  check_error(P().op('1').done(), "POP_MARK without a MARK");
  check_error(P().op('2').done(), "DUP needs 1 value");
  check_error(P().op('q').le(0, 1).done(), "BINPUT needs 1 value");
  check_error(P().op('R').done(), "REDUCE needs 2 values, found 0");
  check_error(P().op('Q').done(), "BINPERSID needs 1 value");
}

TEST_CASE("pickle: memo keys from the input never size an allocation") {
  check_error(P().op('h').le(3, 1).done(), "BINGET of memo key 3, which was never stored", 2);
  check_error(P().op('j').le(0xffffffff, 4).done(), "LONG_BINGET of memo key 4294967295", 2);
  auto v = load(P().int1(1).op('r').le(0xffffffff, 4).op('0').op('j').le(0xffffffff, 4).done());
  CHECK(v->integer == 1);
  PickleLimits small;
  small.max_memo = 2;
  CHECK(load(P().int1(1).put(0).put(1).put(0).done(), small)->integer == 1);  // overwrites don't count
  check_error(P().int1(1).put(0).put(1).put(2).done(), "memo would exceed the limit of 2", 8, small);
}

TEST_CASE("pickle: lengths are checked before anything is allocated") {
  check_error(P().op('X').le(0xffffffff, 4).raw("abc").done(), "BINUNICODE of 4294967295 bytes is over the limit");
  check_error(P().op('X').le(0x7fffffff, 4).raw("abc").done(), "truncated: BINUNICODE of 2147483647 bytes, 4 left",
              2);
  check_error(P().op(0x8d).le(~0ull, 8).raw("abc").done(), "BINUNICODE8 of 18446744073709551615 bytes");
  check_error(P().op('T').le(0x80000000u, 4).done(), "BINSTRING with negative length");
  check_error(P().op('B').le(100, 4).raw("xy").done(), "truncated: BINBYTES of 100 bytes");
  check_error(P().op('K').b, "truncated: BININT1 needs 1 more bytes, 0 left", 2);
  check_error(P().op('G').raw("1234").b, "truncated: BINFLOAT needs 8 more bytes, 4 left", 2);
  PickleLimits small;
  small.max_string = 3;
  CHECK(load(P().str("abc").done(), small)->text == "abc");
  check_error(P().str("abcd").done(), "BINUNICODE of 4 bytes is over the limit of 3", 2, small);
}

TEST_CASE("pickle: stack, container and depth limits") {
  PickleLimits small;
  small.max_stack = 4;
  CHECK(load(P().mark().int1(1).int1(2).int1(3).tuple().done(), small)->items.size() == 3);
  check_error(P().mark().int1(1).int1(2).int1(3).int1(4).tuple().done(), "stack would exceed the limit of 4", 9,
              small);
  small = {};
  small.max_container = 2;
  check_error(P().mark().int1(1).int1(2).int1(3).tuple().done(), "tuple of 3 elements", 9, small);
  check_error(P().op(']').mark().int1(1).int1(2).int1(3).op('e').done(), "list of 3 elements", -1, small);
  check_error(P().op(']').int1(1).op('a').int1(2).op('a').int1(3).op('a').done(), "list of 3 elements", -1, small);
  check_error(P().op('}').mark().int1(1).int1(1).int1(2).int1(2).int1(3).int1(3).op('u').done(),
              "dict of 3 elements", -1, small);
  CHECK(load(P().op('}').mark().int1(1).int1(1).int1(1).int1(2).int1(1).int1(3).op('u').done(), small)
            ->entries.size() == 1);
  small = {};
  small.max_depth = 3;
  CHECK(load(nested_lists(3), small)->items.size() == 1);
  check_error(nested_lists(4), "nested more than 3 deep", -1, small);
  small.max_depth = 2;
  check_error(P().mark().int1(1).tuple().op(0x85).done(), "nested more than 2 deep", -1, small);
  // A tensor counts its storage: tensor (2) inside a tuple (3).
  check_error(P().float_tensor("0", 1, {}, {}).op(0x85).done(), "nested more than 2 deep", -1, small);

  SUBCASE("a million nested lists stop at the default depth") {
    check_error(nested_lists(1'000'000), "nested more than 1000 deep", 2 + 1'000'000 + 1000 - 1);
  }
  SUBCASE("a deep chain through the memo") {
    // [[[...]]] built bottom-up: each new list gets the previous one appended.
    P p;
    p.op(']');
    p.op('r').le(0, 4);
    for (int i = 0; i < 5000; ++i) p.op('0').op(']').op('j').le(0, 4).op('a').op('r').le(0, 4);
    check_error(p.done(), "nested more than 1000 deep");
  }
}

TEST_CASE("pickle: self-referencing data is refused, so no shared_ptr cycle can leak") {
  // l = []; l.append(l)
  check_error(P().op(']').put(0).get(0).op('a').done(), "APPEND would put a list inside itself", 7);
  // a = []; b = [a]; a.append(b): a is already inside b when the APPEND comes.
  check_error(P().op(']').put(0).op(']').put(1).get(0).op('a').op('a').done(),
              "APPEND on a list that is already inside another value", 11);
  // The same with APPENDS, and through a dict: d = {}; l = [d]; d["k"] = l.
  check_error(P().op(']').put(0).op(']').get(0).op('a').put(1).op('0').mark().get(1).op('e').done(),
              "APPENDS on a list that is already inside another value");
  check_error(P().op('}').put(0).op(']').get(0).op('a').put(1).op('0').str("k").get(1).op('s').done(),
              "SETITEM on a dict that is already inside another value");
  check_error(P().op('}').put(0).str("k").get(0).op('s').done(), "SETITEM would put a dict inside itself");
  check_error(P().op('}').put(0).get(0).int1(1).op('s').done(), "SETITEM would put a dict inside itself");
  // An object whose state holds the object, and one whose state is the object itself.
  check_error(P().global("__torch__", "M").empty_tuple().op(0x81).put(0).op('}').str("self").get(0).op('s').op('b')
                  .done(),
              "BUILD on an object of '__torch__.M' that is already inside another value");
  check_error(P().global("__torch__", "M").empty_tuple().op(0x81).put(0).get(0).op('b').done(),
              "BUILD would put an object of '__torch__.M' inside itself");
  // A tuple holding a list, then the tuple appended to that list.
  check_error(P().op(']').put(0).op(0x85).put(1).get(0).get(1).op('a').done(), "already inside another value");
  // A container may still be shared without a cycle: the same list twice in a tuple.
  auto v = load(P().op(']').put(0).int1(1).op('a').get(0).op(0x86).done());
  CHECK(v->items[0] == v->items[1]);
}

TEST_CASE("pickle: random bytes and mutated real pickles fail cleanly") {
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int i = 0; i < 5000; ++i) {
    std::string s("\x80\x02", 2);
    std::size_t n = 1 + static_cast<std::size_t>(rng() % 64);
    // Half the time draw only from the opcodes the VM knows, to get past the first byte.
    static const char known[] = "(.012GJKMNQRTUXabcd}ehjl]qrstu)BC\x80\x81\x85\x86\x87\x88\x89\x8a\x8c\x8d\x94";
    for (std::size_t k = 0; k < n; ++k) {
      s += (i % 2) ? known[rng() % (sizeof known - 1)] : static_cast<char>(byte(rng));
    }
    auto e = unpickle_error(bytes_of(s), "m.pt", "m/data.pkl");
    if (e) CHECK(e->kind() == kiln::ErrorKind::bad_input);
  }
  auto fixtures = fixture_pickles();
  const auto& data = fixtures.front().data;
  std::vector<std::byte> copy(data.begin(), data.end());
  int errors = 0;
  for (std::size_t i = 2; i < copy.size(); ++i) {
    std::byte saved = copy[i];
    copy[i] = static_cast<std::byte>(byte(rng));
    if (unpickle_error(copy, "m.pt", "m/data.pkl")) ++errors;
    copy[i] = saved;
  }
  CHECK(errors > 0);
}

TEST_CASE("pickle: every strict prefix of a real data.pkl is refused") {
  auto fixtures = fixture_pickles();
  for (const auto& f : {fixtures.front(), fixtures.back()}) {
    CAPTURE(f.name);
    REQUIRE(unpickle(f.data, f.name, "data.pkl"));
    for (std::size_t n = 0; n < f.data.size(); ++n) {
      auto e = unpickle_error(f.data.first(n), f.name, "data.pkl");
      if (!e) FAIL_CHECK("prefix of " << n << " bytes was accepted");
      else CHECK(e->where() == "data.pkl");
    }
  }
}

TEST_CASE("pickle: every fixture archive's data.pkl and constants.pkl") {
  for (const auto& f : fixture_pickles()) {
    CAPTURE(f.name);
    auto root = unpickle(f.data, f.name, f.stem + "/data.pkl");
    REQUIRE(root->kind == Kind::object);
    CHECK(root->text.rfind("__torch__.", 0) == 0);
    REQUIRE(root->state);
    auto constants = unpickle(f.constants, f.name, f.stem + "/constants.pkl");
    CHECK(constants->kind == Kind::tuple);

    // Walk both trees (iteratively, by identity) and check each tensor against its record.
    auto check_tree = [&](const PickleRef& start, const std::string& folder) {
      std::set<const PickleValue*> seen;
      std::set<const PickleValue*> tensors;
      std::vector<const PickleValue*> todo{start.get()};
      while (!todo.empty()) {
        const PickleValue* v = todo.back();
        todo.pop_back();
        if (!seen.insert(v).second) continue;
        for (const auto& c : v->items) todo.push_back(c.get());
        for (const auto& [k, c] : v->entries) {
          todo.push_back(k.get());
          todo.push_back(c.get());
        }
        if (v->state) todo.push_back(v->state.get());
        if (v->kind != Kind::tensor) continue;
        tensors.insert(v);
        const auto& t = v->tensor;
        REQUIRE(t.storage);
        const auto& s = t.storage->storage;
        CAPTURE(s.key);
        const auto* rec = f.zip->find(f.stem + "/" + folder + "/" + s.key);
        REQUIRE(rec);
        std::int64_t extent = 1;
        for (std::size_t d = 0; d < t.sizes.size(); ++d) {
          if (t.sizes[d] == 0) extent = 0;
        }
        for (std::size_t d = 0; d < t.sizes.size() && extent; ++d) extent += (t.sizes[d] - 1) * t.strides[d];
        CHECK(s.numel * static_cast<std::int64_t>(s.element_size) <=
              static_cast<std::int64_t>(rec->uncompressed_size));
        CHECK(static_cast<std::uint64_t>((t.storage_offset + extent) * static_cast<std::int64_t>(s.element_size)) <=
              rec->uncompressed_size);
        CHECK(s.location == "cpu");
      }
      return tensors.size();
    };
    CHECK((check_tree(root, "data") > 0) == f.has_tensors);
    check_tree(constants, "constants");
  }
}
