// `kiln embed`: sentence embeddings of stdin lines, one JSON array per line out.
#pragma once

#include <string_view>
#include <vector>

namespace kiln::cli {

// args are the words after "embed"; returns the exit code, throws kiln::Error.
int run_embed(const std::vector<std::string_view>& args);

}  // namespace kiln::cli
