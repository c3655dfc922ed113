// kiln_bench_fast_kernels [--runs N] [--m M --k K --n N]
//
// Single-thread linear (x[M, K] * w[N, K]^T + b) with the reference kernel and with the
// fast kernels at every instruction-set level this CPU has (default 128x384x1536: one BERT
// base FFN up-projection for 128 tokens). Each is run once untimed, then N times (default
// 15); prints one JSON line per engine with the median and the speed-up over the reference.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string_view>
#include <vector>

#include "kernels/cpu/fast.hpp"
#include "kernels/cpu/isa.hpp"
#include "kernels/reference/reference.hpp"
#include "kernels/tensor.hpp"

namespace {

using kiln::kernels::Tensor;

Tensor random_f32(std::vector<std::int64_t> sizes, std::uint64_t seed) {
  Tensor t = Tensor::empty(kiln::DType::float32, std::move(sizes));
  float* p = t.data<float>();
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    p[i] = static_cast<float>(static_cast<double>(seed >> 11) / 0x1p53 * 2 - 1);
  }
  return t;
}

double median_seconds(int runs, const std::function<void()>& body) {
  body();  // warm caches and page in the output
  std::vector<double> times;
  for (int r = 0; r < runs; ++r) {
    const auto start = std::chrono::steady_clock::now();
    body();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 15;
  std::int64_t m = 128, k = 384, n = 1536;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view arg = argv[i];
    const long long v = std::atoll(argv[i + 1]);
    if (v <= 0) return std::fprintf(stderr, "kiln_bench_fast_kernels: %s needs a positive value\n", argv[i]), 2;
    if (arg == "--runs") runs = static_cast<int>(v);
    else if (arg == "--m") m = v;
    else if (arg == "--k") k = v;
    else if (arg == "--n") n = v;
    else return std::fprintf(stderr, "usage: kiln_bench_fast_kernels [--runs N] [--m M --k K --n N]\n"), 2;
  }
  const Tensor x = random_f32({m, k}, 1), w = random_f32({n, k}, 2), b = random_f32({n}, 3);
  const double flops = 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);

  const double ref_s = median_seconds(runs, [&] { kiln::kernels::ref::linear(x, w, &b); });
  std::printf("{\"kernel\":\"linear\",\"m\":%lld,\"k\":%lld,\"n\":%lld,\"engine\":\"reference\",\"median_ms\":%.3f,"
              "\"gflops\":%.2f,\"speedup\":1.00}\n",
              static_cast<long long>(m), static_cast<long long>(k), static_cast<long long>(n), ref_s * 1e3,
              flops / ref_s * 1e-9);
  for (const kiln::kernels::cpu::Isa isa : kiln::kernels::cpu::available_isas()) {
    Tensor out;
    const double s = median_seconds(runs, [&] { kiln::kernels::fast::linear(x, w, &b, out, isa); });
    std::printf("{\"kernel\":\"linear\",\"m\":%lld,\"k\":%lld,\"n\":%lld,\"engine\":\"fast-%s\",\"median_ms\":%.3f,"
                "\"gflops\":%.2f,\"speedup\":%.2f}\n",
                static_cast<long long>(m), static_cast<long long>(k), static_cast<long long>(n),
                kiln::kernels::cpu::isa_name(isa), s * 1e3, flops / s * 1e-9, ref_s / s);
  }
  return 0;
}
