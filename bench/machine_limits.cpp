// kiln_bench_machine_limits [--configs BxS,...] [--threads T,...] [--min-ms MS] [--json]
//
// What this machine allows BERT-base at best, measured in the same run as the engines (so
// a busy machine lowers the floors and the engines alike): oneDNN matmul throughput on
// BERT-base's own GEMM shapes (rows = batch*seq; k x n = 768x768 for Q, K, V and the
// attention output, 768x3072 and 3072x768 for the feed-forward) with packed weights, in
// fp32, int8 (u8 x s8, VNNI where the CPU has it) and bf16, and memory read bandwidth on a
// buffer the size of BERT-base's linear weights. From them, per batch x seq and threads:
//
//   GEMM-peak floor        model FLOPs (every linear and both attention matmuls) divided
//                          by fp32 throughput on the linears' shapes at those rows (each
//                          shape weighted by its FLOPs): no engine doing the same
//                          arithmetic in fp32 with oneDNN-class kernels runs faster.
//   weight-streaming floor the linear weights' bytes divided by read bandwidth: every run
//                          reads every weight once, which bounds short sequences.
//
// Defaults: configs 1x16,1x128,1x384,8x128; threads 1 and every CPU this process may use.
// Prints a table, or with --json one object (bench/README.md has its fields).
#include <sched.h>
#include <unistd.h>

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "bench/limits_bandwidth.hpp"
#include "bench/limits_gemm.hpp"

namespace {

// bert-base-uncased's configuration.
constexpr std::int64_t kHidden = 768, kIntermediate = 3072, kLayers = 12;

struct Shape {
  std::int64_t k, n, per_layer;  // per_layer: how many linears of this shape a layer has
};
constexpr Shape kShapes[] = {{kHidden, kHidden, 4}, {kHidden, kIntermediate, 1}, {kIntermediate, kHidden, 1}};

// Encoder linears plus the pooler's.
constexpr std::int64_t kWeightBytes = (kLayers * (4 * kHidden * kHidden + 2 * kHidden * kIntermediate) + kHidden * kHidden) * 4;

struct Config {
  std::int64_t batch, seq;
};

double model_flops(const Config& c) {
  const double rows = static_cast<double>(c.batch * c.seq);
  double linear = 0;
  for (const Shape& s : kShapes) linear += 2.0 * rows * static_cast<double>(s.k * s.n * s.per_layer);
  const double attention = 2 * 2.0 * static_cast<double>(c.batch * c.seq * c.seq * kHidden);  // QK^T and PV
  return kLayers * (linear + attention) + 2.0 * static_cast<double>(c.batch * kHidden * kHidden);
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

int usable_cpus() {
  cpu_set_t set;
  return sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
}

template <class T, class F>
std::vector<T> split(const std::string& list, F parse) {
  std::vector<T> out;
  std::stringstream ss(list);
  for (std::string item; std::getline(ss, item, ',');) out.push_back(parse(item));
  return out;
}

struct Options {
  std::vector<Config> configs{{1, 16}, {1, 128}, {1, 384}, {8, 128}};
  std::vector<int> threads;
  double min_ms = 150;
  bool json = false;
};

bool parse(int argc, char** argv, Options& o) {
  o.threads = {1};
  if (usable_cpus() > 1) o.threads.push_back(usable_cpus());
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--json") {
      o.json = true;
    } else if (a == "--configs" && has_value) {
      o.configs = split<Config>(argv[++i], [](const std::string& s) {
        return Config{std::atoll(s.c_str()), std::atoll(s.substr(s.find('x') + 1).c_str())};
      });
    } else if (a == "--threads" && has_value) {
      o.threads = split<int>(argv[++i], [](const std::string& s) { return std::atoi(s.c_str()); });
    } else if (a == "--min-ms" && has_value) {
      o.min_ms = std::atof(argv[++i]);
    } else {
      return false;
    }
  }
  for (const Config& c : o.configs)
    if (c.batch < 1 || c.seq < 1) return false;
  for (int t : o.threads)
    if (t < 1) return false;
  return !o.configs.empty() && !o.threads.empty();
}

struct Gemm {
  bench::GemmType type;
  int threads;
  std::int64_t rows;
  Shape shape;
  bench::GemmResult result;
};

}  // namespace

