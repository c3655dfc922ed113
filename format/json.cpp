#include "format/json.hpp"

#include "format/utf8.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <system_error>

#include "kiln/error.hpp"

namespace kiln::format {

namespace {

// A JsonValue does not know which document it came from, so access errors carry no file;
// callers that want one catch and rethrow with their own context.
[[noreturn]] void kind_error(JsonValue::Kind expected, JsonValue::Kind actual) {
  throw Error::bad_input("", "", std::string("expected ") + json_kind_name(expected) + ", got " +
                                     json_kind_name(actual));
}

std::string hex_byte(unsigned char c) {
  static const char digits[] = "0123456789ABCDEF";
  std::string out = "0x";
  out += digits[c >> 4];
  out += digits[c & 0xF];
  return out;
}

// Keys and number literals end up in error messages, where a raw newline or quote would
// make the message ambiguous, so those are escaped (control bytes as \xNN).
std::string json_quoted(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c == 0x7F) {
      out += "\\x";
      out += hex_byte(c).substr(2);
    } else {
      out += ch;
    }
  }
  out += '"';
  return out;
}

std::string describe_byte(unsigned char c) {
  if (c > 0x20 && c < 0x7F) return std::string("'") + static_cast<char>(c) + "'";
  return "byte " + hex_byte(c);
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Exponents beyond this are clamped; any nonzero mantissa with such an exponent is far
// outside both double and int64, and the clamp keeps the arithmetic below from overflowing.
constexpr std::int64_t kExponentClamp = 1'000'000'000'000;

// The pieces of a number literal that matches the RFC 8259 grammar.
struct NumberParts {
  bool negative = false;
  std::string_view int_digits;   // "0" or a run with no leading zero
  std::string_view frac_digits;  // empty when there is no '.'
  std::int64_t exponent = 0;     // clamped to +-kExponentClamp
};

struct NumberScanError {
  std::size_t offset;
  const char* message;
};

// Shared by the parser (which needs positioned errors) and as_int (which re-reads the
// literal kept in the value). On success `pos` is just past the literal.
bool scan_number(std::string_view s, std::size_t& pos, NumberParts& out, NumberScanError& err) {
  const std::size_t n = s.size();
  if (pos < n && s[pos] == '-') {
    out.negative = true;
    ++pos;
  }
  std::size_t int_begin = pos;
  if (pos >= n || !is_digit(s[pos])) {
    err = {pos, "expected a digit after '-'"};
    return false;
  }
  if (s[pos] == '0') {
    ++pos;
    if (pos < n && is_digit(s[pos])) {
      err = {int_begin, "leading zeros are not allowed in numbers"};
      return false;
    }
  } else {
    while (pos < n && is_digit(s[pos])) ++pos;
  }
  out.int_digits = s.substr(int_begin, pos - int_begin);
  if (pos < n && s[pos] == '.') {
    ++pos;
    std::size_t frac_begin = pos;
    while (pos < n && is_digit(s[pos])) ++pos;
    if (pos == frac_begin) {
      err = {pos, "expected a digit after '.'"};
      return false;
    }
    out.frac_digits = s.substr(frac_begin, pos - frac_begin);
  }
  if (pos < n && (s[pos] == 'e' || s[pos] == 'E')) {
    ++pos;
    bool exp_negative = false;
    if (pos < n && (s[pos] == '+' || s[pos] == '-')) {
      exp_negative = s[pos] == '-';
      ++pos;
    }
    std::size_t exp_begin = pos;
    std::int64_t exponent = 0;
    while (pos < n && is_digit(s[pos])) {
      if (exponent < kExponentClamp) exponent = exponent * 10 + (s[pos] - '0');
      ++pos;
    }
    if (pos == exp_begin) {
      err = {pos, "expected a digit in the exponent"};
      return false;
    }
    if (exponent > kExponentClamp) exponent = kExponentClamp;
    out.exponent = exp_negative ? -exponent : exponent;
  }
  return true;
}

// from_chars reports underflow and overflow alike as out_of_range; the decimal position of
// the leading significant digit tells them apart (the value only leaves double's range near
// 1e-324 or 1e308, so its sign is enough).
bool is_underflow(const NumberParts& parts) {
  std::int64_t magnitude = parts.exponent;
  if (parts.int_digits.find_first_not_of('0') != std::string_view::npos) {
    magnitude += static_cast<std::int64_t>(parts.int_digits.size()) - 1;
  } else {
    // All-zero mantissas convert to 0 without error, so a nonzero fraction digit exists.
    magnitude -= static_cast<std::int64_t>(parts.frac_digits.find_first_not_of('0')) + 1;
  }
  return magnitude < 0;
}

std::string location(std::string_view text, std::size_t offset) {
  std::size_t line = 1;
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(offset - line_start + 1);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

using Members = std::vector<std::pair<std::string, JsonValue>>;

// Duplicate-key detection for one object. A std::unordered_set<std::string> costs a copy
// and a node allocation per key, which dominated parsing of large vocabularies; this
// table holds only member indices and their hashes, and compares against the keys
// already stored in the members. Small objects are scanned linearly instead.
class KeyIndex {
 public:
  // Records `key` as the key of member number members.size() (the member about to be
  // added). Returns false when an earlier member already has this key.
  bool insert(std::string_view key, const Members& members) {
    const std::size_t h = std::hash<std::string_view>{}(key);
    if (slots_.empty()) {
      for (std::size_t i = 0; i < hashes_.size(); ++i) {
        if (hashes_[i] == h && members[i].first == key) return false;
      }
    } else {
      const std::size_t mask = slots_.size() - 1;
      for (std::size_t s = h & mask; slots_[s] != 0; s = (s + 1) & mask) {
        const std::size_t i = slots_[s] - 1;
        if (hashes_[i] == h && members[i].first == key) return false;
      }
    }
    hashes_.push_back(h);
    if (hashes_.size() >= kLinearLimit && hashes_.size() * 2 > slots_.size()) {
      rebuild(std::max<std::size_t>(64, slots_.size() * 2));
    } else if (!slots_.empty()) {
      place(hashes_.size() - 1);
    }
    return true;
  }

 private:
  static constexpr std::size_t kLinearLimit = 16;

  void rebuild(std::size_t capacity) {  // capacity: a power of two
    slots_.assign(capacity, 0);
    for (std::size_t i = 0; i < hashes_.size(); ++i) place(i);
  }

  void place(std::size_t index) {
    const std::size_t mask = slots_.size() - 1;
    std::size_t s = hashes_[index] & mask;
    while (slots_[s] != 0) s = (s + 1) & mask;
    slots_[s] = index + 1;
  }

  std::vector<std::size_t> slots_;   // member index + 1; 0 marks an empty slot
  std::vector<std::size_t> hashes_;  // per member, so growing never re-reads keys
};

// A container under construction. The parser keeps these on a heap-allocated stack rather
// than recursing, so hostile nesting can only hit max_depth, never the thread's stack.
struct Frame {
  bool is_object = false;
  std::vector<JsonValue> items;
  Members members;
  KeyIndex keys;
  std::string key;  // the key whose value is being parsed
};

class Parser {
 public:
  Parser(std::string_view text, const std::string& source, JsonLimits limits)
      : text_(text), source_(source), limits_(limits) {}

  JsonValue parse() {
    if (text_.substr(0, 3) == "\xEF\xBB\xBF") fail(0, "a byte order mark is not allowed in JSON");
    std::vector<Frame> stack;
    for (;;) {
      std::optional<JsonValue> value = begin_value(stack);
      if (!value) continue;  // opened a non-empty container; its first value comes next
      JsonValue v = std::move(*value);
      // Attach the finished value to its parent, closing as many containers as end here.
      for (;;) {
        if (stack.empty()) {
          skip_ws();
          if (pos_ < text_.size()) {
            fail(pos_, "unexpected " + describe_byte(byte()) + " after the end of the document");
          }
          return v;
        }
        Frame& top = stack.back();
        if (top.is_object) {
          top.members.emplace_back(std::move(top.key), std::move(v));
        } else {
          top.items.push_back(std::move(v));
        }
        skip_ws();
        const char close = top.is_object ? '}' : ']';
        if (pos_ < text_.size() && text_[pos_] == ',') {
          ++pos_;
          skip_ws();
          if (pos_ < text_.size() && text_[pos_] == close) {
            fail(pos_, "trailing comma before " + describe_byte(byte()));
          }
          if (top.is_object) begin_member(top);
          break;
        }
        if (pos_ < text_.size() && text_[pos_] == close) {
          ++pos_;
          v = top.is_object ? JsonValue::make_object(std::move(top.members))
                            : JsonValue::make_array(std::move(top.items));
          stack.pop_back();
          continue;
        }
        fail(pos_, std::string("expected ',' or '") + close + "', got " + describe_next());
      }
    }
  }

 private:
  // Parses a scalar, or opens a container. Returns the finished value, or nothing when a
  // container was opened that has members still to parse (for an object, the first key
  // and its ':' are already consumed).
  std::optional<JsonValue> begin_value(std::vector<Frame>& stack) {
    skip_ws();
    if (pos_ >= text_.size()) fail(pos_, "expected a value, got end of input");
    const char c = text_[pos_];
    if (c == '[' || c == '{') {
      if (stack.size() >= limits_.max_depth) {
        fail(pos_, "nesting deeper than the limit of " + std::to_string(limits_.max_depth));
      }
      const bool is_object = c == '{';
      const char close = is_object ? '}' : ']';
      ++pos_;
      skip_ws();
      if (pos_ < text_.size() && text_[pos_] == close) {
        ++pos_;
        return is_object ? JsonValue::make_object({}) : JsonValue::make_array({});
      }
      stack.emplace_back();
      stack.back().is_object = is_object;
      if (is_object) begin_member(stack.back());
      return std::nullopt;
    }
    if (c == '"') {
      std::string s;
      parse_string(s);
      return JsonValue::make_string(std::move(s));
    }
    if (c == '-' || is_digit(c)) return parse_number();
    if (c == 't') return literal("true", JsonValue::make_bool(true));
    if (c == 'f') return literal("false", JsonValue::make_bool(false));
    if (c == 'n') return literal("null", JsonValue());
    fail(pos_, "expected a value, got " + describe_byte(byte()));
  }

  // Reads `"key" :` into the frame, leaving the parser at the member's value.
  void begin_member(Frame& frame) {
    if (pos_ >= text_.size() || text_[pos_] != '"') {
      fail(pos_, "expected a string key, got " + describe_next());
    }
    const std::size_t key_pos = pos_;
    frame.key.clear();
    parse_string(frame.key);
    if (!frame.keys.insert(frame.key, frame.members)) {
      fail(key_pos, "duplicate key " + json_quoted(frame.key));
    }
    skip_ws();
    if (pos_ >= text_.size() || text_[pos_] != ':') {
      fail(pos_, "expected ':' after key " + json_quoted(frame.key) + ", got " + describe_next());
    }
    ++pos_;
  }

  JsonValue literal(std::string_view word, JsonValue value) {
    if (text_.substr(pos_, word.size()) != word) {
      fail(pos_, "invalid literal; expected " + std::string(word));
    }
    pos_ += word.size();
    // "nullx" would otherwise be reported as trailing garbage after a valid null, which is
    // true but points the reader at the wrong thing.
    if (pos_ < text_.size() && std::isalnum(static_cast<unsigned char>(text_[pos_]))) {
      fail(pos_ - word.size(), "invalid literal; expected " + std::string(word));
    }
    return value;
  }

  JsonValue parse_number() {
    const std::size_t begin = pos_;
    NumberParts parts;
    NumberScanError err{};
    if (!scan_number(text_, pos_, parts, err)) fail(err.offset, err.message);
    const std::string_view lit = text_.substr(begin, pos_ - begin);
    double d = 0;
    auto [ptr, ec] = std::from_chars(lit.data(), lit.data() + lit.size(), d);
    if (ec == std::errc::result_out_of_range && is_underflow(parts)) {
      d = parts.negative ? -0.0 : 0.0;
    } else if (ec == std::errc::result_out_of_range) {
      fail(begin, "number " + std::string(lit) + " is out of the range of a double");
    } else if (ec != std::errc() || ptr != lit.data() + lit.size()) {
      fail(begin, "cannot convert number " + std::string(lit));
    }
    return JsonValue::make_number(d, std::string(lit));
  }

  void parse_string(std::string& out) {
    const std::size_t open = pos_;
    ++pos_;  // the opening quote
    const std::size_t n = text_.size();
    for (;;) {
      // Copy runs of plain ASCII in one go; most strings are nothing else.
      std::size_t run = pos_;
      while (run < n) {
        unsigned char c = static_cast<unsigned char>(text_[run]);
        if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) break;
        ++run;
      }
      out.append(text_.data() + pos_, run - pos_);
      pos_ = run;
      if (pos_ >= n) fail(open, "unterminated string");
      const unsigned char c = byte();
      if (c == '"') {
        ++pos_;
        return;
      }
      if (c == '\\') {
        parse_escape(out);
      } else if (c < 0x20) {
        fail(pos_, "control character " + hex_byte(c) + " in a string must be escaped");
      } else {
        const std::size_t len = utf8_sequence_length();
        out.append(text_.data() + pos_, len);
        pos_ += len;
      }
    }
  }

  // Validates the multi-byte UTF-8 sequence at pos_ and returns its length. Errors point at
  // the sequence's first byte, since that is where the bad character starts.
  std::size_t utf8_sequence_length() {
    const unsigned char lead = byte();
    std::size_t len = 0;
    // The allowed range of the second byte is narrower than 80..BF for some lead bytes; that
    // is exactly how overlongs, surrogates and code points past U+10FFFF are excluded.
    unsigned char lo = 0x80, hi = 0xBF;
    if (lead < 0xC0) {
      fail(pos_, "invalid UTF-8: unexpected continuation byte " + hex_byte(lead));
    } else if (lead < 0xC2) {
      fail(pos_, "invalid UTF-8: overlong encoding (lead byte " + hex_byte(lead) + ")");
    } else if (lead < 0xE0) {
      len = 2;
    } else if (lead < 0xF0) {
      len = 3;
      if (lead == 0xE0) lo = 0xA0;
      if (lead == 0xED) hi = 0x9F;
    } else if (lead < 0xF5) {
      len = 4;
      if (lead == 0xF0) lo = 0x90;
      if (lead == 0xF4) hi = 0x8F;
    } else {
      fail(pos_, "invalid UTF-8: byte " + hex_byte(lead) + " cannot start a character");
    }
    for (std::size_t i = 1; i < len; ++i) {
      if (pos_ + i >= text_.size()) fail(pos_, "invalid UTF-8: truncated sequence at end of input");
      const unsigned char c = static_cast<unsigned char>(text_[pos_ + i]);
      if (c < 0x80 || c > 0xBF) {
        fail(pos_, "invalid UTF-8: truncated sequence (lead byte " + hex_byte(lead) +
                       " followed by " + hex_byte(c) + ")");
      }
      if (i == 1 && (c < lo || c > hi)) {
        if (lead == 0xED) fail(pos_, "invalid UTF-8: encoded UTF-16 surrogate");
        if (lead == 0xF4) fail(pos_, "invalid UTF-8: code point above U+10FFFF");
        fail(pos_, "invalid UTF-8: overlong encoding (lead byte " + hex_byte(lead) + ")");
      }
    }
    return len;
  }

  // Reads 4 hex digits after "\u" at `at` (the backslash), or fails.
  std::uint32_t read_u_escape(std::size_t at) {
    if (at + 6 > text_.size()) fail(at, "invalid \\u escape: expected 4 hex digits");
    std::uint32_t v = 0;
    for (std::size_t i = at + 2; i < at + 6; ++i) {
      int h = hex_value(text_[i]);
      if (h < 0) fail(at, "invalid \\u escape: expected 4 hex digits");
      v = v * 16 + static_cast<std::uint32_t>(h);
    }
    return v;
  }

  void parse_escape(std::string& out) {
    const std::size_t at = pos_;
    if (at + 1 >= text_.size()) fail(at, "unterminated string");
    const char e = text_[at + 1];
    pos_ += 2;
    switch (e) {
      case '"': out += '"'; return;
      case '\\': out += '\\'; return;
      case '/': out += '/'; return;
      case 'b': out += '\b'; return;
      case 'f': out += '\f'; return;
      case 'n': out += '\n'; return;
      case 'r': out += '\r'; return;
      case 't': out += '\t'; return;
      case 'u': break;
      default: {
        const unsigned char b = static_cast<unsigned char>(e);
        fail(at, "invalid escape \\" +
                     (b >= 0x20 && b < 0x7F ? std::string(1, e) : "<" + describe_byte(b) + ">"));
      }
    }
    const std::uint32_t unit = read_u_escape(at);
    pos_ = at + 6;
    if (unit >= 0xDC00 && unit <= 0xDFFF) {
      fail(at, "lone low surrogate \\u" + std::string(text_.substr(at + 2, 4)) +
                   " in a \\u escape");
    }
    if (unit < 0xD800 || unit > 0xDBFF) {
      append_utf8(out, unit);
      return;
    }
    // A high surrogate means nothing alone; RFC 8259 spells astral characters as a pair.
    if (text_.substr(pos_, 2) != "\\u") {
      fail(at, "lone high surrogate \\u" + std::string(text_.substr(at + 2, 4)) +
                   " not followed by a low surrogate escape");
    }
    const std::uint32_t low = read_u_escape(pos_);
    if (low < 0xDC00 || low > 0xDFFF) {
      fail(at, "lone high surrogate \\u" + std::string(text_.substr(at + 2, 4)) +
                   " not followed by a low surrogate escape");
    }
    pos_ += 6;
    append_utf8(out, 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00));
  }

  void skip_ws() {
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return;
      ++pos_;
    }
  }

  unsigned char byte() const { return static_cast<unsigned char>(text_[pos_]); }

  std::string describe_next() const {
    return pos_ < text_.size() ? describe_byte(byte()) : std::string("end of input");
  }

  [[noreturn]] void fail(std::size_t offset, const std::string& message) const {
    throw Error::bad_input(source_, location(text_, offset), message);
  }

  std::string_view text_;
  const std::string& source_;
  JsonLimits limits_;
  std::size_t pos_ = 0;
};

