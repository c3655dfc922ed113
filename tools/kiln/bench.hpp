// `kiln bench`: how long a model takes to load and to run, and how much memory it needs,
// on synthetic or given inputs; a table, or one JSON object (docs/bench.md).
#pragma once

#include <string_view>
#include <vector>

namespace kiln::cli {

// args are the words after "bench"; returns the exit code, throws kiln::Error.
int run_bench(const std::vector<std::string_view>& args);

}  // namespace kiln::cli
