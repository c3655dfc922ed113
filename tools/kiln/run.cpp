// `kiln run MODEL [--input NAME=FILE.npy]... [FILE.npy]... [--output-dir DIR]`.
#include "tools/kiln/run.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

#include "format/npy.hpp"
#include "kiln/kiln.hpp"

namespace kiln::cli {
namespace {

const char* const kRunUsage =
    "usage: kiln run MODEL [--input NAME=FILE.npy]... [FILE.npy]... [options]\n"
    "\n"
    "Runs a traced TorchScript model on inputs read from .npy files and prints each\n"
    "output's dtype and shape. Inputs go by forward-argument name (--input) or in order\n"
    "(bare files); integer ids may be int32 or int64.\n"
    "\n"
    "  --input NAME=FILE   an input by name\n"
    "  --output-dir DIR    write DIR/output_0.npy, output_1.npy, ... (tuples flattened)\n"
    "  --strict-shapes     refuse inputs where the trace fixed a size silently, instead of\n"
    "                      warning and computing what PyTorch computes\n"
    "  --repeat N          run N times and print the median time (default 1)\n"
    "  --provider NAME     cpu (default: fast kernels where they apply) or cpu-reference\n"
    "                      (reference kernels only, the oracle)\n";

std::string shape_text(const std::vector<std::int64_t>& s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

Tensor read_input(const std::string& path) {
  const format::NpyArray a = format::read_npy(path);
  return Tensor::from_bytes(a.dtype, a.shape, a.data.data());
}

[[noreturn]] void usage(const std::string& message) { throw Error(ErrorKind::usage, "", "", "run: " + message); }

}  // namespace

int run_model(const std::vector<std::string_view>& args) {
  std::string model_path, output_dir;
  std::vector<std::pair<std::string, std::string>> named;
  std::vector<std::string> positional;
  RunOptions options;
  LoadOptions load_options;
  int repeat = 1;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view a = args[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= args.size()) usage(std::string(a) + " needs a value");
      return std::string(args[++i]);
    };
    if (a == "--help" || a == "-h") {
      std::fputs(kRunUsage, stdout);
      return 0;
    } else if (a == "--input") {
      const std::string v = value();
      const std::size_t eq = v.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == v.size()) usage("--input expects NAME=FILE.npy, got '" + v + "'");
      named.emplace_back(v.substr(0, eq), v.substr(eq + 1));
    } else if (a == "--output-dir") {
      output_dir = value();
    } else if (a == "--provider") {
      load_options.providers = {value()};
    } else if (a == "--strict-shapes") {
      options.strict_shapes = true;
    } else if (a == "--repeat") {
      const std::string v = value();
      try {
        repeat = std::stoi(v);
      } catch (const std::exception&) {
        repeat = 0;
      }
      if (repeat < 1 || repeat > 1000000) usage("--repeat expects a count from 1 to 1000000, got '" + v + "'");
    } else if (!a.empty() && a[0] == '-') {
      usage("unknown option '" + std::string(a) + "'");
    } else if (model_path.empty()) {
      model_path = std::string(a);
    } else {
      positional.emplace_back(a);
    }
  }
  if (model_path.empty()) usage("no MODEL given (see 'kiln run --help')");
  if (!named.empty() && !positional.empty()) usage("give inputs either by name (--input) or in order, not both");

  const auto t0 = std::chrono::steady_clock::now();
  const Model model = Model::load(model_path, load_options);
  const auto t1 = std::chrono::steady_clock::now();
  for (const std::string& line : model.shape_report()) std::fprintf(stderr, "kiln: note: %s\n", line.c_str());

  std::vector<Tensor> outputs;
  std::vector<std::string> warnings;
  std::vector<double> times;
  std::vector<Tensor> inputs;
  std::vector<std::pair<std::string, Tensor>> by_name;
  for (const std::string& p : positional) inputs.push_back(read_input(p));
  for (const auto& [name, p] : named) by_name.emplace_back(name, read_input(p));
  for (int r = 0; r < repeat; ++r) {
    warnings.clear();
    const auto s = std::chrono::steady_clock::now();
    outputs = named.empty() ? model.run(inputs, options, &warnings) : model.run(by_name, options, &warnings);
    times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - s).count());
  }
  for (const std::string& w : warnings) std::fprintf(stderr, "kiln: warning: %s\n", w.c_str());
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& o = outputs[i];
    std::printf("output_%zu: %s %s\n", i, std::string(dtype_name(o.dtype())).c_str(), shape_text(o.shape()).c_str());
    if (!output_dir.empty()) {
      format::NpyArray a;
      a.dtype = o.dtype();
      a.shape = o.shape();
      const auto* b = static_cast<const std::byte*>(o.data());
      a.data.assign(b, b + o.nbytes());
      format::write_npy(output_dir + "/output_" + std::to_string(i) + ".npy", a);
    }
  }
  std::sort(times.begin(), times.end());
  std::printf("time: load %.1f ms, run %.1f ms%s\n", std::chrono::duration<double, std::milli>(t1 - t0).count(),
              times[times.size() / 2], repeat > 1 ? (" (median of " + std::to_string(repeat) + ")").c_str() : "");
  return 0;
}

}  // namespace kiln::cli
