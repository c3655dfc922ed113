// Pieces the vocab.txt and tokenizer.json loaders share.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "tokenizer/post_processor.hpp"

namespace kiln::tokenizer {

// [CLS] A [SEP] and [CLS] A [SEP] B [SEP] with type ids 0 and 1: BertProcessing, and what
// the BERT tokenizer.json files spell out as a TemplateProcessing.
PostProcessor bert_post_processor(const std::string& cls, std::int32_t cls_id, const std::string& sep,
                                  std::int32_t sep_id);

// text without its trailing whitespace (Rust's str::trim_end); text is valid UTF-8.
std::string_view trim_end_whitespace(std::string_view text);

}  // namespace kiln::tokenizer
