// Strict UTF-8 decoding and encoding for the tokenizer.
//
// Hugging Face's tokenizers only ever see valid UTF-8 (a Rust &str), so kiln refuses
// anything else up front, naming the first bad byte, instead of guessing a repair.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "format/utf8.hpp"

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

using format::append_utf8;

template <typename It>
std::string to_utf8(It first, It last) {
  std::string out;
  for (; first != last; ++first) append_utf8(out, *first);
  return out;
}

}  // namespace kiln::tokenizer
