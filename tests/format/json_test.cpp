#include "format/json.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>

#include "kiln/error.hpp"

namespace {

using kiln::format::JsonLimits;
using kiln::format::JsonValue;
using kiln::format::parse_json;

JsonValue parse(std::string_view text) { return parse_json(text, "test.json"); }

// What a failed parse reported; a parse that unexpectedly succeeds yields "<no error>"
// fields, so the CHECKs on where/message fail with a readable diff.
struct Failure {
  std::string file = "<no error>";
  std::string where = "<no error>";
  std::string message = "<no error>";
  kiln::ErrorKind kind = kiln::ErrorKind::internal;
};

Failure parse_failure(std::string_view text, JsonLimits limits = {}) {
  try {
    parse_json(text, "test.json", limits);
  } catch (const kiln::Error& e) {
    return {e.file(), e.where(), e.message(), e.kind()};
  }
  return {};
}

template <typename F>
Failure access_failure(F&& f) {
  try {
    f();
  } catch (const kiln::Error& e) {
    return {e.file(), e.where(), e.message(), e.kind()};
  }
  return {};
}

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

// Checks a parse error's position and message; the message is printed on failure.
#define CHECK_PARSE_ERROR(text, expected_where, expected_substring)                   \
  do {                                                                                \
    const Failure f_ = parse_failure(text);                                           \
    INFO("input: " << std::string(text) << "\nmessage: " << f_.message);              \
    CHECK(f_.kind == kiln::ErrorKind::bad_input);                                     \
    CHECK(f_.file == "test.json");                                                    \
    CHECK(f_.where == (expected_where));                                              \
    CHECK(contains(f_.message, expected_substring));                                  \
  } while (false)

}  // namespace

TEST_CASE("json: scalars of every kind") {
  JsonValue n = parse("null");
  CHECK(n.kind() == JsonValue::Kind::null);
  CHECK(n.is_null());
  CHECK_FALSE(n.is_bool());
  CHECK(n.size() == 0);

  JsonValue t = parse("true");
  CHECK(t.kind() == JsonValue::Kind::boolean);
  CHECK(t.is_bool());
  CHECK(t.as_bool() == true);
  CHECK(parse("false").as_bool() == false);

  JsonValue num = parse("42");
  CHECK(num.kind() == JsonValue::Kind::number);
  CHECK(num.is_number());
  CHECK(num.as_int() == 42);
  CHECK(num.as_double() == 42.0);

  JsonValue s = parse("\"hello\"");
  CHECK(s.kind() == JsonValue::Kind::string);
  CHECK(s.is_string());
  CHECK(s.as_string() == "hello");
  CHECK(s.size() == 0);
  CHECK(parse("\"\"").as_string().empty());

  JsonValue a = parse("[]");
  CHECK(a.kind() == JsonValue::Kind::array);
  CHECK(a.is_array());
  CHECK(a.size() == 0);
  CHECK(a.as_array().empty());

  JsonValue o = parse("{}");
  CHECK(o.kind() == JsonValue::Kind::object);
  CHECK(o.is_object());
  CHECK(o.size() == 0);
  CHECK(o.as_object().empty());

  CHECK(JsonValue().is_null());
}

TEST_CASE("json: surrounding whitespace is allowed") {
  CHECK(parse(" \t\r\n 7 \n\t\r ").as_int() == 7);
  CHECK(parse("\n[ 1 ,\t2 ]\n").size() == 2);
  CHECK(parse("{ \"a\" : 1 }").at("a").as_int() == 1);
}

TEST_CASE("json: numbers convert to double") {
  CHECK(parse("0").as_double() == 0.0);
  CHECK(parse("-0").as_double() == 0.0);
  CHECK(std::signbit(parse("-0").as_double()));
  CHECK(parse("1.5").as_double() == 1.5);
  CHECK(parse("-2.5e3").as_double() == -2500.0);
  CHECK(parse("1E+2").as_double() == 100.0);
  CHECK(parse("25e-2").as_double() == 0.25);
  CHECK(parse("0.1").as_double() == 0.1);
  CHECK(parse("1.7976931348623157e308").as_double() == std::numeric_limits<double>::max());
  CHECK(parse("4.9406564584124654e-324").as_double() ==
        std::numeric_limits<double>::denorm_min());
  // Below the smallest subnormal the value rounds to zero, keeping its sign.
  CHECK(parse("1e-400").as_double() == 0.0);
  CHECK(std::signbit(parse("-1e-400").as_double()));
  CHECK(parse("0.0000001e-400").as_double() == 0.0);
  CHECK(parse("0e99999999999999999999").as_double() == 0.0);
}

