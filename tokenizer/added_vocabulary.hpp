// Added tokens ([CLS], [SEP], [PAD], [MASK], [UNK] and any others a tokenizer.json lists):
// found in the text before the model sees it and kept whole.
//
// Tokens with normalized=false are matched case-sensitively in the raw text, those with
// normalized=true in the normalized text against their normalized content. Matching is
// leftmost-longest without overlaps, then the single_word, lstrip and rstrip rules of the
// reference decide what each match becomes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/normalizer.hpp"

namespace kiln::tokenizer {

struct AddedToken {
  std::string content;
  std::int32_t id = 0;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
  bool special = false;
};

class AddedVocabulary {
 public:
  // A piece of the searched text: a match of added token `token` (an index into
  // tokens()), or with token == kText a stretch of ordinary text. [begin, end) in
  // characters of the searched text.
  struct Split {
    static constexpr std::int32_t kText = -1;
    std::int32_t token;
    std::size_t begin;
    std::size_t end;
  };

  AddedVocabulary() = default;
  // tokens in the reference's order of addition, ids already assigned. Normalized
  // patterns are normalized with `normalizer`.
  AddedVocabulary(std::vector<AddedToken> tokens, const NormalizerConfig& normalizer);

  const std::vector<AddedToken>& tokens() const { return tokens_; }
  bool has_raw() const { return !raw_.patterns.empty(); }
  bool has_normalized() const { return !normalized_.patterns.empty(); }

  // Splits raw text at the normalized=false tokens; appends to out.
  void split_raw(std::span<const char32_t> text, std::vector<Split>& out) const;
  // Splits normalized text at the normalized=true tokens; appends to out.
  void split_normalized(std::span<const NChar> text, std::vector<Split>& out) const;

  std::optional<std::int32_t> find(std::string_view content) const;
  // What the reference calls the token with that id: its content, normalized for a
  // normalized=true token.
  const std::string* token(std::int32_t id) const;

 private:
  struct PatternSet {
    struct Pattern {
      std::u32string text;
      std::int32_t token;
    };
    std::vector<Pattern> patterns;  // sorted by first code point
    std::uint64_t ascii_first[2] = {0, 0};
    std::vector<char32_t> other_first;  // sorted, unique

    void add(std::u32string text, std::int32_t token);
    void finish();
    bool may_start(char32_t c) const;
  };

  template <typename CpAt>
  void split(const PatternSet& set, std::size_t n, CpAt cp_at, std::vector<Split>& out) const;

  std::vector<AddedToken> tokens_;
  std::vector<std::string> names_;  // token(id) of each token
  PatternSet raw_;
  PatternSet normalized_;
  std::unordered_map<std::string, std::int32_t> by_content_;
  std::unordered_map<std::int32_t, std::size_t> by_id_;
};

}  // namespace kiln::tokenizer
