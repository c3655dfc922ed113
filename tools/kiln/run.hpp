// `kiln run`: runs a model on inputs from .npy files and writes its outputs as .npy.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "kiln/kiln.hpp"

namespace kiln::cli {

// args are the words after "run"; returns the exit code, throws kiln::Error.
int run_model(const std::vector<std::string_view>& args);

// What `kiln bench` shares with `kiln run`, so that both take inputs and show profiles alike:

// A model input from a .npy file, with the file's dtype and shape; kiln::Error (bad_input)
// naming the file when it is missing or not a .npy kiln reads.
Tensor read_npy_input(const std::string& path);

// Prints the time in each op kind to stdout, slowest first, with calls and share of the
// total; `covers` says which runs the times are from ("last run", "mean of 20 runs").
void print_profile(const std::vector<RunStats::OpTime>& ops, const std::string& covers);

}  // namespace kiln::cli
