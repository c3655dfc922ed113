// Tokenizer::Impl — everything a loaded tokenizer is; built by the loaders, read-only after.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "kiln/tokenizer.hpp"
#include "tokenizer/added_vocabulary.hpp"
#include "tokenizer/normalizer.hpp"
#include "tokenizer/post_processor.hpp"
#include "tokenizer/wordpiece.hpp"

namespace kiln {

struct Tokenizer::Impl {
  std::string source;  // the file it came from, for messages
  tokenizer::NormalizerConfig normalizer;
  tokenizer::WordPiece model;
  tokenizer::AddedVocabulary added;
  tokenizer::PostProcessor post;
  std::string pad_token = "[PAD]";
  std::optional<std::int32_t> pad_id;
  std::size_t vocab_size = 0;  // distinct tokens, added ones included, as the reference counts

  static std::shared_ptr<const Impl> from_vocab_txt(const std::string& path, std::string_view bytes,
                                                    const TokenizerOptions& options);
  static std::shared_ptr<const Impl> from_tokenizer_json(const std::string& path, std::string_view bytes,
                                                         const TokenizerOptions& options);

  // The tokens of one text, before truncation and the template.
  tokenizer::SequenceTokens encode_sequence(std::string_view text, std::string_view which) const;

  // Fills the fields the loaders share once model, added and normalizer are set.
  void finish_loading();
};

}  // namespace kiln
