// kernels/cpu/parallel.hpp: parallel_for covers [0, n) exactly once in ranges of at least
// `grain` (but the last), under every thread count; exceptions, nested calls, concurrent
// callers and ThreadScope. Under oneDNN builds this is OpenMP, otherwise kiln's own pool
// (run under ASan and TSan: the sanitizer builds have oneDNN off).
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "kernels/cpu/parallel.hpp"

namespace cpu = kiln::kernels::cpu;

namespace {

struct Range {
  std::int64_t begin, end;
};

// Runs parallel_for and returns the ranges fn saw, sorted; checks every index was hit once.
std::vector<Range> cover(std::int64_t n, std::int64_t grain) {
  std::vector<std::atomic<int>> hits(static_cast<std::size_t>(std::max<std::int64_t>(n, 0)));
  std::mutex m;
  std::vector<Range> ranges;
  cpu::parallel_for(n, grain, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) hits[static_cast<std::size_t>(i)].fetch_add(1);
    const std::lock_guard<std::mutex> lock(m);
    ranges.push_back({begin, end});
  });
  std::int64_t bad = 0;
  for (const auto& h : hits) bad += h.load() != 1;
  CHECK(bad == 0);
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) { return a.begin < b.begin; });
  return ranges;
}

}  // namespace

TEST_CASE("parallel: runtime and hardware threads") {
  CHECK(cpu::hardware_threads() >= 1);
  const std::string runtime = cpu::threading_runtime();
  CHECK((runtime == "openmp" || runtime == "kiln-pool"));
  MESSAGE("threading runtime ", runtime, ", ", cpu::hardware_threads(), " hardware threads");
}

TEST_CASE("parallel: ThreadScope nests and restores") {
  CHECK(cpu::max_threads() == 1);
  {
    const cpu::ThreadScope four(4);
    CHECK(cpu::max_threads() == 4);
    {
      const cpu::ThreadScope two(2);
      CHECK(cpu::max_threads() == 2);
      {
        const cpu::ThreadScope all(0);
        CHECK(cpu::max_threads() == cpu::hardware_threads());
        const cpu::ThreadScope negative(-3);
        CHECK(cpu::max_threads() == cpu::hardware_threads());
      }
      CHECK(cpu::max_threads() == 2);
    }
    CHECK(cpu::max_threads() == 4);
    // Another thread has its own count.
    int other = 0;
    std::thread([&] { other = cpu::max_threads(); }).join();
    CHECK(other == 1);
  }
  CHECK(cpu::max_threads() == 1);
  {
    const cpu::ThreadScope big(100000);
    CHECK(cpu::max_threads() >= 1);
    CHECK(cpu::max_threads() <= 256);
  }
  CHECK(cpu::max_threads() == 1);
}

TEST_CASE("parallel: every index exactly once, ranges of at least grain") {
  const std::vector<std::int64_t> ns = {0, 1, 2, 3, 5, 7, 8, 16, 17, 63, 64, 65, 100, 1000, 4097};
  const std::vector<std::int64_t> grains = {-1, 0, 1, 2, 3, 7, 16, 100, 5000};
  for (const int threads : {1, 2, 3, 4, 5, 8, 13, 64}) {
    const cpu::ThreadScope scope(threads);
    for (const std::int64_t n : ns) {
      for (const std::int64_t grain : grains) {
        INFO("threads ", threads, ", n ", n, ", grain ", grain);
        const std::vector<Range> ranges = cover(n, grain);
        if (n <= 0) {
          CHECK(ranges.empty());
          continue;
        }
        REQUIRE(!ranges.empty());
        const std::int64_t g = std::max<std::int64_t>(grain, 1);
        const auto expected_chunks = std::min<std::int64_t>(threads, (n + g - 1) / g);
        CHECK(static_cast<std::int64_t>(ranges.size()) <= expected_chunks);
        CHECK(ranges.front().begin == 0);
        CHECK(ranges.back().end == n);
        for (std::size_t r = 0; r < ranges.size(); ++r) {
          CHECK(ranges[r].begin < ranges[r].end);
          if (r + 1 < ranges.size()) {
            CHECK(ranges[r].end == ranges[r + 1].begin);
            CHECK(ranges[r].end - ranges[r].begin >= g);
          }
        }
        // The longest range is as short as the chunk count allows (static, balanced split).
        std::int64_t longest = 0;
        for (const Range& r : ranges) longest = std::max(longest, r.end - r.begin);
        CHECK(longest == (expected_chunks <= 1 ? n : std::max(g, (n + expected_chunks - 1) / expected_chunks)));
      }
    }
  }
}

TEST_CASE("parallel: one thread or one grain runs inline on the caller") {
  const std::thread::id caller = std::this_thread::get_id();
  int calls = 0;
  bool on_caller = true;
  cpu::parallel_for(1000, 1, [&](std::int64_t begin, std::int64_t end) {  // max_threads() == 1
    ++calls;
    on_caller = on_caller && std::this_thread::get_id() == caller;
    CHECK(begin == 0);
    CHECK(end == 1000);
  });
  CHECK(calls == 1);
  CHECK(on_caller);
  const cpu::ThreadScope scope(4);
  calls = 0;
  cpu::parallel_for(1000, 1000, [&](std::int64_t begin, std::int64_t end) {
    ++calls;
    on_caller = on_caller && std::this_thread::get_id() == caller;
    CHECK(end - begin == 1000);
  });
  CHECK(calls == 1);
  CHECK(on_caller);
}