TEST_CASE("json: as_int is exact") {
  CHECK(parse("9223372036854775807").as_int() == std::numeric_limits<std::int64_t>::max());
  CHECK(parse("-9223372036854775808").as_int() == std::numeric_limits<std::int64_t>::min());
  // Not representable as a double: as_int must come from the literal, not the double.
  CHECK(parse("9007199254740993").as_int() == 9007199254740993);
  CHECK(parse("-0").as_int() == 0);
  CHECK(parse("0.000").as_int() == 0);
  CHECK(parse("3.0").as_int() == 3);
  CHECK(parse("1e2").as_int() == 100);
  CHECK(parse("1.50e1").as_int() == 15);
  CHECK(parse("-12300e-2").as_int() == -123);
  CHECK(parse("9.223372036854775807e18").as_int() == std::numeric_limits<std::int64_t>::max());
  CHECK(parse("0e999999").as_int() == 0);

  auto message = [](std::string_view text) {
    JsonValue v = parse(text);
    return access_failure([&] { v.as_int(); }).message;
  };
  CHECK(contains(message("1.5"), "not an integer"));
  CHECK(contains(message("1e-1"), "not an integer"));
  CHECK(contains(message("1e-99999999999999999999"), "not an integer"));
  CHECK(contains(message("9223372036854775808"), "does not fit in int64"));
  CHECK(contains(message("-9223372036854775809"), "does not fit in int64"));
  CHECK(contains(message("1e19"), "does not fit in int64"));
  CHECK(contains(message("123456789012345678901234567890"), "does not fit in int64"));
  CHECK(contains(message("1e300"), "does not fit in int64"));

  // Built without a literal, only the double is known.
  CHECK(JsonValue::make_number(12.0, "").as_int() == 12);
  CHECK(JsonValue::make_number(-4.0, "").as_int() == -4);
  CHECK(access_failure([] { JsonValue::make_number(0.5, "").as_int(); }).kind ==
        kiln::ErrorKind::bad_input);
  CHECK(access_failure([] { JsonValue::make_number(1e19, "").as_int(); }).kind ==
        kiln::ErrorKind::bad_input);
  CHECK(JsonValue::make_number(7.0, "7").as_int() == 7);
}

TEST_CASE("json: nested structures keep document order") {
  const char* text = R"({
    "name": "tiny",
    "shape": [2, 3, [4, [5]]],
    "meta": {"ok": true, "none": null, "scale": -0.5},
    "empty": {"a": [], "o": {}}
  })";
  JsonValue v = parse(text);
  REQUIRE(v.is_object());
  REQUIRE(v.size() == 4);
  const auto& members = v.as_object();
  CHECK(members[0].first == "name");
  CHECK(members[1].first == "shape");
  CHECK(members[2].first == "meta");
  CHECK(members[3].first == "empty");

  CHECK(v.at("name").as_string() == "tiny");
  const JsonValue& shape = v.at("shape");
  REQUIRE(shape.size() == 3);
  CHECK(shape.at(0).as_int() == 2);
  CHECK(shape.at(1).as_int() == 3);
  CHECK(shape.at(2).at(0).as_int() == 4);
  CHECK(shape.at(2).at(1).at(0).as_int() == 5);
  CHECK(shape.as_array()[1].as_int() == 3);

  const JsonValue& meta = v.at("meta");
  CHECK(meta.at("ok").as_bool());
  CHECK(meta.at("none").is_null());
  CHECK(meta.at("scale").as_double() == -0.5);

  CHECK(v.at("empty").at("a").is_array());
  CHECK(v.at("empty").at("a").size() == 0);
  CHECK(v.at("empty").at("o").is_object());

  // The same key may appear in different objects.
  JsonValue w = parse(R"({"a": {"a": {"a": 1}}, "b": [{"a": 2}, {"a": 3}]})");
  CHECK(w.at("a").at("a").at("a").as_int() == 1);
  CHECK(w.at("b").at(1).at("a").as_int() == 3);
}