// 1 GiB: far above any manifest or tokenizer, low enough that a wrong path (a disk image,
// /dev/zero) fails fast instead of exhausting memory.
constexpr std::uintmax_t kMaxFileBytes = std::uintmax_t{1} << 30;

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

}  // namespace

bool JsonValue::as_bool() const {
  if (kind_ != Kind::boolean) kind_error(Kind::boolean, kind_);
  return bool_;
}

double JsonValue::as_double() const {
  if (kind_ != Kind::number) kind_error(Kind::number, kind_);
  return number_;
}

// Exact: the literal is read as digits times a power of ten, so "3.0", "1e2" and
// "-9223372036854775808" are integers while "1.5", "1e-1" and "9223372036854775808" are
// not. The double is never consulted when a literal is present, because it has already
// rounded away the low bits of large integers.
std::int64_t JsonValue::as_int() const {
  if (kind_ != Kind::number) kind_error(Kind::number, kind_);
  if (text_.empty()) {
    // Built by make_number without a literal: the double is all there is.
    constexpr double two63 = 9223372036854775808.0;
    if (!std::isfinite(number_) || std::trunc(number_) != number_ || number_ < -two63 ||
        number_ >= two63) {
      throw Error::bad_input("", "", "number " + std::to_string(number_) + " is not an int64");
    }
    return static_cast<std::int64_t>(number_);
  }
  NumberParts parts;
  NumberScanError err{};
  std::size_t pos = 0;
  if (!scan_number(text_, pos, parts, err) || pos != text_.size()) {
    throw Error::bad_input("", "", "number literal " + json_quoted(text_) + " is not valid JSON");
  }
  // Significant digits of int_digits followed by frac_digits, scaled by 10^scale.
  std::string digits = std::string(parts.int_digits) + std::string(parts.frac_digits);
  std::int64_t scale = parts.exponent - static_cast<std::int64_t>(parts.frac_digits.size());
  std::size_t first = digits.find_first_not_of('0');
  if (first == std::string::npos) return 0;
  std::size_t last = digits.find_last_not_of('0');
  scale += static_cast<std::int64_t>(digits.size() - 1 - last);
  std::string_view sig = std::string_view(digits).substr(first, last - first + 1);
  if (scale < 0) throw Error::bad_input("", "", "number " + text_ + " is not an integer");
  // int64 has 19 digits; checking the count first keeps the uint64 accumulation below exact.
  if (static_cast<std::int64_t>(sig.size()) + scale > 19) {
    throw Error::bad_input("", "", "number " + text_ + " does not fit in int64");
  }
  std::uint64_t v = 0;
  for (char c : sig) v = v * 10 + static_cast<std::uint64_t>(c - '0');
  for (std::int64_t i = 0; i < scale; ++i) v *= 10;
  constexpr std::uint64_t max_positive = std::numeric_limits<std::int64_t>::max();
  if (v > max_positive + (parts.negative ? 1 : 0)) {
    throw Error::bad_input("", "", "number " + text_ + " does not fit in int64");
  }
  if (!parts.negative) return static_cast<std::int64_t>(v);
  if (v == max_positive + 1) return std::numeric_limits<std::int64_t>::min();
  return -static_cast<std::int64_t>(v);
}

