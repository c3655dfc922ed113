// `kiln run`: runs a model on inputs from .npy files and writes its outputs as .npy.
#pragma once

#include <string_view>
#include <vector>

namespace kiln::cli {

// args are the words after "run"; returns the exit code, throws kiln::Error.
int run_model(const std::vector<std::string_view>& args);

}  // namespace kiln::cli
