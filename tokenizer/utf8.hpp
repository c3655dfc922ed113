// Strict UTF-8 decoding and encoding for the tokenizer.
//
// Hugging Face's tokenizers only ever see valid UTF-8 (a Rust &str), so kiln refuses
// anything else up front, naming the first bad byte, instead of guessing a repair.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::tokenizer {

// Appends the code points of text to out. Invalid UTF-8 (bad lead or continuation bytes,
// truncation, overlong forms, surrogates, values above U+10FFFF) throws
// kiln::Error::bad_input("", "byte N", "invalid UTF-8...") with N counted from 0;
// `what` names the text in the message ("text", "second text", "line 3"...).
void decode_utf8(std::string_view text, std::vector<char32_t>& out, std::string_view what = "text");

// The byte offset of the first invalid sequence and why, or npos when text is valid.
struct Utf8Problem {
  std::size_t offset = std::string_view::npos;
  const char* reason = "";
};
Utf8Problem find_invalid_utf8(std::string_view text);

inline void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

template <typename It>
std::string to_utf8(It first, It last) {
  std::string out;
  for (; first != last; ++first) append_utf8(out, *first);
  return out;
}

}  // namespace kiln::tokenizer