const std::string& JsonValue::as_string() const {
  if (kind_ != Kind::string) kind_error(Kind::string, kind_);
  return text_;
}

const std::vector<JsonValue>& JsonValue::as_array() const {
  if (kind_ != Kind::array) kind_error(Kind::array, kind_);
  return array_;
}

const std::vector<std::pair<std::string, JsonValue>>& JsonValue::as_object() const {
  if (kind_ != Kind::object) kind_error(Kind::object, kind_);
  return object_;
}

const JsonValue* JsonValue::find(std::string_view key) const {
  if (kind_ != Kind::object) return nullptr;
  for (const auto& [k, v] : object_) {
    if (k == key) return &v;
  }
  return nullptr;
}

const JsonValue& JsonValue::at(std::string_view key) const {
  if (kind_ != Kind::object) kind_error(Kind::object, kind_);
  const JsonValue* v = find(key);
  if (v == nullptr) throw Error::bad_input("", "", "missing key " + json_quoted(key));
  return *v;
}

const JsonValue& JsonValue::at(std::size_t index) const {
  if (kind_ != Kind::array) kind_error(Kind::array, kind_);
  if (index >= array_.size()) {
    throw Error::bad_input("", "", "index " + std::to_string(index) +
                                       " is out of range for an array of " +
                                       std::to_string(array_.size()) + " elements");
  }
  return array_[index];
}

