#include "tokenizer/unicode.hpp"

#include <algorithm>
#include <map>
#include <string_view>

#include "kiln/error.hpp"

namespace kiln::tokenizer {

template <typename T>
BlockTable<T>::BlockTable(const std::vector<T>& values) {
  constexpr std::size_t block = std::size_t{1} << kShift;
  const std::size_t n_blocks = (static_cast<std::size_t>(kMaxCodePoint) + 1) / block;
  index_.resize(n_blocks);
  // Unassigned planes repeat one block thousands of times; share identical blocks.
  std::map<std::string_view, std::uint16_t> seen;
  for (std::size_t b = 0; b < n_blocks; ++b) {
    const std::string_view key(reinterpret_cast<const char*>(values.data() + b * block), block * sizeof(T));
    auto [it, inserted] = seen.emplace(key, static_cast<std::uint16_t>(blocks_.size() / block));
    if (inserted) blocks_.insert(blocks_.end(), values.begin() + b * block, values.begin() + (b + 1) * block);
    index_[b] = it->second;
  }
}

template class BlockTable<std::uint8_t>;
template class BlockTable<std::uint16_t>;
template class BlockTable<std::int32_t>;

const UnicodeData& UnicodeData::get() {
  static const UnicodeData data;
  return data;
}

UnicodeData::UnicodeData() {
  const std::size_t n = static_cast<std::size_t>(kMaxCodePoint) + 1;
  std::vector<std::uint16_t> flags(n, 0);
  std::vector<std::uint8_t> ccc(n, 0);
  std::vector<std::int32_t> lower(n, 0);
  for (std::size_t i = 0; i < tables::kFlagRangeCount; ++i) {
    const tables::FlagRange& r = tables::kFlagRanges[i];
    for (char32_t c = r.first; c <= r.last; ++c) flags[c] = r.flags;
  }
  for (std::size_t i = 0; i < tables::kCccRangeCount; ++i) {
    const tables::CccRange& r = tables::kCccRanges[i];
    for (char32_t c = r.first; c <= r.last; ++c) {
      ccc[c] = r.ccc;
      flags[c] |= kCombining;
    }
  }
  for (std::size_t i = 0; i < tables::kLowerRunCount; ++i) {
    const tables::LowerRun& r = tables::kLowerRuns[i];
    for (std::size_t k = 0; k < r.count; ++k) {
      const char32_t c = r.first + static_cast<char32_t>(k * r.stride);
      lower[c] = r.delta;
      flags[c] |= kLowerChanges;
    }
  }
  for (std::size_t i = 0; i < tables::kLowerMultiCount; ++i) {
    lower[tables::kLowerMulti[i].cp] = kMultiLower;
    flags[tables::kLowerMulti[i].cp] |= kLowerChanges;
  }
  for (std::size_t i = 0; i < tables::kDecompositionCount; ++i) flags[tables::kDecompositions[i].cp] |= kDecomposes;
  if (tables::kHangulAlgorithmic) {
    for (char32_t c = kHangulFirst; c < kHangulFirst + kHangulCount; ++c) flags[c] |= kDecomposes;
  }
  flags_ = BlockTable<std::uint16_t>(flags);
  ccc_ = BlockTable<std::uint8_t>(ccc);
  lower_ = BlockTable<std::int32_t>(lower);
}

UnicodeData::Span UnicodeData::lower_multi(char32_t cp) const {
  const tables::Expansion* end = tables::kLowerMulti + tables::kLowerMultiCount;
  const tables::Expansion* it =
      std::lower_bound(tables::kLowerMulti, end, cp, [](const tables::Expansion& e, char32_t c) { return e.cp < c; });
  if (it == end || it->cp != cp) throw Error(ErrorKind::internal, "", "", "lowercase table has no entry it promised");
  return {tables::kLowerPool + it->offset, it->length};
}

UnicodeData::Span UnicodeData::decomposition(char32_t cp) const {
  if (!(flags_[cp] & kDecomposes)) return {};
  const tables::Expansion* end = tables::kDecompositions + tables::kDecompositionCount;
  const tables::Expansion* it = std::lower_bound(tables::kDecompositions, end, cp,
                                                 [](const tables::Expansion& e, char32_t c) { return e.cp < c; });
  if (it == end || it->cp != cp) return {};
  return {tables::kDecompPool + it->offset, it->length};
}

}  // namespace kiln::tokenizer
