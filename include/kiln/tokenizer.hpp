// kiln::Tokenizer — BERT WordPiece tokenization, exactly as Hugging Face `tokenizers` does it.
//
// Loads a `vocab.txt` or a `tokenizer.json` (BertNormalizer, BertPreTokenizer, WordPiece,
// TemplateProcessing) and encodes single texts or pairs into ids, type ids, attention mask,
// tokens and offsets (Unicode code points of the text each token came from), with
// truncation and padding. Usable without loading a model; immutable once loaded, so one
// Tokenizer may encode from many threads at once.
//
//   kiln::Tokenizer tok = kiln::Tokenizer::from_file("vocab.txt");
//   kiln::Encoding e = tok.encode("Who was Jim Henson?");
//   // e.ids: 101 2040 2001 3958 27227 1029 102
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln {

struct TokenizerOptions {
  // Lowercasing. Unset: tokenizer.json decides; for vocab.txt, a tokenizer_config.json
  // beside it (do_lower_case) decides, else on (as BertTokenizer(vocab_file)).
  std::optional<bool> lowercase;
  // Accent stripping. Unset: follows lowercasing (Hugging Face's default).
  std::optional<bool> strip_accents;
};

enum class Truncation { longest_first, only_first, only_second };

struct EncodeOptions {
  bool add_special_tokens = true;           // [CLS] A [SEP] (B [SEP])
  std::optional<std::size_t> max_length;    // truncate to this many tokens, specials included
  Truncation truncation = Truncation::longest_first;
  bool pad_to_max_length = false;           // pad with [PAD] up to max_length
};

struct Encoding {
  std::vector<std::int32_t> ids;
  std::vector<std::int32_t> type_ids;
  std::vector<std::int32_t> attention_mask;
  // [start, end) in Unicode code points of the text the token came from; [0, 0] for
  // added special tokens and padding, as Hugging Face reports them.
  std::vector<std::pair<std::size_t, std::size_t>> offsets;
  std::vector<std::string> tokens;
  // Which text each token came from: 0 first, 1 second, -1 special or padding.
  std::vector<std::int8_t> sequence_ids;
  // Which word of its text each token belongs to, counted from 0 in each text (a word is
  // what the pre-tokenizer splits: a run of letters and digits, one punctuation mark, an
  // added token); -1 for special tokens and padding. Hugging Face's word_ids().
  std::vector<std::int32_t> word_ids;
};

class Tokenizer {
 public:
  // Decides by content: a JSON object is tokenizer.json, otherwise one token per line.
  // Throws kiln::Error naming the file and line for malformed files or unsupported
  // tokenizer types (anything but BERT WordPiece).
  static Tokenizer from_file(const std::string& path, TokenizerOptions options = {});

  // `text` must be valid UTF-8; invalid UTF-8 is a kiln::Error naming the byte offset.
  Encoding encode(std::string_view text, const EncodeOptions& options = {}) const;
  Encoding encode_pair(std::string_view first, std::string_view second, const EncodeOptions& options = {}) const;

  // The text of ids as Hugging Face's decode() gives it for a BERT tokenizer: WordPiece
  // continuations ("##ing") join the previous token, other tokens are separated by one
  // space, then the tokenization spaces are cleaned up (" ." -> ".", " n't" -> "n't", ...).
  // skip_special_tokens drops [CLS], [SEP], [PAD], [MASK], [UNK] and other special added
  // tokens. Ids out of range throw kiln::Error (usage).
  std::string decode(const std::vector<std::int32_t>& ids, bool skip_special_tokens = true) const;

  std::size_t vocab_size() const;
  std::optional<std::int32_t> token_to_id(std::string_view token) const;
  const std::string& id_to_token(std::int32_t id) const;  // throws when out of range
  bool lowercase() const;
  bool strip_accents() const;

  struct Impl;

 private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

}  // namespace kiln
