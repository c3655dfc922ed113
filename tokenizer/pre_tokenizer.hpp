// BertPreTokenizer: words are split at whitespace (which is dropped) and every
// punctuation character is a word of its own.
#pragma once

#include <cstddef>

#include "tokenizer/normalizer.hpp"
#include "tokenizer/unicode.hpp"

namespace kiln::tokenizer {

// Calls on_word(begin, end) for each word of chars[0, n), as index ranges, in order.
template <typename OnWord>
void pre_tokenize(const NChar* chars, std::size_t n, OnWord&& on_word) {
  const UnicodeData& u = UnicodeData::get();
  std::size_t start = 0;
  bool in_word = false;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint16_t f = u.flags(chars[i].cp);
    if (f & tables::kWhitespace) {
      if (in_word) on_word(start, i);
      in_word = false;
    } else if (f & tables::kPunctuation) {
      if (in_word) on_word(start, i);
      on_word(i, i + 1);
      in_word = false;
    } else if (!in_word) {
      start = i;
      in_word = true;
    }
  }
  if (in_word) on_word(start, n);
}

}  // namespace kiln::tokenizer
