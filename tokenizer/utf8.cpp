#include "tokenizer/utf8.hpp"

#include <cstdint>
#include <cstring>

#include "kiln/error.hpp"

namespace kiln::tokenizer {

namespace {

// Decodes one sequence starting at text[i] (a non-ASCII lead byte). Returns its length and
// sets cp, or returns 0 and sets reason.
std::size_t decode_one(const unsigned char* p, std::size_t left, char32_t& cp, const char*& reason) {
  const unsigned char b0 = p[0];
  std::size_t len;
  char32_t min;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
    cp = b0 & 0x1F;
    min = 0x80;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    cp = b0 & 0x0F;
    min = 0x800;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    cp = b0 & 0x07;
    min = 0x10000;
  } else {
    reason = (b0 >= 0x80 && b0 <= 0xBF) ? "unexpected continuation byte"
             : (b0 == 0xC0 || b0 == 0xC1) ? "overlong encoding"
                                          : "byte that never appears in UTF-8";
    return 0;
  }
  if (left < len) {
    for (std::size_t k = 1; k < left; ++k) {
      if ((p[k] & 0xC0) != 0x80) {
        reason = "missing continuation byte";
        return 0;
      }
    }
    reason = "truncated sequence at the end";
    return 0;
  }
  for (std::size_t k = 1; k < len; ++k) {
    if ((p[k] & 0xC0) != 0x80) {
      reason = "missing continuation byte";
      return 0;
    }
    cp = (cp << 6) | (p[k] & 0x3F);
  }
  if (cp < min) {
    reason = "overlong encoding";
    return 0;
  }
  if (cp >= 0xD800 && cp <= 0xDFFF) {
    reason = "encoded surrogate";
    return 0;
  }
  if (cp > 0x10FFFF) {
    reason = "code point above U+10FFFF";
    return 0;
  }
  return len;
}

std::string hex_byte(unsigned char b) {
  static const char digits[] = "0123456789ABCDEF";
  return std::string("0x") + digits[b >> 4] + digits[b & 15];
}

}  // namespace

Utf8Problem find_invalid_utf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    char32_t cp;
    const char* reason = "";
    const std::size_t len = decode_one(p + i, n - i, cp, reason);
    if (len == 0) return {i, reason};
    i += len;
  }
  return {};
}

void decode_utf8(std::string_view text, std::vector<char32_t>& out, std::string_view what) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  out.reserve(out.size() + n);
  std::size_t i = 0;
  while (i < n) {
    // Most text is ASCII: take eight bytes at a time while none has its top bit set.
    while (i + 8 <= n) {
      std::uint64_t word;
      std::memcpy(&word, p + i, 8);
      if (word & 0x8080808080808080ULL) break;
      for (std::size_t k = 0; k < 8; ++k) out.push_back(p[i + k]);
      i += 8;
    }
    if (i >= n) break;
    if (p[i] < 0x80) {
      out.push_back(p[i++]);
      continue;
    }
    char32_t cp;
    const char* reason = "";
    const std::size_t len = decode_one(p + i, n - i, cp, reason);
    if (len == 0) {
      throw Error::bad_input("", "byte " + std::to_string(i),
                             "invalid UTF-8 in the " + std::string(what) + ": " + reason + " (" + hex_byte(p[i]) + ")");
    }
    out.push_back(cp);
    i += len;
  }
}

}  // namespace kiln::tokenizer
