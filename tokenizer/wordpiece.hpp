// The WordPiece model: greedy longest-match-first over the vocabulary, "##" marking a
// piece that continues a word, and one [UNK] for a word that cannot be split or is longer
// than max_input_chars_per_word code points.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizer/normalizer.hpp"
#include "tokenizer/trie.hpp"

namespace kiln::tokenizer {

struct WordPieceConfig {
  std::string unk_token = "[UNK]";
  std::string continuing_subword_prefix = "##";
  std::size_t max_input_chars_per_word = 100;
};

class WordPiece {
 public:
  struct Piece {
    std::int32_t id;
    std::int32_t entry;   // the vocabulary entry matched, or -1 for the unknown token
    std::uint32_t begin;  // [begin, end) in characters of the word
    std::uint32_t end;
  };

  WordPiece() = default;
  // entries are (token, id), tokens valid UTF-8. A token given twice keeps its last id
  // (the reference's vocab.txt reader does so); the earlier id then has no token.
  WordPiece(const std::vector<std::pair<std::string, std::int32_t>>& entries, WordPieceConfig config);

  std::size_t size() const { return texts_.size(); }  // distinct tokens
  std::optional<std::int32_t> find(std::string_view token) const;
  const std::string* token(std::int32_t id) const;  // nullptr when no token has that id
  // The token text of a piece: the vocabulary entry it matched (which, when two entries
  // share an id, need not be token(id)), or the unknown token.
  const std::string& text(const Piece& p) const {
    return p.entry < 0 ? config_.unk_token : texts_[static_cast<std::size_t>(p.entry)];
  }
  const WordPieceConfig& config() const { return config_; }

  // Appends the pieces of word[0, n) to out. Throws kiln::Error when the word needs the
  // unknown token and the vocabulary lacks it, as the reference does.
  void tokenize(const NChar* word, std::size_t n, std::vector<Piece>& out) const;

 private:
  WordPieceConfig config_;
  CodePointTrie trie_;
  std::uint32_t start_node_ = 0;                          // the root
  std::uint32_t continue_node_ = CodePointTrie::kNone;  // after the prefix, if any token has it
  std::optional<std::int32_t> unk_id_;
  std::vector<std::string> texts_;   // by entry, the value of a trie node
  std::vector<std::int32_t> ids_;     // by entry
  std::vector<std::int32_t> by_id_;   // entry of each id, -1 for ids no token has
};

}  // namespace kiln::tokenizer
