// parallel.hpp's two runtimes: OpenMP when kiln is built with oneDNN (and the compiler has
// OpenMP: meson.build adds -fopenmp only then), kiln's own pool otherwise.
//
// Both split [0, n) the same way (split() below), so a kernel sees the same ranges under
// either runtime, and both run a parallel_for called from inside a range inline: nested
// calls never wait on each other.
#include "kernels/cpu/parallel.hpp"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <thread>

#include "kiln_config.h"

#if KILN_HAVE_ONEDNN && defined(_OPENMP)
#define KILN_PARALLEL_OPENMP 1
#include <omp.h>
#else
#define KILN_PARALLEL_OPENMP 0
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <vector>
#endif

namespace kiln::kernels::cpu {

namespace {

// ThreadScope's upper bound, so that a typo cannot ask OpenMP for a million threads.
constexpr int kMaxThreads = 256;

thread_local int t_max_threads = 1;

// How parallel_for cuts [0, n): `ranges` ranges of `len` (the last one shorter), at most
// min(threads, ceil(n / grain)) of them. len = max(grain, ceil(n / chunks)), so every
// range but the last is at least `grain` long and the longest is as short as `chunks`
// workers allow. ranges <= 1 means: run inline.
struct Split {
  std::int64_t len = 0, ranges = 0;
};

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return a / b + (a % b != 0 ? 1 : 0); }

Split split(std::int64_t n, std::int64_t grain, int threads) {
  if (n <= 0) return {};
  grain = std::max<std::int64_t>(grain, 1);
  const std::int64_t chunks = std::min<std::int64_t>(threads, ceil_div(n, grain));
  if (chunks <= 1) return {n, 1};
  const std::int64_t len = std::max(grain, ceil_div(n, chunks));
  return {len, ceil_div(n, len)};
}

void run_range(const RangeFn& fn, const Split& s, std::int64_t n, std::int64_t r) {
  const std::int64_t begin = r * s.len;
  fn(begin, begin + std::min(s.len, n - begin));
}

#if KILN_PARALLEL_OPENMP

// ThreadScope also sets OpenMP's nthreads ICV; the value it had before this thread's
// outermost scope is put back when that scope ends (inner scopes restore the outer
// scope's count, which is what the outer scope had set).
thread_local int t_scope_depth = 0;
thread_local int t_omp_outside = 0;

#else  // kiln's own pool

// > 0 while this thread runs a range of some parallel_for (always, in a pool worker):
// a parallel_for called there runs inline.
thread_local int t_depth = 0;
thread_local bool t_is_worker = false;

// The pool's workers hold at most this many threads beside the caller's own.
constexpr std::size_t kMaxWorkers = 63;

// How long a thread that runs out of work polls (yielding the CPU) before it blocks on a
// condition variable: an idle worker for the next job, a caller for its workers' last
// ranges. Waking a blocked thread costs several microseconds, tens in a VM whose idle CPU
// has halted, more than a kernel's whole range; OpenMP runtimes spin for the same reason.
constexpr std::chrono::microseconds kSpin{250};

// Polls `done` until it holds (true) or kSpin has passed (false).
template <class Done>
bool spin_until(Done done) {
  const auto deadline = std::chrono::steady_clock::now() + kSpin;
  for (unsigned i = 1;; ++i) {
    if (done()) return true;
    if (i % 64 == 0) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::yield();  // let a thread that has work run here, if one is waiting
    }
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }
}

// One parallel_for call, on the caller's stack. The caller and the workers that took one
// of its tickets claim ranges through `next` until none is left. The caller returns only
// after it has taken the job off the queue (no new worker can join), `active` is 0, and it
// has held the mutex since (the last worker touches the job only inside the mutex).
struct Job {
  Job(const RangeFn& f, std::int64_t count, Split s) : fn(f), n(count), split(s) {}
  const RangeFn& fn;
  const std::int64_t n;
  const Split split;
  std::atomic<std::int64_t> next{0};
  // Written under Pool::mutex_ (active is read without it while the caller polls):
  std::size_t tickets = 0;     // workers still wanted; the job is queued while > 0
  std::atomic<int> active{0};  // workers that took a ticket and have not left yet
  std::exception_ptr error;
  std::condition_variable done;  // active reached 0
};

// Claims and runs ranges of `job` until none is left; returns the first exception.
std::exception_ptr run_claimed(Job& job) {
  std::exception_ptr first;
  for (;;) {
    const std::int64_t r = job.next.fetch_add(1, std::memory_order_relaxed);
    if (r >= job.split.ranges) return first;
    try {
      run_range(job.fn, job.split, job.n, r);
    } catch (...) {
      if (!first) first = std::current_exception();
    }
  }
}

