// `kiln fill-mask`, `kiln classify` and `kiln qa`: the text-task commands on
// kiln::MaskFiller, kiln::Classifier and kiln::QuestionAnswerer (include/kiln/text.hpp).
// Each reads stdin (one text per line, or JSON lines) and writes one JSON value per input
// line, in input order.
#pragma once

#include <string_view>
#include <vector>

namespace kiln::cli {

int run_fill_mask(const std::vector<std::string_view>& args);
int run_classify(const std::vector<std::string_view>& args);
int run_qa(const std::vector<std::string_view>& args);

}  // namespace kiln::cli
