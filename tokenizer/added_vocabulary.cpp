#include "tokenizer/added_vocabulary.hpp"

#include <algorithm>

#include "tokenizer/unicode.hpp"
#include "tokenizer/utf8.hpp"

namespace kiln::tokenizer {

void AddedVocabulary::PatternSet::add(std::u32string text, std::int32_t token) {
  if (text.empty()) return;  // an empty pattern would match everywhere; it can never be a token
  patterns.push_back({std::move(text), token});
}

void AddedVocabulary::PatternSet::finish() {
  std::stable_sort(patterns.begin(), patterns.end(),
                   [](const Pattern& a, const Pattern& b) { return a.text[0] < b.text[0]; });
  for (const Pattern& p : patterns) {
    const char32_t c = p.text[0];
    if (c < 128) {
      ascii_first[c >> 6] |= std::uint64_t{1} << (c & 63);
    } else {
      other_first.push_back(c);
    }
  }
  std::sort(other_first.begin(), other_first.end());
  other_first.erase(std::unique(other_first.begin(), other_first.end()), other_first.end());
}

bool AddedVocabulary::PatternSet::may_start(char32_t c) const {
  if (c < 128) return (ascii_first[c >> 6] >> (c & 63)) & 1;
  return !other_first.empty() && std::binary_search(other_first.begin(), other_first.end(), c);
}

AddedVocabulary::AddedVocabulary(std::vector<AddedToken> tokens, const NormalizerConfig& normalizer) {
  // A content listed again keeps its first id but takes the later flags, as the reference
  // (which overwrites its id -> token map) does. Two normalized tokens whose contents
  // normalize alike are both kept; the reference then picks either at random (its pattern
  // order comes from a hash map), kiln the first.
  for (AddedToken& t : tokens) {
    if (const auto it = by_content_.find(t.content); it != by_content_.end()) {
      AddedToken& first = tokens_[by_id_.at(it->second)];
      t.id = first.id;
      first = std::move(t);
      continue;
    }
    by_content_.emplace(t.content, t.id);
    by_id_.emplace(t.id, tokens_.size());
    tokens_.push_back(std::move(t));
  }
  for (std::size_t i = 0; i < tokens_.size(); ++i) {
    const AddedToken& t = tokens_[i];
    std::vector<char32_t> cps;
    decode_utf8(t.content, cps, "added token");
    if (t.normalized) {
      std::vector<NChar> normalized;
      normalize(normalizer, cps, 0, normalized);
      std::u32string text;
      for (const NChar& c : normalized) text.push_back(c.cp);
      names_.push_back(to_utf8(text.begin(), text.end()));
      normalized_.add(std::move(text), static_cast<std::int32_t>(i));
    } else {
      names_.push_back(t.content);
      raw_.add(std::u32string(cps.begin(), cps.end()), static_cast<std::int32_t>(i));
    }
  }
  raw_.finish();
  normalized_.finish();
}

std::optional<std::int32_t> AddedVocabulary::find(std::string_view content) const {
  const auto it = by_content_.find(std::string(content));
  if (it == by_content_.end()) return std::nullopt;
  return it->second;
}

const std::string* AddedVocabulary::token(std::int32_t id) const {
  const auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &names_[it->second];
}

// The reference's rules, in its order: find the next leftmost-longest match (searching on
// from the end of the previous match, not of its stripped whitespace), drop it if
// single_word and a word character touches it, widen it over whitespace for lstrip (never
// back into the previous match) and rstrip.
template <typename CpAt>
void AddedVocabulary::split(const PatternSet& set, std::size_t n, CpAt cp_at, std::vector<Split>& out) const {
  const UnicodeData& u = UnicodeData::get();
  const auto is_word = [&](std::size_t i) { return (u.flags(cp_at(i)) & tables::kWord) != 0; };
  const auto is_space = [&](std::size_t i) { return (u.flags(cp_at(i)) & tables::kWhitespace) != 0; };
  std::size_t start_offset = 0;
  std::size_t pos = 0;
  while (pos < n) {
    std::int32_t best = -1;
    std::size_t best_len = 0;
    std::size_t s = pos;
    for (; s < n; ++s) {
      const char32_t c = cp_at(s);
      if (!set.may_start(c)) continue;
      auto it = std::lower_bound(set.patterns.begin(), set.patterns.end(), c,
                                 [](const PatternSet::Pattern& p, char32_t v) { return p.text[0] < v; });
      for (; it != set.patterns.end() && it->text[0] == c; ++it) {
        const std::size_t len = it->text.size();
        if (len <= best_len || len > n - s) continue;
        std::size_t k = 1;
        while (k < len && cp_at(s + k) == it->text[k]) ++k;
        if (k == len) {
          best = it->token;
          best_len = len;
        }
      }
      if (best >= 0) break;
    }
    if (best < 0) break;
    std::size_t start = s;
    std::size_t stop = s + best_len;
    pos = stop;
    const AddedToken& t = tokens_[static_cast<std::size_t>(best)];
    if (t.single_word) {
      const bool start_space = start == 0 || !is_word(start - 1);
      const bool stop_space = stop == n || !is_word(stop);
      if (!start_space || !stop_space) continue;
    }
    if (t.lstrip) {
      std::size_t widened = start;
      while (widened > 0 && is_space(widened - 1)) --widened;
      start = std::max(widened, start_offset);
    }
    if (t.rstrip) {
      while (stop < n && is_space(stop)) ++stop;
    }
    if (start > start_offset) out.push_back({Split::kText, start_offset, start});
    out.push_back({best, start, stop});
    start_offset = stop;
  }
  if (start_offset < n) out.push_back({Split::kText, start_offset, n});
}

void AddedVocabulary::split_raw(std::span<const char32_t> text, std::vector<Split>& out) const {
  if (!has_raw()) {
    if (!text.empty()) out.push_back({Split::kText, 0, text.size()});
    return;
  }
  split(raw_, text.size(), [&](std::size_t i) { return text[i]; }, out);
}

void AddedVocabulary::split_normalized(std::span<const NChar> text, std::vector<Split>& out) const {
  if (!has_normalized()) {
    if (!text.empty()) out.push_back({Split::kText, 0, text.size()});
    return;
  }
  split(normalized_, text.size(), [&](std::size_t i) { return text[i].cp; }, out);
}

}  // namespace kiln::tokenizer
