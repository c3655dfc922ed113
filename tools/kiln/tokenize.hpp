// `kiln tokenize`: BERT WordPiece tokenization of stdin lines, one JSON object per line out.
#pragma once

#include <string_view>
#include <vector>

namespace kiln::cli {

// args are the words after "tokenize"; returns the exit code, throws kiln::Error.
int run_tokenize(const std::vector<std::string_view>& args);

}  // namespace kiln::cli
