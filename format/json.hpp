// JsonValue and parse_json — a strict, bounded JSON reader (RFC 8259).
//
// Used for fixture manifests, tokenizer.json and JSON-lines input. It validates UTF-8,
// decodes escapes (surrogate pairs included), caps nesting depth, and reports errors as
// kiln::Error naming the source and "line L, column C" (columns count bytes from 1).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln::format {

class JsonValue {
 public:
  enum class Kind { null, boolean, number, string, array, object };

  JsonValue() = default;  // null

  Kind kind() const { return kind_; }
  bool is_null() const { return kind_ == Kind::null; }
  bool is_bool() const { return kind_ == Kind::boolean; }
  bool is_number() const { return kind_ == Kind::number; }
  bool is_string() const { return kind_ == Kind::string; }
  bool is_array() const { return kind_ == Kind::array; }
  bool is_object() const { return kind_ == Kind::object; }

  // Typed access; each throws kiln::Error (bad_input) naming the expected and actual kind.
  bool as_bool() const;
  double as_double() const;
  // The number as an exact integer; throws if it has a fraction or exponent that makes it
  // non-integral, or does not fit in int64.
  std::int64_t as_int() const;
  const std::string& as_string() const;
  const std::vector<JsonValue>& as_array() const;
  // Members in document order. Duplicate keys are rejected by the parser.
  const std::vector<std::pair<std::string, JsonValue>>& as_object() const;

  // Object member lookup: find() returns nullptr when absent (or when not an object);
  // at() throws kiln::Error naming the missing key.
  const JsonValue* find(std::string_view key) const;
  const JsonValue& at(std::string_view key) const;
  // Array element; throws when out of range or not an array.
  const JsonValue& at(std::size_t index) const;
  std::size_t size() const;  // elements of an array or members of an object, else 0

  // Builders, used by the parser and by tests.
  static JsonValue make_bool(bool v);
  static JsonValue make_number(double v, std::string literal);
  static JsonValue make_string(std::string v);
  static JsonValue make_array(std::vector<JsonValue> v);
  static JsonValue make_object(std::vector<std::pair<std::string, JsonValue>> v);

 private:
  Kind kind_ = Kind::null;
  bool bool_ = false;
  double number_ = 0;
  std::string text_;  // string value, or the number's literal (for exact integers)
  std::vector<JsonValue> array_;
  std::vector<std::pair<std::string, JsonValue>> object_;
};

// "null", "a boolean", "a number", "a string", "an array", "an object": for messages.
const char* json_kind_name(JsonValue::Kind kind);

struct JsonLimits {
  std::size_t max_depth = 256;  // nesting of arrays and objects
};

// Parses one JSON document (surrounding whitespace allowed, nothing else after it).
// `source` names the text in errors, e.g. a file path.
JsonValue parse_json(std::string_view text, const std::string& source, JsonLimits limits = {});

// Reads a whole file and parses it; errors name the path.
JsonValue read_json_file(const std::string& path, JsonLimits limits = {});

}  // namespace kiln::format
