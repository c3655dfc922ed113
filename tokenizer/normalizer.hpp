// BertNormalizer: clean_text, handle_chinese_chars, strip_accents, lowercase.
//
// Every normalized character remembers which character of the original text it came from,
// because token offsets are reported in the original text. The reference keeps that
// alignment through each step (inserted characters share their neighbour's), and so do we.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace kiln::tokenizer {

struct NormalizerConfig {
  bool clean_text = true;
  bool handle_chinese_chars = true;
  bool strip_accents = false;
  bool lowercase = true;
};

// A normalized character: its code point and the index of the original code point it
// came from.
struct NChar {
  char32_t cp;
  std::uint32_t orig;
};

// Appends the normalization of text to out; text[i] is original code point first_orig + i.
void normalize(const NormalizerConfig& config, std::span<const char32_t> text, std::uint32_t first_orig,
               std::vector<NChar>& out);

}  // namespace kiln::tokenizer