TEST_CASE("parallel: ranges run on several threads") {
  const cpu::ThreadScope scope(4);
  std::mutex m;
  std::set<std::thread::id> ids;
  // Each range waits (bounded) until a second thread shows up, so this does not depend on timing
  // except on a machine that cannot start a thread within a few seconds.
  std::atomic<int> started{0};
  cpu::parallel_for(4, 1, [&](std::int64_t, std::int64_t) {
    {
      const std::lock_guard<std::mutex> lock(m);
      ids.insert(std::this_thread::get_id());
    }
    started.fetch_add(1);
    for (int spin = 0; spin < 5000 && started.load() < 2; ++spin) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  CHECK(ids.size() >= 2);
}

TEST_CASE("parallel: the first exception is rethrown after every range ran") {
  for (const int threads : {1, 2, 3, 4, 8}) {
    const cpu::ThreadScope scope(threads);
    for (const std::int64_t n : {1, 2, 7, 64, 1000}) {
      INFO("threads ", threads, ", n ", n);
      std::vector<std::atomic<int>> hits(static_cast<std::size_t>(n));
      bool thrown = false;
      try {
        cpu::parallel_for(n, 1, [&](std::int64_t begin, std::int64_t end) {
          for (std::int64_t i = begin; i < end; ++i) hits[static_cast<std::size_t>(i)].fetch_add(1);
          if (begin % 2 == 0) throw std::runtime_error("range " + std::to_string(begin));
        });
      } catch (const std::runtime_error& e) {
        thrown = true;
        CHECK(std::string(e.what()).rfind("range ", 0) == 0);
      }
      CHECK(thrown);
      std::int64_t bad = 0;
      for (const auto& h : hits) bad += h.load() != 1;
      CHECK(bad == 0);  // the other ranges still ran, each once
    }
    // A throwing range, then the pool (or team) is still usable.
    CHECK(cover(1000, 1).size() >= 1);
  }
}

TEST_CASE("parallel: nested calls run, each index once") {
  for (const int threads : {2, 3, 4}) {
    const cpu::ThreadScope scope(threads);
    constexpr std::int64_t kOuter = 37, kInner = 53;
    std::vector<std::atomic<int>> hits(kOuter * kInner);
    cpu::parallel_for(kOuter, 1, [&](std::int64_t o0, std::int64_t o1) {
      for (std::int64_t o = o0; o < o1; ++o) {
        cpu::parallel_for(kInner, 1, [&](std::int64_t i0, std::int64_t i1) {
          for (std::int64_t i = i0; i < i1; ++i) hits[static_cast<std::size_t>(o * kInner + i)].fetch_add(1);
        });
      }
    });
    std::int64_t bad = 0;
    for (const auto& h : hits) bad += h.load() != 1;
    CHECK(bad == 0);
    // An exception from a nested call reaches the outer caller.
    CHECK_THROWS_AS(cpu::parallel_for(8, 1,
                                      [&](std::int64_t, std::int64_t) {
                                        cpu::parallel_for(8, 1, [&](std::int64_t b, std::int64_t) {
                                          if (b == 0) throw std::logic_error("inner");
                                        });
                                      }),
                    std::logic_error);
  }
}

TEST_CASE("parallel: concurrent callers from several threads") {
  constexpr int kCallers = 4, kRounds = 200;
  std::atomic<std::int64_t> failures{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < kCallers; ++t) {
    callers.emplace_back([t, &failures] {
      const cpu::ThreadScope scope(t + 1);  // 1, 2, 3, 4: different counts at once
      for (int round = 0; round < kRounds; ++round) {
        const std::int64_t n = 1 + (round * 37 + t * 11) % 500;
        std::vector<std::int64_t> sums(static_cast<std::size_t>(n), 0);
        cpu::parallel_for(n, 1 + round % 5, [&](std::int64_t begin, std::int64_t end) {
          for (std::int64_t i = begin; i < end; ++i) sums[static_cast<std::size_t>(i)] += i + 1;
        });
        for (std::int64_t i = 0; i < n; ++i) {
          if (sums[static_cast<std::size_t>(i)] != i + 1) failures.fetch_add(1);
        }
        if (round % 10 == 0) {  // some throw, concurrently with the others' work
          try {
            cpu::parallel_for(n, 1, [](std::int64_t begin, std::int64_t) {
              if (begin == 0) throw std::runtime_error("x");
            });
            failures.fetch_add(1);
          } catch (const std::runtime_error&) {
          }
        }
      }
      if (cpu::max_threads() != t + 1) failures.fetch_add(1);
    });
  }
  for (std::thread& c : callers) c.join();
  CHECK(failures.load() == 0);
}

TEST_CASE("parallel: a lambda's state is shared, not copied") {
  const cpu::ThreadScope scope(3);
  std::atomic<std::int64_t> total{0};
  auto add = [&total](std::int64_t begin, std::int64_t end) {
    std::int64_t s = 0;
    for (std::int64_t i = begin; i < end; ++i) s += i;
    total.fetch_add(s);
  };
  cpu::parallel_for(10000, 10, add);
  CHECK(total.load() == 10000LL * 9999 / 2);
  const auto mutable_counter = std::make_shared<std::atomic<int>>(0);
  cpu::parallel_for(9, 1, [mutable_counter](std::int64_t, std::int64_t) mutable { mutable_counter->fetch_add(1); });
  CHECK(mutable_counter->load() >= 1);
  CHECK(mutable_counter->load() <= 3);
}
