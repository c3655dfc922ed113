// Threads for the CPU kernels: one runtime per build. With oneDNN on it is OpenMP, the
// runtime Debian's oneDNN itself uses, so kiln's loops and oneDNN's primitives share one
// team and never oversubscribe each other; with oneDNN off it is kiln's own small pool
// (std::thread), so a static build needs no libgomp and ThreadSanitizer sees every sync.
//
// The thread count is a property of the calling thread, set for the length of a run with
// ThreadScope (the executor does this from the model's and the run's `threads` option), so
// concurrent runs with different counts do not interfere. Kernels split work only over
// independent outputs (rows, column blocks), never over a reduction, so results are
// bitwise the same for every thread count.
#pragma once

#include <cstdint>
#include <type_traits>
#include <utility>

namespace kiln::kernels::cpu {

// Logical CPUs this process may run on (sched_getaffinity), at least 1.
int hardware_threads();

// "openmp" or "kiln-pool".
const char* threading_runtime();

// Threads kernels called from this thread may use; 1 unless a ThreadScope says otherwise.
int max_threads();

// Sets max_threads() for the calling thread until destroyed, then restores the previous
// value (scopes nest). n < 1 means hardware_threads(); n is capped at 256. Under OpenMP it
// also sets the calling thread's omp_set_num_threads, which oneDNN primitives follow (and
// the outermost scope puts back the value OpenMP had before it).
class ThreadScope {
 public:
  explicit ThreadScope(int n);
  ~ThreadScope();
  ThreadScope(const ThreadScope&) = delete;
  ThreadScope& operator=(const ThreadScope&) = delete;

 private:
  int previous_;
};

// A non-owning reference to a callable `void(std::int64_t begin, std::int64_t end)`, so
// that parallel_for takes lambdas without std::function's allocation.
class RangeFn {
 public:
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, RangeFn>>>
  RangeFn(F&& f) : object_(static_cast<const void*>(&f)), call_(&invoke<std::remove_reference_t<F>>) {}  // NOLINT
  void operator()(std::int64_t begin, std::int64_t end) const { call_(object_, begin, end); }

 private:
  template <class F>
  static void invoke(const void* object, std::int64_t begin, std::int64_t end) {
    (*static_cast<F*>(const_cast<void*>(object)))(begin, end);
  }
  const void* object_;
  void (*call_)(const void*, std::int64_t, std::int64_t);
};

// Calls fn over disjoint ranges covering [0, n), at most max_threads() at once, each range
// at least `grain` long (except possibly the last). Runs inline when one thread is enough.
// Returns when every range is done; an exception thrown by fn is rethrown here (the first
// one, after the other ranges finish).
//
// The split is static: min(max_threads(), ceil(n / grain)) contiguous ranges of
// max(grain, ceil(n / that)) indices, the same under both runtimes. A parallel_for called
// from inside a range (of any thread's parallel_for) runs fn(0, n) inline. Several threads
// may call parallel_for at once; each call uses at most its own caller's max_threads().
void parallel_for(std::int64_t n, std::int64_t grain, RangeFn fn);

}  // namespace kiln::kernels::cpu