TEST_CASE("json: find and at") {
  JsonValue v = parse(R"({"x": 1, "y": [10, 20], "": "empty key"})");
  REQUIRE(v.find("x") != nullptr);
  CHECK(v.find("x")->as_int() == 1);
  CHECK(v.find("z") == nullptr);
  CHECK(v.find("X") == nullptr);
  CHECK(v.at("").as_string() == "empty key");
  CHECK(&v.at("y") == v.find("y"));
  CHECK(v.at("y").at(1).as_int() == 20);

  // find on a non-object is "absent", not an error.
  CHECK(v.at("y").find("x") == nullptr);
  CHECK(JsonValue().find("x") == nullptr);
  CHECK(parse("\"x\"").find("x") == nullptr);

  Failure missing = access_failure([&] { v.at("name"); });
  CHECK(missing.kind == kiln::ErrorKind::bad_input);
  CHECK(missing.file.empty());
  CHECK(missing.where.empty());
  CHECK(missing.message == "missing key \"name\"");

  Failure range = access_failure([&] { v.at("y").at(2); });
  CHECK(range.kind == kiln::ErrorKind::bad_input);
  CHECK(contains(range.message, "index 2"));
  CHECK(contains(range.message, "2 elements"));

  CHECK(access_failure([&] { v.at("x").at("k"); }).message == "expected an object, got a number");
  CHECK(access_failure([&] { v.at(std::size_t{0}); }).message ==
        "expected an array, got an object");
}

TEST_CASE("json: accessor errors name the expected and actual kind") {
  JsonValue arr = parse("[1]");
  JsonValue obj = parse("{}");
  JsonValue str = parse("\"s\"");
  JsonValue num = parse("1");
  JsonValue boo = parse("true");
  JsonValue nul = parse("null");

  auto message = [](auto f) { return access_failure(f).message; };
  CHECK(message([&] { arr.as_string(); }) == "expected a string, got an array");
  CHECK(message([&] { str.as_array(); }) == "expected an array, got a string");
  CHECK(message([&] { num.as_object(); }) == "expected an object, got a number");
  CHECK(message([&] { nul.as_bool(); }) == "expected a boolean, got null");
  CHECK(message([&] { boo.as_double(); }) == "expected a number, got a boolean");
  CHECK(message([&] { obj.as_int(); }) == "expected a number, got an object");

  Failure f = access_failure([&] { str.as_int(); });
  CHECK(f.kind == kiln::ErrorKind::bad_input);
  CHECK(f.file.empty());
  CHECK(f.where.empty());
}