std::size_t JsonValue::size() const {
  if (kind_ == Kind::array) return array_.size();
  if (kind_ == Kind::object) return object_.size();
  return 0;
}

JsonValue JsonValue::make_bool(bool v) {
  JsonValue out;
  out.kind_ = Kind::boolean;
  out.bool_ = v;
  return out;
}

JsonValue JsonValue::make_number(double v, std::string literal) {
  JsonValue out;
  out.kind_ = Kind::number;
  out.number_ = v;
  out.text_ = std::move(literal);
  return out;
}

JsonValue JsonValue::make_string(std::string v) {
  JsonValue out;
  out.kind_ = Kind::string;
  out.text_ = std::move(v);
  return out;
}

JsonValue JsonValue::make_array(std::vector<JsonValue> v) {
  JsonValue out;
  out.kind_ = Kind::array;
  out.array_ = std::move(v);
  return out;
}

JsonValue JsonValue::make_object(std::vector<std::pair<std::string, JsonValue>> v) {
  JsonValue out;
  out.kind_ = Kind::object;
  out.object_ = std::move(v);
  return out;
}

JsonValue parse_json(std::string_view text, const std::string& source, JsonLimits limits) {
  return Parser(text, source, limits).parse();
}

JsonValue read_json_file(const std::string& path, JsonLimits limits) {
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (!file) {
    const int err = errno;
    throw Error::bad_input(path, "", "cannot open: " + std::generic_category().message(err));
  }
  std::error_code ec;
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  if (!ec && size > kMaxFileBytes) {
    throw Error::bad_input(path, "", "file is " + std::to_string(size) +
                                         " bytes, over the 1 GiB limit for JSON");
  }
  std::string text;
  if (!ec) text.reserve(static_cast<std::size_t>(size));
  // Read until EOF rather than trusting the size: pipes and /proc files report 0 or lie.
  char buffer[1 << 16];
  for (;;) {
    const std::size_t got = std::fread(buffer, 1, sizeof buffer, file.get());
    if (got > 0) {
      if (text.size() + got > kMaxFileBytes) {
        throw Error::bad_input(path, "", "file is over the 1 GiB limit for JSON");
      }
      text.append(buffer, got);
    }
    if (got < sizeof buffer) {
      if (std::ferror(file.get())) {
        const int err = errno;
        throw Error::bad_input(path, "", "cannot read: " + std::generic_category().message(err));
      }
      break;
    }
  }
  return parse_json(text, path, limits);
}

const char* json_kind_name(JsonValue::Kind kind) {
  switch (kind) {
    case JsonValue::Kind::null: return "null";
    case JsonValue::Kind::boolean: return "a boolean";
    case JsonValue::Kind::number: return "a number";
    case JsonValue::Kind::string: return "a string";
    case JsonValue::Kind::array: return "an array";
    case JsonValue::Kind::object: return "an object";
  }
  return "an unknown kind";
}

}  // namespace kiln::format
