// MemoryPlan — where a run's intermediate tensors live, decided before any kernel runs.
//
// Once the inputs bind the graph's size symbols (batch, seq), every tensor a top-level node
// makes has a known byte size and a lifetime (from the node that makes it to the last node
// that reads it or any view of it). plan_memory packs those intervals into one arena,
// largest first into the lowest gap that fits, so values that are never alive together
// share bytes. The graph's outputs and values of unknown size are left to the heap.
//
// The plan is advice the arena checks: while a kernel runs, its outputs' allocations take
// their planned slices (ArenaSession), but a slice is handed out only when no tensor still
// alive overlaps it; otherwise the allocation goes to the heap and is counted as spilled.
// A wrong guess about aliasing therefore costs memory, never correctness.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "engine/ir/graph.hpp"
#include "kernels/tensor.hpp"

namespace kiln::exec {

struct Program;

struct MemoryPlan {
  struct Slot {
    ir::ValueId value;
    std::int64_t offset = 0;  // bytes from the arena's start, 64-aligned
    std::int64_t bytes = 0;
  };
  // By node id: the planned slots of that node's tensor outputs, in output order.
  std::map<std::uint32_t, std::vector<Slot>> slots;
  std::int64_t arena_bytes = 0;       // the arena's size: the peak of planned intermediates
  std::int64_t planned_bytes = 0;     // the sum of planned tensors' sizes (no reuse)
  std::int64_t output_bytes = 0;      // the graph's tensor outputs, allocated apart
  std::int64_t planned_values = 0;
  std::int64_t unplanned_values = 0;  // tensors of unknown size, or made inside If/Loop
};

// The plan for one binding of the graph's size symbols (symbol id -> size, as run()
// binds them from the inputs).
MemoryPlan plan_memory(const Program& program, const std::map<std::int64_t, std::int64_t>& sizes);

// What one run's memory came to, for reports (kiln run, kiln bench).
struct MemoryStats {
  std::int64_t arena_bytes = 0;   // the plan's arena
  std::int64_t output_bytes = 0;  // the plan's outputs
  std::int64_t planned_bytes = 0; // the planned intermediates' sizes added up (no reuse)
  std::int64_t planned_values = 0;
  std::int64_t unplanned_values = 0;
  std::int64_t spilled_values = 0;  // planned, but their slice was still in use: heap
  std::int64_t heap_bytes = 0;      // bytes kernels allocated from the heap during the run
};

// Arenas kept between runs of one program, so that a steady stream of runs allocates no
// intermediate memory; each run takes one (or makes one) and gives it back when no tensor
// it returned still points into it. Plans are cached by the symbol binding. Thread-safe.
class ArenaPool {
 public:
  std::shared_ptr<const MemoryPlan> plan(const Program& program, const std::map<std::int64_t, std::int64_t>& sizes);
  std::shared_ptr<std::byte[]> take(std::int64_t bytes);
  void give_back(std::shared_ptr<std::byte[]> arena, std::int64_t bytes);

 private:
  std::mutex mutex_;
  std::map<std::map<std::int64_t, std::int64_t>, std::shared_ptr<const MemoryPlan>> plans_;
  struct Kept {
    std::shared_ptr<std::byte[]> arena;
    std::int64_t bytes;
  };
  std::vector<Kept> arenas_;
};

// One run's use of an arena: install it around each top-level kernel with for_node(), and
// the kernel's output allocations of exactly a planned slot's size take that slot.
class ArenaSession {
 public:
  ArenaSession(std::shared_ptr<const MemoryPlan> plan, std::shared_ptr<std::byte[]> arena);
  // The allocator for node `n`'s kernel; an inactive one when nothing is planned there.
  kernels::Allocator for_node(ir::NodeId n);
  MemoryStats stats() const { return stats_; }
  // The arena, for ArenaPool::give_back once the run's frame is gone.
  std::shared_ptr<std::byte[]> release_arena() { return std::move(arena_); }

 private:
  static std::shared_ptr<kernels::Buffer> allocate(void* self, std::size_t bytes, bool zeroed);

  struct Handed {
    std::int64_t offset, bytes;
    std::weak_ptr<kernels::Buffer> buffer;
  };
  std::shared_ptr<const MemoryPlan> plan_;
  std::shared_ptr<std::byte[]> arena_;
  std::byte* base_ = nullptr;
  const std::vector<MemoryPlan::Slot>* node_slots_ = nullptr;
  std::vector<bool> claimed_;
  std::vector<Handed> live_;
  MemoryStats stats_;
};

}  // namespace kiln::exec