class Pool {
 public:
  // Runs `job` with the caller and up to threads - 1 workers; rethrows fn's first exception.
  void run(Job& job, int threads) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (!stopped_) {
        grow(std::min(static_cast<std::size_t>(threads - 1), kMaxWorkers));
        const std::size_t tickets = std::min(static_cast<std::size_t>(job.split.ranges - 1), workers_.size());
        if (tickets > 0) {
          queue_.push_back(&job);
          queued_.store(queue_.size(), std::memory_order_relaxed);
          posted_.fetch_add(1, std::memory_order_relaxed);
          job.tickets = tickets;
          const int sleepers = sleepers_;  // the others are polling queued_
          lock.unlock();
          if (sleepers > 0 && (sleepers == 1 || tickets == 1)) {
            work_.notify_one();
          } else if (sleepers > 1) {
            work_.notify_all();
          }
        }
      }
    }
    ++t_depth;
    std::exception_ptr error = run_claimed(job);
    --t_depth;
    std::unique_lock<std::mutex> lock(mutex_);
    if (job.tickets > 0) {
      queue_.erase(std::find(queue_.begin(), queue_.end(), &job));
      queued_.store(queue_.size(), std::memory_order_relaxed);
      job.tickets = 0;
    }
    if (job.active.load(std::memory_order_relaxed) > 0) {
      lock.unlock();
      spin_until([&] { return job.active.load(std::memory_order_relaxed) == 0; });
      lock.lock();
      job.done.wait(lock, [&] { return job.active.load(std::memory_order_relaxed) == 0; });
    }
    if (!error) error = job.error;
    lock.unlock();
    if (error) std::rethrow_exception(error);
  }

  // Stops and joins the workers; later calls run on the caller alone.
  void shutdown() {
    std::vector<std::thread> workers;
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      stopped_ = true;
      workers.swap(workers_);
    }
    work_.notify_all();
    for (std::thread& w : workers) {
      // A worker that calls exit() cannot join itself: leave the threads to the exit.
      if (t_is_worker) {
        w.detach();
      } else {
        w.join();
      }
    }
  }

 private:
  void grow(std::size_t want) {  // mutex_ held
    while (workers_.size() < want) {
      try {
        workers_.emplace_back([this] { work(); });
      } catch (...) {
        return;  // no more threads to be had: the caller and the workers so far do the job
      }
    }
  }

  void work() {
    t_is_worker = true;
    t_depth = 1;
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      while (queue_.empty() && !stopped_) {
        // Poll while jobs keep being posted (even ones their callers finish before this
        // thread sees them); block once none has been for kSpin.
        const std::uint64_t seen = posted_.load(std::memory_order_relaxed);
        lock.unlock();
        const bool posted = spin_until([&] {
          return queued_.load(std::memory_order_relaxed) > 0 || posted_.load(std::memory_order_relaxed) != seen;
        });
        lock.lock();
        if (!posted && queue_.empty() && !stopped_) {
          ++sleepers_;
          work_.wait(lock, [&] { return stopped_ || !queue_.empty(); });
          --sleepers_;
        }
      }
      if (stopped_) return;
      Job& job = *queue_.front();
      if (--job.tickets == 0) {
        queue_.pop_front();
        queued_.store(queue_.size(), std::memory_order_relaxed);
      }
      job.active.fetch_add(1, std::memory_order_relaxed);
      lock.unlock();
      std::exception_ptr error = run_claimed(job);
      lock.lock();
      if (error && !job.error) job.error = error;
      // Inside the mutex: the caller may destroy the job once it has held the mutex after this.
      if (job.active.fetch_sub(1, std::memory_order_relaxed) == 1) job.done.notify_one();
    }
  }

  std::mutex mutex_;
  std::condition_variable work_;  // queue_ not empty, or stopped_
  std::deque<Job*> queue_;
  std::atomic<std::size_t> queued_{0};    // queue_.size(), for polling workers
  std::atomic<std::uint64_t> posted_{0};  // jobs ever queued, for polling workers
  int sleepers_ = 0;                      // workers blocked on work_
  std::vector<std::thread> workers_;
  bool stopped_ = false;
};

std::atomic<bool> g_pool_started{false};

// Never deleted, so that a parallel_for from another static destructor still finds it;
// its workers are joined by `g_pool_joiner` at exit.
Pool& pool() {
  static Pool* const instance = [] {
    auto* p = new Pool;
    g_pool_started.store(true);
    return p;
  }();
  return *instance;
}

struct PoolJoiner {
  ~PoolJoiner() {
    if (g_pool_started.load()) pool().shutdown();
  }
} g_pool_joiner;

#endif

}  // namespace

int hardware_threads() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    const int count = CPU_COUNT(&set);
    if (count > 0) return count;
  }
  // More CPUs than a cpu_set_t holds, or no affinity call: what the library says.
  const unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(std::min<unsigned>(n, kMaxThreads)) : 1;
}

const char* threading_runtime() { return KILN_PARALLEL_OPENMP ? "openmp" : "kiln-pool"; }

int max_threads() { return t_max_threads; }

ThreadScope::ThreadScope(int n) : previous_(t_max_threads) {
  t_max_threads = std::min(n < 1 ? hardware_threads() : n, kMaxThreads);
#if KILN_PARALLEL_OPENMP
  if (t_scope_depth++ == 0) t_omp_outside = omp_get_max_threads();
  omp_set_num_threads(t_max_threads);
#endif
}

ThreadScope::~ThreadScope() {
  t_max_threads = previous_;
#if KILN_PARALLEL_OPENMP
  omp_set_num_threads(--t_scope_depth == 0 ? t_omp_outside : previous_);
#endif
}

void parallel_for(std::int64_t n, std::int64_t grain, RangeFn fn) {
  const Split s = split(n, grain, t_max_threads);
  if (s.ranges == 0) return;
#if KILN_PARALLEL_OPENMP
  if (s.ranges == 1 || omp_in_parallel()) return fn(0, n);
  std::exception_ptr error;
  // The team may be smaller than asked (OMP_THREAD_LIMIT, OMP_DYNAMIC): each thread takes
  // every team-th range, so all ranges run whatever its size.
#pragma omp parallel num_threads(static_cast<int>(s.ranges))
  {
    const std::int64_t team = omp_get_num_threads();
    for (std::int64_t r = omp_get_thread_num(); r < s.ranges; r += team) {
      try {
        run_range(fn, s, n, r);
      } catch (...) {
#pragma omp critical(kiln_parallel_for_error)
        if (!error) error = std::current_exception();
      }
    }
  }
  if (error) std::rethrow_exception(error);
#else
  if (s.ranges == 1 || t_depth > 0) return fn(0, n);
  Job job(fn, n, s);
  pool().run(job, t_max_threads);
#endif
}

}  // namespace kiln::kernels::cpu