int main(int argc, char** argv) {
  // A limit, not a runtime's habit: between calls libgomp's idle threads sleep soon, and on
  // these 2-vCPU virtual machines waking one often costs whole scheduler ticks (8 ms a
  // call, seen whenever anything else runs). Spinning threads keep the GEMM figures the
  // machine's. libgomp reads the variable once, when it loads, hence running again with it;
  // a policy the caller set is kept.
  if (std::getenv("OMP_WAIT_POLICY") == nullptr) {
    setenv("OMP_WAIT_POLICY", "active", 1);
    execv("/proc/self/exe", argv);
  }
  Options o;
  if (!parse(argc, argv, o)) {
    std::fprintf(stderr, "usage: kiln_bench_machine_limits [--configs BxS,...] [--threads T,...] [--min-ms MS] [--json]\n");
    return 2;
  }
  std::set<std::int64_t> rows;
  for (const Config& c : o.configs) rows.insert(c.batch * c.seq);

  // Bandwidth first: once OpenMP has threads they spin (see main's start) and would take
  // cores from the reading threads. GEMMs by rising thread counts for the same reason.
  std::map<int, double> bandwidth;
  for (int t : o.threads) bandwidth[t] = bench::read_bandwidth_gbs(kWeightBytes, t, 7);
  std::vector<int> rising = o.threads;
  std::sort(rising.begin(), rising.end());
  std::vector<Gemm> gemms;
  for (int t : rising)
    for (bench::GemmType type : {bench::GemmType::f32, bench::GemmType::int8, bench::GemmType::bf16})
      for (std::int64_t r : rows)
        for (const Shape& s : kShapes) gemms.push_back({type, t, r, s, bench::time_gemm(type, r, s.k, s.n, t, o.min_ms)});

  // Throughput over one layer's linears at these rows: their FLOPs over the time each
  // shape's measured rate gives them.
  auto linear_gflops = [&](bench::GemmType type, int t, std::int64_t r) {
    double flops = 0, seconds = 0;
    for (const Gemm& g : gemms) {
      if (g.type != type || g.threads != t || g.rows != r) continue;
      if (!g.result.supported) return 0.0;
      const double f = 2.0 * static_cast<double>(r * g.shape.k * g.shape.n * g.shape.per_layer);
      flops += f;
      seconds += f / (g.result.gflops * 1e9);
    }
    return flops / seconds / 1e9;
  };

  const dnnl::version_t* v = dnnl::version();
  const std::string onednn = std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
  if (o.json) {
    std::printf("{\"machine\":{\"cpu\":\"%s\",\"cpus\":%d,\"onednn\":\"%s\",\"omp_wait_policy\":\"%s\"},"
                "\"weight_bytes\":%lld,\"gemm\":[",
                cpu_model().c_str(), usable_cpus(), onednn.c_str(), std::getenv("OMP_WAIT_POLICY"),
                static_cast<long long>(kWeightBytes));
    for (std::size_t i = 0; i < gemms.size(); ++i) {
      const Gemm& g = gemms[i];
      std::printf("%s{\"type\":\"%s\",\"threads\":%d,\"rows\":%lld,\"k\":%lld,\"n\":%lld,", i ? "," : "",
                  bench::gemm_type_name(g.type), g.threads, static_cast<long long>(g.rows), static_cast<long long>(g.shape.k),
                  static_cast<long long>(g.shape.n));
      if (g.result.supported)
        std::printf("\"gflops\":%.2f,\"impl\":\"%s\"}", g.result.gflops, g.result.impl.c_str());
      else
        std::printf("\"gflops\":null,\"impl\":null}");
    }
    std::printf("],\"bandwidth\":[");
    bool first = true;
    for (const auto& [t, gbs] : bandwidth) {
      std::printf("%s{\"threads\":%d,\"gb_s\":%.2f}", first ? "" : ",", t, gbs);
      first = false;
    }
    std::printf("],\"floors\":[");
    first = true;
    for (const Config& c : o.configs)
      for (int t : o.threads) {
        const double gflops = linear_gflops(bench::GemmType::f32, t, c.batch * c.seq);
        std::printf("%s{\"batch\":%lld,\"seq\":%lld,\"threads\":%d,\"model_gflop\":%.3f,\"gemm_gflops\":%.2f,"
                    "\"gemm_floor_ms\":%.3f,\"stream_floor_ms\":%.3f}",
                    first ? "" : ",", static_cast<long long>(c.batch), static_cast<long long>(c.seq), t, model_flops(c) / 1e9,
                    gflops, model_flops(c) / gflops / 1e6, static_cast<double>(kWeightBytes) / bandwidth[t] / 1e6);
        first = false;
      }
    std::printf("]}\n");
    return 0;
  }

  std::printf("machine: %s, %d CPUs usable, oneDNN %s, OMP_WAIT_POLICY=%s\n\n", cpu_model().c_str(), usable_cpus(),
              onednn.c_str(), std::getenv("OMP_WAIT_POLICY"));
  std::printf("matmul GFLOP/s (packed weights, median call)\n%-5s %7s %6s %10s %10s %10s   %s\n", "type", "threads", "rows",
              "768x768", "768x3072", "3072x768", "implementation");
  for (std::size_t i = 0; i + 2 < gemms.size(); i += 3) {
    std::printf("%-5s %7d %6lld", bench::gemm_type_name(gemms[i].type), gemms[i].threads, static_cast<long long>(gemms[i].rows));
    for (std::size_t j = i; j < i + 3; ++j) {
      if (gemms[j].result.supported)
        std::printf(" %10.1f", gemms[j].result.gflops);
      else
        std::printf(" %10s", "n/a");
    }
    std::printf("   %s\n", gemms[i].result.supported ? gemms[i].result.impl.c_str() : "");
  }
  std::printf("\nread bandwidth on %.1f MB (BERT-base's linear weights)\n", static_cast<double>(kWeightBytes) / 1e6);
  for (const auto& [t, gbs] : bandwidth) std::printf("  %d thread(s): %.2f GB/s\n", t, gbs);
  std::printf("\nfloors, BERT-base fp32\n%-12s %7s %11s %12s %15s %17s\n", "batch x seq", "threads", "model GFLOP", "GEMM GFLOP/s",
              "GEMM floor ms", "stream floor ms");
  for (const Config& c : o.configs)
    for (int t : o.threads) {
      const double gflops = linear_gflops(bench::GemmType::f32, t, c.batch * c.seq);
      std::printf("%5lld x %-4lld %7d %11.2f %12.1f %15.2f %17.2f\n", static_cast<long long>(c.batch),
                  static_cast<long long>(c.seq), t, model_flops(c) / 1e9, gflops, model_flops(c) / gflops / 1e6,
                  static_cast<double>(kWeightBytes) / bandwidth[t] / 1e6);
    }
  return 0;
}
