// Constant-time lookups of the reference tokenizer's Unicode properties.
//
// Built once, on first use, from the probed range tables of unicode_tables.cpp into
// two-stage block tables (identical blocks shared), because the normalizer and
// pre-tokenizer ask about every character of every text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "tokenizer/unicode_tables.hpp"

namespace kiln::tokenizer {

inline constexpr char32_t kMaxCodePoint = 0x10FFFF;

// Bits set beside the probed tables::Flag bits, so that the normalizer's common case (a
// character that neither decomposes, combines nor changes case) needs one lookup.
inline constexpr std::uint16_t kDecomposes = 0x100;     // has a canonical decomposition
inline constexpr std::uint16_t kCombining = 0x200;      // canonical combining class is not 0
inline constexpr std::uint16_t kLowerChanges = 0x400;   // lowercase differs from itself

// A value per code point, stored as shared blocks of 128.
template <typename T>
class BlockTable {
 public:
  static constexpr unsigned kShift = 7;
  static constexpr char32_t kMask = (char32_t{1} << kShift) - 1;

  // values has one entry per code point 0..kMaxCodePoint.
  explicit BlockTable(const std::vector<T>& values);
  BlockTable() = default;

  T operator[](char32_t cp) const {
    return blocks_[(static_cast<std::size_t>(index_[cp >> kShift]) << kShift) | (cp & kMask)];
  }

 private:
  std::vector<std::uint16_t> index_;
  std::vector<T> blocks_;
};

class UnicodeData {
 public:
  static const UnicodeData& get();

  std::uint16_t flags(char32_t cp) const { return flags_[cp]; }
  std::uint8_t combining_class(char32_t cp) const { return ccc_[cp]; }

  // Calls emit(c) for each code point of cp's lowercase (Rust's char::to_lowercase: one
  // character at a time, so 'Σ' is always 'σ').
  template <typename Emit>
  void lowercase(char32_t cp, Emit&& emit) const {
    const std::int32_t delta = lower_[cp];
    if (delta == kMultiLower) {
      for (const char32_t c : lower_multi(cp)) emit(c);
    } else {
      emit(static_cast<char32_t>(static_cast<std::int32_t>(cp) + delta));
    }
  }

  // Calls emit(c) for each code point of cp's canonical decomposition (cp itself when it
  // has none).
  template <typename Emit>
  void decompose(char32_t cp, Emit&& emit) const {
    if (tables::kHangulAlgorithmic && cp >= kHangulFirst && cp < kHangulFirst + kHangulCount) {
      const char32_t i = cp - kHangulFirst;
      emit(static_cast<char32_t>(0x1100 + i / 588));
      emit(static_cast<char32_t>(0x1161 + (i % 588) / 28));
      if (i % 28 != 0) emit(static_cast<char32_t>(0x11A7 + i % 28));
      return;
    }
    const Span d = decomposition(cp);
    if (d.size == 0) {
      emit(cp);
      return;
    }
    for (std::size_t k = 0; k < d.size; ++k) emit(d.data[k]);
  }

 private:
  struct Span {
    const char32_t* data = nullptr;
    std::size_t size = 0;
    const char32_t* begin() const { return data; }
    const char32_t* end() const { return data + size; }
  };
  static constexpr std::int32_t kMultiLower = std::numeric_limits<std::int32_t>::min();
  static constexpr char32_t kHangulFirst = 0xAC00;
  static constexpr char32_t kHangulCount = 11172;

  UnicodeData();
  Span lower_multi(char32_t cp) const;
  Span decomposition(char32_t cp) const;

  BlockTable<std::uint16_t> flags_;
  BlockTable<std::uint8_t> ccc_;
  BlockTable<std::int32_t> lower_;
};

}  // namespace kiln::tokenizer
