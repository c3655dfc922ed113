// kiln_bench_load MODEL [--iters N]: times kiln's archive load (zip directory, version,
// constants.pkl, data.pkl, code sources, module tree with tensor views; no weight page is
// touched) and prints one JSON line {"engine":"kiln","median_ms":...,"runs":[...]}.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "format/archive.hpp"
#include "format/module_tree.hpp"
#include "kiln/error.hpp"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: kiln_bench_load MODEL [--iters N]\n");
    return 2;
  }
  const std::string path = argv[1];
  int iters = 1;
  if (argc >= 4 && std::string(argv[2]) == "--iters") iters = std::max(1, std::atoi(argv[3]));
  std::vector<double> ms;
  size_t tensors = 0;
  try {
    for (int i = 0; i < iters; ++i) {
      const auto start = std::chrono::steady_clock::now();
      const auto archive = kiln::format::Archive::open(path);
      const auto tree = kiln::format::module_tree(archive);
      const auto end = std::chrono::steady_clock::now();
      tensors = tree.tensors.size();
      ms.push_back(std::chrono::duration<double, std::milli>(end - start).count());
    }
  } catch (const kiln::Error& e) {
    std::fprintf(stderr, "kiln: error: %s\n", e.what());
    return 1;
  }
  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  std::printf("{\"engine\":\"kiln\",\"tensors\":%zu,\"median_ms\":%.3f,\"runs\":[", tensors, sorted[sorted.size() / 2]);
  for (size_t i = 0; i < ms.size(); ++i) std::printf("%s%.3f", i ? "," : "", ms[i]);
  // Peak resident memory: kiln maps the file and must not have read the weights.
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf("],\"peak_rss_kib\":%ld}\n", usage.ru_maxrss);
  return 0;
}
