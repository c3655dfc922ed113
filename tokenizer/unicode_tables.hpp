// The reference tokenizer's view of Unicode, as probed by tools/gen_unicode_tables.py.
//
// The data lives in the generated unicode_tables.cpp as compact range tables; unicode.hpp
// turns it into constant-time lookups. Nothing else should read these arrays directly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>

namespace kiln::tokenizer::tables {

// Properties of one code point, as the reference treats it.
enum Flag : std::uint8_t {
  kControl = 0x01,         // BertNormalizer(clean_text) deletes it
  kNormalizerSpace = 0x02, // BertNormalizer(clean_text) turns it into ' '
  kChinese = 0x04,         // BertNormalizer(handle_chinese_chars) pads it with spaces
  kNonspacingMark = 0x08,  // strip_accents deletes it after NFD
  kWhitespace = 0x10,      // BertPreTokenizer splits on it (Rust's char::is_whitespace)
  kPunctuation = 0x20,     // BertPreTokenizer isolates it
  kWord = 0x40,            // regex \w: blocks a single_word added token next to it
};

struct FlagRange {
  char32_t first;
  char32_t last;
  std::uint8_t flags;
};

struct CccRange {
  char32_t first;
  char32_t last;
  std::uint8_t ccc;
};

// first + i * stride (i < count) lowercases to (first + i * stride) + delta.
struct LowerRun {
  char32_t first;
  std::uint16_t count;
  std::uint16_t stride;
  std::int32_t delta;
};

// cp maps to pool[offset, offset + length).
struct Expansion {
  char32_t cp;
  std::uint16_t offset;
  std::uint8_t length;
};

extern const bool kHangulAlgorithmic;
extern const FlagRange kFlagRanges[];
extern const std::size_t kFlagRangeCount;
extern const CccRange kCccRanges[];
extern const std::size_t kCccRangeCount;
extern const LowerRun kLowerRuns[];
extern const std::size_t kLowerRunCount;
extern const Expansion kLowerMulti[];
extern const std::size_t kLowerMultiCount;
extern const char32_t kLowerPool[];
extern const Expansion kDecompositions[];
extern const std::size_t kDecompositionCount;
extern const char32_t kDecompPool[];

}  // namespace kiln::tokenizer::tables
