// `kiln bench MODEL [options] [INPUT.npy]...`: times loading, the first run and many runs
// after warm-up, and reports latency percentiles, throughput and memory (docs/bench.md).
#include "tools/kiln/bench.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <random>
#include <string>

#include "format/archive.hpp"
#include "format/module_tree.hpp"
#include "kiln/kiln.hpp"
#include "tools/kiln/json_writer.hpp"
#include "tools/kiln/option_reader.hpp"
#include "tools/kiln/progress.hpp"
#include "tools/kiln/run.hpp"

namespace kiln::cli {

namespace {

const char* const kBenchUsage =
    "usage: kiln bench MODEL [--batch B] [--seq S] [--threads T] [--iters N] [--warmup N]\n"
    "                  [--provider NAME] [--no-prepare] [--profile] [--json] [INPUT.npy]...\n"
    "\n"
    "Loads a traced model, prepares it, runs it once, then --warmup runs that are not counted\n"
    "and --iters timed runs, and reports the load and ready times, the first run, the median,\n"
    "10th and 90th percentile run times, sequences per second, the planned arena and the\n"
    "process's peak resident memory. The fields are described in docs/bench.md.\n"
    "\n"
    "Inputs are synthetic unless .npy files are given (in forward-argument order, as for\n"
    "'kiln run'): input_ids random ids the vocabulary holds, attention_mask all ones,\n"
    "token_type_ids zeros, position_ids 0..S-1, each int64 [B, S].\n"
    "\n"
    "  --batch B           sequences per run (default 1; synthetic inputs only)\n"
    "  --seq S             tokens per sequence (default 128; synthetic inputs only)\n"
    "  --threads T         kernel threads (default 0: every CPU this process may use)\n"
    "  --iters N           timed runs (default 20)\n"
    "  --warmup N          runs after the first that are not timed (default 3)\n"
    "  --provider NAME     cpu (default) or cpu-reference (reference kernels only)\n"
    "  --no-prepare        run the model unprepared (weights read in place from the file,\n"
    "                      not packed; no kernel made ahead): ready is then load\n"
    "  --profile           also report the time in each op kind (mean over the timed runs;\n"
    "                      costs a clock read per kernel call)\n"
    "  --json              print one JSON object instead of the table\n"
    "\n"
    "A progress bar goes to stderr when it is a terminal and the runs will take a while.\n";

// Batch times sequence length above this is refused: the synthetic inputs alone would take
// gigabytes, and no BERT-family model runs at that size.
constexpr std::int64_t kMaxTokens = std::int64_t{1} << 26;
// The progress bar is drawn when the runs after the first are expected to take longer.
constexpr double kProgressAfterMs = 2000;

struct Settings {
  std::string model;
  std::vector<std::string> input_files;
  std::optional<std::int64_t> batch, seq;  // set by --batch / --seq
  int threads = 0;
  std::int64_t iters = 20;
  std::int64_t warmup = 3;
  std::string provider;
  bool prepare = true;
  bool profile = false;
  bool json = false;
};

// Returns the settings, or nullopt when --help was asked for (and printed).
std::optional<Settings> parse_args(const std::vector<std::string_view>& args) {
  Settings s;
  OptionReader r(args, "bench");
  while (r.next()) {
    if (r.is("--help") || r.is("-h")) {
      std::fputs(kBenchUsage, stdout);
      return std::nullopt;
    } else if (r.is("--batch")) {
      s.batch = r.number(1, 65536);
    } else if (r.is("--seq")) {
      s.seq = r.number(1, std::int64_t{1} << 20);
    } else if (r.is("--threads")) {
      s.threads = static_cast<int>(r.number(0, 1024));
    } else if (r.is("--iters")) {
      s.iters = r.number(1, 1000000);
    } else if (r.is("--warmup")) {
      s.warmup = r.number(0, 1000000);
    } else if (r.is("--provider")) {
      s.provider = std::string(r.value());
    } else if (r.is("--no-prepare")) {
      r.flag();
      s.prepare = false;
    } else if (r.is("--profile")) {
      r.flag();
      s.profile = true;
    } else if (r.is("--json")) {
      r.flag();
      s.json = true;
    } else if (r.is_option() && r.arg().size() > 1) {
      throw r.error("unknown option '" + std::string(r.arg()) + "'");
    } else if (s.model.empty()) {
      s.model = std::string(r.arg());
    } else {
      s.input_files.emplace_back(r.arg());
    }
  }
  if (s.model.empty()) throw usage_error("bench", "no MODEL given");
  if (!s.input_files.empty() && (s.batch || s.seq))
    throw usage_error("bench", "--batch and --seq size synthetic inputs; given INPUT.npy files have their own sizes");
  if (s.batch.value_or(1) * s.seq.value_or(128) > kMaxTokens)
    throw usage_error("bench", "--batch times --seq is more than " + std::to_string(kMaxTokens) + " tokens");
  return s;
}

// The rows of the archive's word-embedding table ("...word_embeddings.weight", as Hugging
// Face names it), so synthetic ids stay in range; nullopt when the archive has none. Reads
// only data.pkl, not the weights.
std::optional<std::int64_t> id_table_rows(const std::string& path) {
  try {
    const format::Archive archive = format::Archive::open(path);
    for (const format::ModuleTensor& t : format::module_tree(archive).tensors)
      if (t.name.ends_with("word_embeddings.weight") && t.data.sizes.size() == 2) return t.data.sizes[0];
  } catch (const Error&) {
    // The model loaded, so this does not happen; if it did, small ids are the answer.
  }
  return std::nullopt;
}

// Inputs a tokenizer could have made, int64 [batch, seq] each, the same on every call.
// Ids are drawn from [1000, 2000), ordinary word pieces in BERT's vocabulary, below the
// table's size when the archive tells it, else from [100, 1000).
std::vector<Tensor> synthetic_inputs(const Model& model, const std::string& path, std::int64_t batch, std::int64_t seq) {
  const std::size_t n = static_cast<std::size_t>(batch * seq);
  std::int64_t lo = 100, hi = 1000;
  if (const std::optional<std::int64_t> rows = id_table_rows(path)) {
    hi = std::min<std::int64_t>(2000, *rows);
    lo = std::min<std::int64_t>(1000, hi / 2);
  }
  std::mt19937_64 random(20240611);
  std::vector<Tensor> inputs;
  for (const std::string& name : model.input_names()) {
    std::vector<std::int64_t> v(n, 0);
    if (name == "input_ids") {
      // The modulo keeps the ids the same with every standard library, unlike a distribution.
      for (std::int64_t& id : v) id = lo + static_cast<std::int64_t>(random() % static_cast<std::uint64_t>(hi - lo));
    } else if (name == "attention_mask") {
      std::fill(v.begin(), v.end(), 1);
    } else if (name == "position_ids") {
      for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::int64_t>(i) % seq;
    } else if (name != "token_type_ids") {
      throw Error::bad_input(path, "",
                             "kiln bench makes synthetic inputs only for input_ids, attention_mask, token_type_ids and "
                             "position_ids, and this model takes '" + name + "'; give its inputs as .npy files");
    }
    inputs.push_back(Tensor::from_values(DType::int64, {batch, seq}, v));
  }
  return inputs;
}

double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

// The process's peak resident set so far, in bytes (Linux reports ru_maxrss in KiB).
std::int64_t peak_rss_bytes() {
  rusage usage{};
  if (getrusage(RUSAGE_SELF, &usage) != 0) return 0;
  return static_cast<std::int64_t>(usage.ru_maxrss) * 1024;
}

// The q-quantile of sorted times, interpolating between neighbours (numpy's default), so
// p10 <= median <= p90 always and the median of an even count is the middle pair's mean.
double quantile(const std::vector<double>& sorted, double q) {
  const double pos = q * static_cast<double>(sorted.size() - 1);
  const std::size_t below = static_cast<std::size_t>(pos);
  const std::size_t above = std::min(below + 1, sorted.size() - 1);
  return sorted[below] + (sorted[above] - sorted[below]) * (pos - static_cast<double>(below));
}

struct Result {
  std::int64_t batch = 0, seq = 0;
  double load_ms = 0, ready_ms = 0, first_ms = 0;
  std::vector<double> times_ms;  // the timed runs, in order
  double median_ms = 0, p10_ms = 0, p90_ms = 0, mean_ms = 0, min_ms = 0, max_ms = 0;
  double seq_per_s = 0;
  RunStats stats;                            // of the last run (every run plans the same)
  std::vector<RunStats::OpTime> profile;     // mean per timed run, slowest first
  std::int64_t peak_rss_bytes = 0;
};

void summarize(Result& r) {
  std::vector<double> sorted = r.times_ms;
  std::sort(sorted.begin(), sorted.end());
  r.median_ms = quantile(sorted, 0.5);
  r.p10_ms = quantile(sorted, 0.1);
  r.p90_ms = quantile(sorted, 0.9);
  r.min_ms = sorted.front();
  r.max_ms = sorted.back();
  double sum = 0;
  for (double t : sorted) sum += t;
  r.mean_ms = sum / static_cast<double>(sorted.size());
  r.seq_per_s = r.median_ms > 0 ? static_cast<double>(r.batch) * 1000.0 / r.median_ms : 0.0;
}

Result measure(const Settings& s) {
  Result r;
  LoadOptions load;
  if (!s.provider.empty()) load.providers = {s.provider};
  load.threads = s.threads;
  load.prepare = false;  // timed apart: load is what Model::load costs without preparing
  const auto load_start = std::chrono::steady_clock::now();
  const Model model = Model::load(s.model, load);
  r.load_ms = ms_since(load_start);
  // Ready: what Model::load with LoadOptions::prepare (the default) costs in all, the
  // moment a user's first run can start fast.
  if (s.prepare) model.prepare();
  r.ready_ms = ms_since(load_start);

  std::vector<Tensor> inputs;
  if (s.input_files.empty()) {
    r.batch = s.batch.value_or(1);
    r.seq = s.seq.value_or(128);
    inputs = synthetic_inputs(model, s.model, r.batch, r.seq);
  } else {
    for (const std::string& f : s.input_files) inputs.push_back(read_npy_input(f));
    const std::vector<std::int64_t>& shape = inputs.front().shape();
    r.batch = shape.empty() ? 1 : shape[0];
    r.seq = shape.size() < 2 ? 1 : shape[1];
  }

  RunOptions options;
  options.stats = &r.stats;
  std::vector<std::string> warnings;
  const auto first_start = std::chrono::steady_clock::now();
  model.run(inputs, options, &warnings);
  r.first_ms = ms_since(first_start);
  for (const std::string& w : warnings) std::fprintf(stderr, "kiln: warning: %s\n", w.c_str());

  const std::size_t runs = static_cast<std::size_t>(s.warmup + s.iters);
  Progress progress(runs, "runs", r.first_ms * static_cast<double>(runs) > kProgressAfterMs);
  for (std::int64_t i = 0; i < s.warmup; ++i) {
    model.run(inputs, options);
    progress.update(static_cast<std::size_t>(i + 1));
  }
  options.profile = s.profile;
  std::map<std::string, double> op_ms;  // summed over the timed runs
  for (std::int64_t i = 0; i < s.iters; ++i) {
    const auto start = std::chrono::steady_clock::now();
    const std::vector<Tensor> outputs = model.run(inputs, options);
    r.times_ms.push_back(ms_since(start));  // before the outputs are freed: not part of a run
    for (const RunStats::OpTime& op : r.stats.ops) op_ms[op.op] += op.ms;
    progress.update(static_cast<std::size_t>(s.warmup + i + 1));
  }
  if (s.profile) {
    r.profile = r.stats.ops;  // the last run's calls, which every run makes alike
    for (RunStats::OpTime& op : r.profile) op.ms = op_ms[op.op] / static_cast<double>(s.iters);
    std::stable_sort(r.profile.begin(), r.profile.end(),
                     [](const RunStats::OpTime& a, const RunStats::OpTime& b) { return a.ms > b.ms; });
  }
  r.peak_rss_bytes = peak_rss_bytes();
  summarize(r);
  return r;
}

void print_json(const Settings& s, const Result& r) {
  JsonWriter j;
  j.begin_object()
      .field("kiln_version", build_info().version)
      .field("model", s.model)
      .field("inputs", s.input_files.empty() ? "synthetic" : "npy")
      .field("batch", r.batch)
      .field("seq", r.seq)
      .field("threads", r.stats.threads)
      .field("iters", s.iters)
      .field("warmup", s.warmup)
      .field("load_ms", r.load_ms)
      .field("ready_ms", r.ready_ms)
      .field("first_ms", r.first_ms)
      .field("median_ms", r.median_ms)
      .field("p10_ms", r.p10_ms)
      .field("p90_ms", r.p90_ms)
      .field("mean_ms", r.mean_ms)
      .field("min_ms", r.min_ms)
      .field("max_ms", r.max_ms)
      .field("seq_per_s", r.seq_per_s)
      .field("arena_bytes", r.stats.arena_bytes)
      .field("output_bytes", r.stats.output_bytes)
      .field("scratch_bytes", r.stats.heap_bytes)
      .field("peak_rss_bytes", r.peak_rss_bytes);
  j.key("times_ms").begin_array();
  for (double t : r.times_ms) j.value(t);
  j.end_array();
  if (s.profile) {
    j.key("profile").begin_object();
    for (const RunStats::OpTime& op : r.profile) j.field(op.op, op.ms);
    j.end_object();
  }
  j.end_object();
  std::printf("%s\n", j.str().c_str());
}

double in_mib(std::int64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

void print_table(const Settings& s, const Result& r) {
  std::printf("kiln %s bench: %s\n", build_info().version.c_str(), s.model.c_str());
  std::printf("  inputs      %s, batch %lld, seq %lld\n", s.input_files.empty() ? "synthetic" : ".npy files",
              static_cast<long long>(r.batch), static_cast<long long>(r.seq));
  std::printf("  threads     %d\n", r.stats.threads);
  std::printf("  runs        1 first, %lld warm-up, %lld timed\n", static_cast<long long>(s.warmup),
              static_cast<long long>(s.iters));
  std::printf("  load        %10.2f ms   parse, IR, plan\n", r.load_ms);
  std::printf("  ready       %10.2f ms   %s\n", r.ready_ms,
              s.prepare ? "load, then weights packed and the traced shape's kernels made" : "the same: --no-prepare");
  std::printf("  first run   %10.2f ms\n", r.first_ms);
  std::printf("  median      %10.2f ms\n", r.median_ms);
  std::printf("  p10 .. p90  %10.2f .. %.2f ms\n", r.p10_ms, r.p90_ms);
  std::printf("  min .. max  %10.2f .. %.2f ms, mean %.2f ms\n", r.min_ms, r.max_ms, r.mean_ms);
  std::printf("  throughput  %10.2f sequences/s\n", r.seq_per_s);
  std::printf("  arena       %10.1f MiB  intermediates, planned before running\n", in_mib(r.stats.arena_bytes));
  std::printf("  outputs     %10.1f MiB\n", in_mib(r.stats.output_bytes));
  std::printf("  scratch     %10.1f MiB  kernels' allocations outside the plan, one run\n", in_mib(r.stats.heap_bytes));
  std::printf("  peak RSS    %10.1f MiB  the whole process\n", in_mib(r.peak_rss_bytes));
  if (s.profile) print_profile(r.profile, "mean of " + std::to_string(s.iters) + " timed runs");
}

}  // namespace

int run_bench(const std::vector<std::string_view>& args) {
  const std::optional<Settings> settings = parse_args(args);
  if (!settings) return 0;
  const Result result = measure(*settings);
  if (settings->json) print_json(*settings, result);
  else print_table(*settings, result);
  if (std::fflush(stdout) != 0) throw Error::bad_input("<stdout>", "", "write error");
  return 0;
}

}  // namespace kiln::cli
