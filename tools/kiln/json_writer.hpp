// JsonWriter — writes the CLI's `--json` output: compact, valid JSON, keys in the order given.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "format/utf8.hpp"

namespace kiln::cli {

class JsonWriter {
 public:
  JsonWriter& begin_object() { open('{'); return *this; }
  JsonWriter& end_object() { close('}'); return *this; }
  JsonWriter& begin_array() { open('['); return *this; }
  JsonWriter& end_array() { close(']'); return *this; }
  JsonWriter& key(std::string_view k) {
    comma();
    quote(k);
    out_ += ':';
    after_key_ = true;
    return *this;
  }
  JsonWriter& value(std::string_view s) { comma(); quote(s); return *this; }
  JsonWriter& value(const char* s) { return value(std::string_view(s)); }
  JsonWriter& value(bool b) { comma(); out_ += b ? "true" : "false"; return *this; }
  JsonWriter& value(std::int64_t n) { comma(); out_ += std::to_string(n); return *this; }
  JsonWriter& value(std::uint64_t n) { comma(); out_ += std::to_string(n); return *this; }
  JsonWriter& value(int n) { return value(static_cast<std::int64_t>(n)); }
  // Six significant digits ("12.3457", "1.5e+06"): measurements, not exact values. JSON has
  // no NaN or infinity, so those are null.
  JsonWriter& value(double d) {
    if (!std::isfinite(d)) return null();
    comma();
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", d);
    out_ += buf;
    return *this;
  }
  // A float32 result (a score): nine significant digits, enough to read back the same float.
  JsonWriter& value(float f) {
    if (!std::isfinite(f)) return null();
    comma();
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(f));
    out_ += buf;
    return *this;
  }
  JsonWriter& null() { comma(); out_ += "null"; return *this; }
  template <typename T>
  JsonWriter& field(std::string_view k, const T& v) { key(k); return value(v); }

  const std::string& str() const { return out_; }

 private:
  void open(char c) { comma(); out_ += c; first_.push_back(true); }
  void close(char c) { out_ += c; first_.pop_back(); }
  // A comma before every value but the first in its container, and none right after a key.
  void comma() {
    if (after_key_) { after_key_ = false; return; }
    if (first_.empty()) return;
    if (!first_.back()) out_ += ',';
    first_.back() = false;
  }
  // Strings from archives may hold any bytes: control characters are escaped and bytes
  // that are not valid UTF-8 become U+FFFD, so the output is always valid JSON.
  void quote(std::string_view s) {
    out_ += '"';
    for (size_t i = 0; i < s.size();) {
      const unsigned char c = static_cast<unsigned char>(s[i]);
      if (c == '"' || c == '\\') { out_ += '\\'; out_ += static_cast<char>(c); ++i; continue; }
      if (c < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
        out_ += buf;
        ++i;
        continue;
      }
      const size_t n = format::utf8_sequence_length(s, i);
      if (n == 0) { out_ += "\xEF\xBF\xBD"; ++i; continue; }
      out_.append(s.substr(i, n));
      i += n;
    }
    out_ += '"';
  }
  std::string out_;
  std::vector<bool> first_;
  bool after_key_ = false;
};

}  // namespace kiln::cli
