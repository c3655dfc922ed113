#include "bench/limits_bandwidth.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

namespace bench {

namespace {

// Integer adds into independent accumulators vectorise without -ffast-math, and even
// 16-byte loads ask more of a core than DRAM can give, so this measures memory, not ALUs.
std::uint64_t sum(const std::uint64_t* p, std::size_t n) {
  std::uint64_t acc[8] = {};
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) acc[j] += p[i + static_cast<std::size_t>(j)];
  for (; i < n; ++i) acc[0] += p[i];
  std::uint64_t s = 0;
  for (std::uint64_t a : acc) s += a;
  return s;
}

}  // namespace

double read_bandwidth_gbs(std::size_t bytes, int threads, int passes) {
  const std::size_t words = bytes / sizeof(std::uint64_t);
  std::unique_ptr<std::uint64_t[]> buffer(new std::uint64_t[words]);
  for (std::size_t i = 0; i < words; ++i) buffer[i] = i;
  const std::size_t part = words / static_cast<std::size_t>(threads);
  std::vector<std::uint64_t> sums(static_cast<std::size_t>(threads));
  std::vector<double> gbs;
  for (int pass = 0; pass < passes; ++pass) {
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> team;
    for (int t = 1; t < threads; ++t) {
      const std::size_t first = part * static_cast<std::size_t>(t);
      const std::size_t count = t + 1 == threads ? words - first : part;
      team.emplace_back([&, t, first, count] { sums[static_cast<std::size_t>(t)] = sum(buffer.get() + first, count); });
    }
    sums[0] = sum(buffer.get(), threads == 1 ? words : part);
    for (auto& th : team) th.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    gbs.push_back(static_cast<double>(words * sizeof(std::uint64_t)) / s / 1e9);
  }
  // The sums are checked so the compiler cannot drop the reads.
  std::uint64_t total = 0;
  for (std::uint64_t s : sums) total += s;
  if (total != (words - 1) * words / 2) return 0;
  std::sort(gbs.begin(), gbs.end());
  return gbs[gbs.size() / 2];
}

}  // namespace bench