TEST_CASE("json: string escapes") {
  CHECK(parse(R"("a\"b\\c\/d\be\ff\ng\rh\ti")").as_string() == "a\"b\\c/d\be\ff\ng\rh\ti");
  CHECK(parse(R"("\u0041\u00e9\u20AC")").as_string() == "A\xC3\xA9\xE2\x82\xAC");
  CHECK(parse(R"("\u07FF\u0800\uFFFF")").as_string() == "\xDF\xBF\xE0\xA0\x80\xEF\xBF\xBF");
  // U+1F600 (grinning face) as a surrogate pair, upper and lower case hex.
  CHECK(parse(R"("\ud83d\ude00")").as_string() == "\xF0\x9F\x98\x80");
  CHECK(parse(R"("\uD83D\uDE00")").as_string() == "\xF0\x9F\x98\x80");
  // The extremes of the astral planes.
  CHECK(parse(R"("\uD800\uDC00")").as_string() == "\xF0\x90\x80\x80");
  CHECK(parse(R"("\uDBFF\uDFFF")").as_string() == "\xF4\x8F\xBF\xBF");
  // An escaped NUL is a legal character inside the string.
  CHECK(parse(R"("a\u0000b")").as_string() == std::string("a\0b", 3));
  // Raw UTF-8 passes through unchanged.
  CHECK(parse("\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"").as_string() ==
        "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
  CHECK(parse("\"\x7F\"").as_string() == "\x7F");
  // Escaped keys decode too.
  CHECK(parse(R"({"k\u0065y": 1})").at("key").as_int() == 1);
}

TEST_CASE("json: escape errors") {
  CHECK_PARSE_ERROR(R"("ab\x")", "line 1, column 4", "invalid escape \\x");
  CHECK_PARSE_ERROR(R"("\u12")", "line 1, column 2", "expected 4 hex digits");
  CHECK_PARSE_ERROR(R"("\u12G4")", "line 1, column 2", "expected 4 hex digits");
  CHECK_PARSE_ERROR(R"("x\ud83d")", "line 1, column 3", "lone high surrogate \\ud83d");
  CHECK_PARSE_ERROR(R"("\ud83d\u0041")", "line 1, column 2", "lone high surrogate");
  CHECK_PARSE_ERROR(R"("\ud83d\ud83d")", "line 1, column 2", "lone high surrogate");
  CHECK_PARSE_ERROR(R"("\ud83dx")", "line 1, column 2", "lone high surrogate");
  CHECK_PARSE_ERROR(R"("\ude00")", "line 1, column 2", "lone low surrogate \\ude00");
  CHECK_PARSE_ERROR("\"\\", "line 1, column 2", "unterminated string");
}

TEST_CASE("json: invalid UTF-8 in strings is rejected at its first byte") {
  // Each input is `["ok", "<bad>"]`; the bad byte sits at column 9.
  auto wrap = [](std::string bad) { return "[\"ok\", \"" + bad + "\"]"; };
  CHECK_PARSE_ERROR(wrap("\x80"), "line 1, column 9", "continuation byte 0x80");
  CHECK_PARSE_ERROR(wrap("\xBF"), "line 1, column 9", "continuation byte 0xBF");
  CHECK_PARSE_ERROR(wrap("\xC0\x80"), "line 1, column 9", "overlong");
  CHECK_PARSE_ERROR(wrap("\xC1\xBF"), "line 1, column 9", "overlong");
  CHECK_PARSE_ERROR(wrap("\xE0\x80\x80"), "line 1, column 9", "overlong");
  CHECK_PARSE_ERROR(wrap("\xE0\x9F\xBF"), "line 1, column 9", "overlong");
  CHECK_PARSE_ERROR(wrap("\xF0\x8F\xBF\xBF"), "line 1, column 9", "overlong");
  CHECK_PARSE_ERROR(wrap("\xED\xA0\x80"), "line 1, column 9", "surrogate");
  CHECK_PARSE_ERROR(wrap("\xED\xBF\xBF"), "line 1, column 9", "surrogate");
  CHECK_PARSE_ERROR(wrap("\xF4\x90\x80\x80"), "line 1, column 9", "above U+10FFFF");
  CHECK_PARSE_ERROR(wrap("\xF5\x80\x80\x80"), "line 1, column 9", "0xF5 cannot start");
  CHECK_PARSE_ERROR(wrap("\xFF"), "line 1, column 9", "0xFF cannot start");
  CHECK_PARSE_ERROR(wrap("\xE2\x82"), "line 1, column 9", "truncated sequence");
  CHECK_PARSE_ERROR(wrap("\xF0\x9F\x98"), "line 1, column 9", "truncated sequence");
  CHECK_PARSE_ERROR(wrap("\xC3" "A"), "line 1, column 9", "truncated sequence");
  CHECK_PARSE_ERROR("\"\xE2\x82", "line 1, column 2", "truncated sequence at end of input");
  // Columns count bytes: the two-byte 'é' before the bad byte moves it to column 6.
  CHECK_PARSE_ERROR("[\"\xC3\xA9\",\n\"ab\xC3\xA9\x80\"]", "line 2, column 6", "continuation");

  // The boundaries of each valid range are accepted.
  const std::string edges =
      "\xC2\x80\xDF\xBF\xE0\xA0\x80\xED\x9F\xBF\xEE\x80\x80\xF0\x90\x80\x80\xF4\x8F\xBF\xBF";
  CHECK(parse("\"" + edges + "\"").as_string() == edges);
}

TEST_CASE("json: grammar errors report line and column") {
  CHECK_PARSE_ERROR("", "line 1, column 1", "expected a value, got end of input");
  CHECK_PARSE_ERROR("  \n ", "line 2, column 2", "expected a value, got end of input");
  CHECK_PARSE_ERROR("[1, 2,]", "line 1, column 7", "trailing comma");
  CHECK_PARSE_ERROR("{\"a\": 1,\n  }", "line 2, column 3", "trailing comma");
  CHECK_PARSE_ERROR("[1 2]", "line 1, column 4", "expected ',' or ']', got '2'");
  CHECK_PARSE_ERROR("{\"a\": 1 \"b\": 2}", "line 1, column 9", "expected ',' or '}'");
  CHECK_PARSE_ERROR("{\"a\" 1}", "line 1, column 6", "expected ':' after key \"a\"");
  CHECK_PARSE_ERROR("{a: 1}", "line 1, column 2", "expected a string key, got 'a'");
  CHECK_PARSE_ERROR("{1: 1}", "line 1, column 2", "expected a string key");
  CHECK_PARSE_ERROR("['a']", "line 1, column 2", "expected a value, got '''");
  CHECK_PARSE_ERROR("[1,\n,2]", "line 2, column 1", "expected a value, got ','");
  CHECK_PARSE_ERROR("[1", "line 1, column 3", "expected ',' or ']', got end of input");
  CHECK_PARSE_ERROR("{\"a\":", "line 1, column 6", "expected a value, got end of input");
  CHECK_PARSE_ERROR("{\"a\"", "line 1, column 5", "got end of input");

  // Comments are not JSON.
  CHECK_PARSE_ERROR("[1, // one\n 2]", "line 1, column 5", "expected a value, got '/'");
  CHECK_PARSE_ERROR("/* c */ 1", "line 1, column 1", "got '/'");

  // Neither are the JavaScript number extensions.
  CHECK_PARSE_ERROR("NaN", "line 1, column 1", "expected a value, got 'N'");
  CHECK_PARSE_ERROR("[Infinity]", "line 1, column 2", "got 'I'");
  CHECK_PARSE_ERROR("-Infinity", "line 1, column 2", "expected a digit after '-'");
  CHECK_PARSE_ERROR("01", "line 1, column 1", "leading zeros");
  CHECK_PARSE_ERROR("[-007]", "line 1, column 3", "leading zeros");
  CHECK_PARSE_ERROR("+1", "line 1, column 1", "got '+'");
  CHECK_PARSE_ERROR(".5", "line 1, column 1", "got '.'");
  CHECK_PARSE_ERROR("1.", "line 1, column 3", "expected a digit after '.'");
  CHECK_PARSE_ERROR("1.e5", "line 1, column 3", "expected a digit after '.'");
  CHECK_PARSE_ERROR("1e", "line 1, column 3", "expected a digit in the exponent");
  CHECK_PARSE_ERROR("1e+", "line 1, column 4", "expected a digit in the exponent");
  CHECK_PARSE_ERROR("-", "line 1, column 2", "expected a digit after '-'");
  CHECK_PARSE_ERROR("0x10", "line 1, column 2", "after the end of the document");
  CHECK_PARSE_ERROR("[1e400]", "line 1, column 2", "out of the range of a double");
  CHECK_PARSE_ERROR("-1e400", "line 1, column 1", "out of the range of a double");

  // Literals are exact and lower case.
  CHECK_PARSE_ERROR("tru", "line 1, column 1", "expected true");
  CHECK_PARSE_ERROR("[nul]", "line 1, column 2", "expected null");
  CHECK_PARSE_ERROR("True", "line 1, column 1", "got 'T'");
  CHECK_PARSE_ERROR("falsey", "line 1, column 1", "expected false");

  // Strings.
  CHECK_PARSE_ERROR("\"abc", "line 1, column 1", "unterminated string");
  CHECK_PARSE_ERROR("[\"a\nb\"]", "line 1, column 4", "control character 0x0A");
  CHECK_PARSE_ERROR(std::string("\"a\0b\"", 5), "line 1, column 3", "control character 0x00");
  CHECK_PARSE_ERROR("\"\t\"", "line 1, column 2", "control character 0x09");
  CHECK_PARSE_ERROR("\"\x1F\"", "line 1, column 2", "control character 0x1F");

  // Only one document.
  CHECK_PARSE_ERROR("{} x", "line 1, column 4", "unexpected 'x' after the end of the document");
  CHECK_PARSE_ERROR("1 2", "line 1, column 3", "after the end of the document");
  CHECK_PARSE_ERROR("[]\n[]", "line 2, column 1", "after the end of the document");
  CHECK_PARSE_ERROR(std::string("null\0", 5), "line 1, column 5", "byte 0x00 after the end");

  // Whitespace is only space, tab, LF and CR.
  CHECK_PARSE_ERROR("[1,\f2]", "line 1, column 4", "got byte 0x0C");
  CHECK_PARSE_ERROR("\xEF\xBB\xBF{}", "line 1, column 1", "byte order mark");

  // Line and column on a later line; columns count bytes from 1.
  CHECK_PARSE_ERROR("{\n  \"a\": [1,\n    2,, 3]\n}", "line 3, column 7",
                    "expected a value, got ','");
  CHECK_PARSE_ERROR("[\"\xC3\xA9\", x]", "line 1, column 8", "got 'x'");
  CHECK_PARSE_ERROR("[1,\r\n  x]", "line 2, column 3", "got 'x'");
}

TEST_CASE("json: duplicate keys are an error naming the key") {
  CHECK_PARSE_ERROR("{\"a\":1,\"a\":2}", "line 1, column 8", "duplicate key \"a\"");
  CHECK_PARSE_ERROR("{\"name\": 1,\n \"other\": 2,\n \"name\": 3}", "line 3, column 2",
                    "duplicate key \"name\"");
  // Keys compare after unescaping.
  CHECK_PARSE_ERROR(R"({"ab": 1, "a\u0062": 2})", "line 1, column 11", "duplicate key \"ab\"");
  CHECK_PARSE_ERROR(R"([{}, {"x": {"k": 1, "k": 1}}])", "line 1, column 21", "duplicate key \"k\"");
  // A quote in the key stays readable in the message.
  CHECK_PARSE_ERROR(R"({"a\"b": 1, "a\"b": 2})", "line 1, column 13", R"(duplicate key "a\"b")");

  // Large objects take a different lookup path than small ones; check around where it
  // switches and well past it, repeating the first, a middle and the last key.
  for (int n : {1, 15, 16, 17, 63, 64, 65, 1000, 5000}) {
    std::string text = "{";
    for (int i = 0; i < n; ++i) {
      text += "\"k" + std::to_string(i) + "\": " + std::to_string(i) + ", ";
    }
    CHECK(parse(text.substr(0, text.size() - 2) + "}").size() == static_cast<std::size_t>(n));
    for (int dup : {0, n / 2, n - 1}) {
      const std::string key = "\"k" + std::to_string(dup) + "\"";
      const std::string bad = text + key + ": -1}";
      INFO("members: " << n << ", duplicate: " << key);
      const Failure f = parse_failure(bad);
      CHECK(f.where == "line 1, column " + std::to_string(bad.rfind(key) + 1));
      CHECK(f.message == "duplicate key " + key);
    }
  }
}

TEST_CASE("json: nesting depth is limited") {
  // A million '[' must fail at the limit, not overflow the stack getting there.
  const std::string deep(1'000'000, '[');
  Failure f = parse_failure(deep);
  CHECK(f.kind == kiln::ErrorKind::bad_input);
  CHECK(f.where == "line 1, column 257");
  CHECK(contains(f.message, "nesting deeper than the limit of 256"));

  const std::string deep_objects = [] {
    std::string s;
    for (int i = 0; i < 100'000; ++i) s += "{\"a\":";
    return s;
  }();
  f = parse_failure(deep_objects);
  CHECK(f.where == "line 1, column " + std::to_string(256 * 5 + 1));
  CHECK(contains(f.message, "nesting deeper"));

  // Exactly the limit is fine.
  const std::string at_limit = std::string(256, '[') + std::string(256, ']');
  JsonValue v = parse(at_limit);
  const JsonValue* p = &v;
  int depth = 0;
  while (p->is_array() && p->size() == 1) {
    p = &p->at(0);
    ++depth;
  }
  CHECK(depth == 255);
  CHECK(p->is_array());
  CHECK(p->size() == 0);
  CHECK(parse_failure(std::string(257, '[') + std::string(257, ']')).where == "line 1, column 257");

  // A custom limit.
  JsonLimits limits;
  limits.max_depth = 2;
  CHECK_NOTHROW(parse_json("[{\"a\": 1}]", "test.json", limits));
  Failure custom = parse_failure("[{\"a\": [1]}]", limits);
  CHECK(custom.where == "line 1, column 8");
  CHECK(contains(custom.message, "limit of 2"));

  // Zero allows scalars only.
  limits.max_depth = 0;
  CHECK(parse_json("5", "test.json", limits).as_int() == 5);
  CHECK(parse_failure("[]", limits).where == "line 1, column 1");

  // A raised limit admits deeper documents.
  limits.max_depth = 2000;
  const std::string deeper = std::string(2000, '[') + std::string(2000, ']');
  CHECK(parse_json(deeper, "test.json", limits).is_array());
}

TEST_CASE("json: errors name the source") {
  try {
    parse_json("[1,]", "models/tiny/manifest.json");
    FAIL("expected an error");
  } catch (const kiln::Error& e) {
    CHECK(e.file() == "models/tiny/manifest.json");
    CHECK(e.where() == "line 1, column 4");
    CHECK(std::string(e.what()) ==
          "models/tiny/manifest.json:line 1, column 4: trailing comma before ']'");
  }
}

TEST_CASE("json: builders") {
  JsonValue v = JsonValue::make_object({
      {"s", JsonValue::make_string("x")},
      {"a", JsonValue::make_array({JsonValue::make_bool(true), JsonValue()})},
      {"n", JsonValue::make_number(2.5, "2.5")},
  });
  CHECK(v.size() == 3);
  CHECK(v.at("s").as_string() == "x");
  CHECK(v.at("a").at(0).as_bool());
  CHECK(v.at("a").at(1).is_null());
  CHECK(v.at("n").as_double() == 2.5);
}

namespace {

// A file in the temp folder that removes itself.
struct TempFile {
  std::filesystem::path path;
  explicit TempFile(const std::string& contents) {
    std::random_device rd;
    path = std::filesystem::temp_directory_path() /
           ("kiln_json_test_" + std::to_string(rd()) + std::to_string(rd()) + ".json");
    std::ofstream out(path, std::ios::binary);
    out << contents;
  }
  ~TempFile() {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
};

}  // namespace

TEST_CASE("json: read_json_file") {
  SUBCASE("a valid file") {
    TempFile file("{\"version\": 3,\n \"names\": [\"a\", \"b\"]}\n");
    JsonValue v = kiln::format::read_json_file(file.path.string());
    CHECK(v.at("version").as_int() == 3);
    CHECK(v.at("names").at(1).as_string() == "b");
  }

  SUBCASE("a parse error names the path") {
    TempFile file("{\"version\": 3,\n \"names\": [\"a\",]}\n");
    try {
      kiln::format::read_json_file(file.path.string());
      FAIL("expected an error");
    } catch (const kiln::Error& e) {
      CHECK(e.kind() == kiln::ErrorKind::bad_input);
      CHECK(e.file() == file.path.string());
      CHECK(e.where() == "line 2, column 16");
      CHECK(contains(e.message(), "trailing comma"));
    }
  }

  SUBCASE("the depth limit is passed on") {
    TempFile file("[[[1]]]");
    JsonLimits limits;
    limits.max_depth = 2;
    try {
      kiln::format::read_json_file(file.path.string(), limits);
      FAIL("expected an error");
    } catch (const kiln::Error& e) {
      CHECK(e.where() == "line 1, column 3");
      CHECK(contains(e.message(), "limit of 2"));
    }
  }

  SUBCASE("a missing file") {
    const std::string path =
        (std::filesystem::temp_directory_path() / "kiln_json_test_no_such_file.json").string();
    try {
      kiln::format::read_json_file(path);
      FAIL("expected an error");
    } catch (const kiln::Error& e) {
      CHECK(e.kind() == kiln::ErrorKind::bad_input);
      CHECK(e.file() == path);
      CHECK(e.where().empty());
      CHECK(contains(e.message(), "cannot open: "));
      CHECK(contains(e.message(), "No such file or directory"));
    }
  }

  SUBCASE("a directory") {
    const std::string path = std::filesystem::temp_directory_path().string();
    try {
      kiln::format::read_json_file(path);
      FAIL("expected an error");
    } catch (const kiln::Error& e) {
      CHECK(e.kind() == kiln::ErrorKind::bad_input);
      CHECK(e.file() == path);
    }
  }

  SUBCASE("an empty file") {
    TempFile file("");
    try {
      kiln::format::read_json_file(file.path.string());
      FAIL("expected an error");
    } catch (const kiln::Error& e) {
      CHECK(e.where() == "line 1, column 1");
      CHECK(contains(e.message(), "end of input"));
    }
  }
}
