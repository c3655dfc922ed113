// `kiln inspect`: reads a TorchScript archive and reports what it holds (text or --json).
#pragma once

#include <string_view>
#include <vector>

namespace kiln::cli {

// args are the words after "inspect"; returns the exit code, throws kiln::Error.
int run_inspect(const std::vector<std::string_view>& args);

}  // namespace kiln::cli
