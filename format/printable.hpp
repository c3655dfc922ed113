// printable — bytes from a file, made safe to quote in an error message.
//
// Names, headers and strings in a hostile file may hold any byte. Messages quote them with
// printable ASCII kept, every other byte (and the backslash) as \xNN, and at most `max`
// bytes followed by "...", so an error stays readable, valid UTF-8 and short. `also` names
// further characters to escape, such as the quote a caller wraps the result in.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace kiln::format {

inline std::string printable(std::string_view s, std::size_t max, std::string_view also = {}) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < s.size() && i < max; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\' && also.find(static_cast<char>(c)) == std::string_view::npos) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (s.size() > max) out += "...";
  return out;
}

}  // namespace kiln::format
