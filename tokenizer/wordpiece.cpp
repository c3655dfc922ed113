#include "tokenizer/wordpiece.hpp"

#include <algorithm>

#include "kiln/error.hpp"
#include "tokenizer/utf8.hpp"

namespace kiln::tokenizer {

WordPiece::WordPiece(const std::vector<std::pair<std::string, std::int32_t>>& entries, WordPieceConfig config)
    : config_(std::move(config)) {
  std::int32_t max_id = -1;
  for (const auto& entry : entries) max_id = std::max(max_id, entry.second);
  by_id_.assign(static_cast<std::size_t>(max_id + 1), -1);
  std::vector<char32_t> cps;
  for (const auto& [token, id] : entries) {
    cps.clear();
    decode_utf8(token, cps, "token");
    const std::uint32_t node = trie_.insert(std::u32string_view(cps.data(), cps.size()));
    std::int32_t entry = trie_.value(node);
    if (entry == CodePointTrie::kNoValue) {
      entry = static_cast<std::int32_t>(texts_.size());
      texts_.push_back(token);
      ids_.push_back(id);
      trie_.set_value(node, entry);
    } else {
      // The token again: its later id wins and the earlier id is left without a token.
      const std::int32_t before = ids_[static_cast<std::size_t>(entry)];
      if (by_id_[static_cast<std::size_t>(before)] == entry) by_id_[static_cast<std::size_t>(before)] = -1;
      ids_[static_cast<std::size_t>(entry)] = id;
    }
    by_id_[static_cast<std::size_t>(id)] = entry;
  }
  // Creating the prefix's path when no token has it is harmless: a walk from there finds
  // no token, so a word that needs a continuation becomes [UNK], as in the reference.
  cps.clear();
  decode_utf8(config_.continuing_subword_prefix, cps, "continuing_subword_prefix");
  const std::uint32_t cont = trie_.insert(std::u32string_view(cps.data(), cps.size()));
  trie_.freeze({0, cont});
  start_node_ = 0;
  continue_node_ = cont == 0 ? 0 : 1;
  if (auto unk = find(config_.unk_token)) unk_id_ = *unk;
}

std::optional<std::int32_t> WordPiece::find(std::string_view token) const {
  std::vector<char32_t> cps;
  try {
    decode_utf8(token, cps, "token");
  } catch (const Error&) {
    return std::nullopt;
  }
  const std::uint32_t node = trie_.find(std::u32string_view(cps.data(), cps.size()), start_node_);
  if (node == CodePointTrie::kNone) return std::nullopt;
  const std::int32_t entry = trie_.value(node);
  if (entry == CodePointTrie::kNoValue) return std::nullopt;
  return ids_[static_cast<std::size_t>(entry)];
}

const std::string* WordPiece::token(std::int32_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= by_id_.size() || by_id_[static_cast<std::size_t>(id)] < 0) {
    return nullptr;
  }
  return &texts_[static_cast<std::size_t>(by_id_[static_cast<std::size_t>(id)])];
}

void WordPiece::tokenize(const NChar* word, std::size_t n, std::vector<Piece>& out) const {
  const std::size_t mark = out.size();
  if (n <= config_.max_input_chars_per_word) {
    std::size_t start = 0;
    while (start < n) {
      std::uint32_t node = start == 0 ? start_node_ : continue_node_;
      std::size_t best_end = 0;
      std::int32_t best = CodePointTrie::kNoValue;
      for (std::size_t j = start; j < n; ++j) {
        node = trie_.step(node, word[j].cp);
        if (node == CodePointTrie::kNone) break;
        const std::int32_t entry = trie_.value(node);
        if (entry != CodePointTrie::kNoValue) {
          best = entry;
          best_end = j + 1;
        }
      }
      if (best == CodePointTrie::kNoValue) break;
      out.push_back({ids_[static_cast<std::size_t>(best)], best, static_cast<std::uint32_t>(start),
                     static_cast<std::uint32_t>(best_end)});
      start = best_end;
    }
    if (start == n) return;
  }
  out.resize(mark);
  if (!unk_id_) {
    throw Error::bad_input("", "", "WordPiece needs the unknown token " + config_.unk_token +
                                       " but the vocabulary has none");
  }
  out.push_back({*unk_id_, -1, 0, static_cast<std::uint32_t>(n)});
}

}  // namespace kiln::tokenizer
