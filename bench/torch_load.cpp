// torch_bench_load MODEL [--iters N]: the peer of kiln_bench_load. Times C++
// torch::jit::load on the same archive with LibTorch (Debian's 1.13) and prints one JSON
// line {"engine":"libtorch","median_ms":...,"runs":[...]}. Built only with -Dlibtorch=enabled.
#include <torch/script.h>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: torch_bench_load MODEL [--iters N]\n");
    return 2;
  }
  const std::string path = argv[1];
  int iters = 1;
  if (argc >= 4 && std::string(argv[2]) == "--iters") iters = std::max(1, std::atoi(argv[3]));
  std::vector<double> ms;
  size_t parameters = 0;
  for (int i = 0; i < iters; ++i) {
    const auto start = std::chrono::steady_clock::now();
    torch::jit::Module module = torch::jit::load(path);
    const auto end = std::chrono::steady_clock::now();
    parameters = module.parameters().size();
    ms.push_back(std::chrono::duration<double, std::milli>(end - start).count());
  }
  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  std::printf("{\"engine\":\"libtorch\",\"parameters\":%zu,\"median_ms\":%.3f,\"runs\":[", parameters,
              sorted[sorted.size() / 2]);
  for (size_t i = 0; i < ms.size(); ++i) std::printf("%s%.3f", i ? "," : "", ms[i]);
  // Peak resident memory: kiln maps the file and must not have read the weights.
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf("],\"peak_rss_kib\":%ld}\n", usage.ru_maxrss);
  return 0;
}
