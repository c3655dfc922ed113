// After the model: truncation, the [CLS] A [SEP] (B [SEP]) template, and padding, with the
// reference's rules for each.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "kiln/tokenizer.hpp"

namespace kiln::tokenizer {

// The tokens of one text, before post-processing.
struct SequenceTokens {
  std::vector<std::int32_t> ids;
  std::vector<std::string> tokens;
  std::vector<std::pair<std::size_t, std::size_t>> offsets;
  std::vector<std::int32_t> words;  // word index of each token within the text

  std::size_t size() const { return ids.size(); }
  void truncate(std::size_t n) {
    if (n >= ids.size()) return;
    ids.resize(n);
    tokens.resize(n);
    offsets.resize(n);
    words.resize(n);
  }
};

// One element of a TemplateProcessing template: a text (sequence 0 for A, 1 for B) or a
// special token (one or more ids).
struct TemplatePiece {
  int sequence = -1;  // -1: special token
  std::int32_t type_id = 0;
  std::vector<std::int32_t> ids;
  std::vector<std::string> tokens;
};

struct Template {
  std::vector<TemplatePiece> pieces;
  std::size_t special_count() const;
};

struct PostProcessor {
  Template single;
  Template pair;
};

// Truncates a (and b, for a pair) so that they fit in max_length tokens together with the
// special tokens the template would add, exactly as the reference does: when max_length
// cannot even hold those it truncates nothing; pairs under longest_first split by its
// fixed rule; only_first/only_second throw kiln::Error (bad_input) where the reference
// fails (no second text, or the chosen text too short).
void truncate(const PostProcessor& post, SequenceTokens& a, SequenceTokens* b, std::size_t max_length,
              Truncation strategy, bool add_special_tokens);

// Lays out the template (special tokens only with add_special_tokens).
Encoding assemble(const PostProcessor& post, SequenceTokens&& a, SequenceTokens* b, bool add_special_tokens);

// Pads on the right to length with the padding token: type id 0, attention 0, offsets
// [0, 0], sequence id -1. Longer encodings are left alone.
void pad(Encoding& e, std::size_t length, std::int32_t pad_id, const std::string& pad_token);

}  // namespace kiln::tokenizer
