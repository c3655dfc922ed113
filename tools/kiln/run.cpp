// `kiln run MODEL [--input NAME=FILE.npy]... [FILE.npy]... [--output-dir DIR]`.
#include "tools/kiln/run.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
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
    "                      (reference kernels only, the oracle)\n"
    "  --threads N         kernel threads (default 0: every CPU this process may use)\n"
    "  --profile           print the time spent in each op kind (last run)\n"
    "  --max-memory SIZE   refuse, before allocating, a run whose planned memory\n"
    "                      (intermediates + outputs) exceeds SIZE bytes; K, M, G suffixes\n"
    "                      are powers of 1024 (default: no limit)\n"
    "\n"
    "Prints each output, then the times and the memory plan: the arena that holds the\n"
    "intermediates (planned from the input sizes before running), the outputs, and what\n"
    "kernels allocated outside the plan (scratch, added up over the run).\n";

std::string shape_text(const std::vector<std::int64_t>& s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

[[noreturn]] void usage(const std::string& message) { throw Error(ErrorKind::usage, "", "", "run: " + message); }

// "1000", "64K", "512M", "2G" (powers of 1024); nullopt for anything else.
std::optional<std::int64_t> parse_size(const std::string& v) {
  std::size_t used = 0;
  long long n = 0;
  try {
    n = std::stoll(v, &used);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (n < 0 || used == 0) return std::nullopt;
  const std::string suffix = v.substr(used);
  int shift = 0;
  if (suffix == "K" || suffix == "k") shift = 10;
  else if (suffix == "M" || suffix == "m") shift = 20;
  else if (suffix == "G" || suffix == "g") shift = 30;
  else if (!suffix.empty()) return std::nullopt;
  if (n > (std::int64_t{1} << (62 - shift))) return std::nullopt;
  return static_cast<std::int64_t>(n) << shift;
}

std::string mib(std::int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

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
    } else if (a == "--threads") {
      const std::string v = value();
      int n = -1;
      try {
        std::size_t used = 0;
        n = std::stoi(v, &used);
        if (used != v.size()) n = -1;
      } catch (const std::exception&) {
        n = -1;
      }
      if (n < 0 || n > 1024) usage("--threads expects a count from 0 (every CPU) to 1024, got '" + v + "'");
      options.threads = n;
    } else if (a == "--max-memory") {
      const std::string v = value();
      const auto bytes = parse_size(v);
      if (!bytes || *bytes == 0) usage("--max-memory expects a size in bytes such as 500000000, 512M or 2G, got '" + v + "'");
      options.max_memory = *bytes;
    } else if (a == "--profile") {
      options.profile = true;
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

  // One run does not repay packing the weights (Model::prepare); many do.
  load_options.prepare = repeat > 1;
  const auto t0 = std::chrono::steady_clock::now();
  const Model model = Model::load(model_path, load_options);
  const auto t1 = std::chrono::steady_clock::now();
  for (const std::string& line : model.shape_report()) std::fprintf(stderr, "kiln: note: %s\n", line.c_str());

  std::vector<Tensor> outputs;
  RunStats stats;
  options.stats = &stats;
  std::vector<std::string> warnings;
  std::vector<double> times;
  std::vector<Tensor> inputs;
  std::vector<std::pair<std::string, Tensor>> by_name;
  for (const std::string& p : positional) inputs.push_back(read_npy_input(p));
  for (const auto& [name, p] : named) by_name.emplace_back(name, read_npy_input(p));
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
  std::printf("memory: arena %s (%lld intermediates), outputs %s, kernel scratch %s (allocated over the run); threads %d\n",
              mib(stats.arena_bytes).c_str(), static_cast<long long>(stats.planned_values), mib(stats.output_bytes).c_str(),
              mib(stats.heap_bytes).c_str(), stats.threads);
  if (options.profile) print_profile(stats.ops, "last run");
  return 0;
}

Tensor read_npy_input(const std::string& path) {
  const format::NpyArray a = format::read_npy(path);
  return Tensor::from_bytes(a.dtype, a.shape, a.data.data());
}

void print_profile(const std::vector<RunStats::OpTime>& ops, const std::string& covers) {
  double total = 0;
  for (const auto& op : ops) total += op.ms;
  std::printf("profile (%s, %.1f ms in kernels):\n", covers.c_str(), total);
  for (const auto& op : ops)
    std::printf("  %-36s %6lld calls %9.2f ms %5.1f%%\n", op.op.c_str(), static_cast<long long>(op.calls), op.ms,
                total > 0 ? 100.0 * op.ms / total : 0.0);
}

}  // namespace kiln::cli
