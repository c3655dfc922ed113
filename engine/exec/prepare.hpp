// Preparing a loaded Program for its runs, once, so that the first run costs what later
// runs cost. Loading stays cheap (parse, IR, plan: no weight page is read); preparing
// does the work that would otherwise land in the first run, or in every run:
//
// 1. Packs each GEMM weight (a constant tensor that only linear layers on the CPU provider
//    read, as their weight) into the blocked layout oneDNN's matmul prefers
//    (kernels::onednn::pack_weight), so oneDNN stops copying it into that layout in every
//    call. One packed copy serves every batch and sequence length.
// 2. Hands the mapped originals of the packed weights back to the OS (madvise
//    MADV_DONTNEED on the whole pages inside each), so resident memory holds the weights
//    once, not twice. Only for archives kiln mapped from a file, where a page handed back
//    is read again from the file if anything ever needs it; never for caller memory or a
//    copy in the heap. Bytes that any other node reads (a word-embedding table that is also
//    the masked-LM decoder's weight, a bias next to a weight) stay: those weights are not
//    packed at all, since packing would keep two copies of them.
// 3. At the shape the model was traced with, when the archive records it: makes the memory
//    plan and its arena, and runs each distinct GEMM node once on zeros, which creates the
//    oneDNN primitives the first real run would otherwise create.
//
// None of it changes a result beyond float rounding (a packed weight is the same numbers);
// a model that is never prepared runs as before, reading its weights in place.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "kernels/cpu/onednn_matmul.hpp"

namespace kiln::exec {

struct Program;

// What preparing a program did.
struct PrepareStats {
  std::int64_t packed_weights = 0;  // GEMM weights given a packed copy
  std::int64_t packed_bytes = 0;    // those copies' bytes
  std::int64_t released_bytes = 0;  // mapped archive bytes handed back to the OS
  // The most that packed_bytes - released_bytes reached along the way: how much the
  // weights took twice at once, copy and original (each original in the mapped file goes
  // right after its copy is made, so about the largest copy, plus the partial pages at
  // weights' ends; originals elsewhere are not released, and all their copies count).
  std::int64_t most_held_twice = 0;
  std::int64_t warmed_nodes = 0;    // GEMM nodes run once at the traced shape
  bool planned = false;             // the traced shape's memory plan and arena made
};

// A program's preparation state: a member of Program, shared by every run. The packed
// copies live as long as it does (and so as long as the Program).
class Preparation {
 public:
  // Prepares `program` (the one this is a member of) on the first call; later calls return
  // at once, and concurrent ones wait for the first. Runs may go on meanwhile: each reads
  // either the packed copies or the originals. Throws kiln::Error when out of memory.
  void ensure(const Program& program);
  bool done() const;
  PrepareStats stats() const;

 private:
  mutable std::mutex mutex_;
  bool done_ = false;
  PrepareStats stats_;
  std::vector<std::shared_ptr<const kernels::onednn::PackedWeight>> packed_;
};

// program.preparation->ensure(program), then what it did.
PrepareStats prepare(const Program& program);

}  // namespace kiln::exec
