// Program — an optimized graph bound to its weights and to one kernel per node, ready to
// run many times, from many threads at once: a Program is immutable after load, and
// everything a run needs lives in the run's own frame.
//
// load_program imports the archive, runs the pass pipeline, resolves every TensorRef to a
// tensor that borrows the mapped file, and binds each node to a reference kernel (a node
// without one is refused here, at load). run() checks the inputs against what the graph
// expects (count, dtype, rank, the sizes the shape report fixed, embedding ids in range)
// before any kernel runs, then executes the graph. prepare() (engine/exec/prepare.hpp)
// packs the GEMM weights and warms the traced shape, once, when the caller asks.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/exec/memory_plan.hpp"
#include "engine/exec/prepare.hpp"
#include "engine/exec/value.hpp"
#include "engine/ir/graph.hpp"
#include "engine/passes/shape_inference.hpp"
#include "format/archive.hpp"

namespace kiln::exec {

struct Frame;
// One node's work: read inputs from the frame, write its outputs there.
using Kernel = void (*)(Frame& frame, ir::NodeId node);

struct InputInfo {
  std::string name;
  passes::InputSpec spec;  // dtype and rank (with symbols) expected, when known
};

// An embedding whose indices come straight from a graph input: its ids are checked
// before running.
struct IndexCheck {
  std::size_t input = 0;  // graph input position
  std::int64_t rows = 0;  // table size
  std::string table;      // "word_embeddings"
};

struct Provider;

struct LoadOptions {
  // Tried in order for every node; the last must run everything (cpu_provider() does).
  // Empty means {&cpu_provider()}.
  std::vector<const Provider*> providers;
  // Defaults for every run of the model (RunOptions overrides them per run).
  int threads = 0;               // kernel threads per run; 0: every CPU this process may use
  std::int64_t max_memory = 0;   // bytes a run's planned memory may take; 0: no limit
};

struct Program {
  std::string source;  // the archive path, for messages
  ir::Graph graph;
  std::vector<InputInfo> inputs;
  passes::ShapeReport shapes;
  std::vector<Kernel> kernels;          // by node id (null for prim::Constant, If, Loop)
  std::vector<const Provider*> placement;  // by node id: who runs it (null where kernels is)
  std::vector<const Provider*> providers;  // the load options' list
  std::vector<RtValue> constant_values;  // by value id, prim::Constant outputs filled in
  std::vector<IndexCheck> index_checks;
  // By top-level node id: values that node is the last reader of, dropped after it runs.
  std::vector<std::vector<ir::ValueId>> release;
  std::shared_ptr<const void> keepalive;  // the mapped archive that weights borrow
  // The private read-only mapping of the archive file that kiln made, when it made one
  // (not for caller memory or a copy): pages of it may be handed back to the OS, and are
  // read again from the file when touched.
  std::span<const std::byte> mapped_file;
  int threads = 0;                        // LoadOptions' defaults
  std::int64_t max_memory = 0;
  // Memory plans by input sizes, and arenas kept between runs: caches, shared by runs.
  std::shared_ptr<ArenaPool> arenas = std::make_shared<ArenaPool>();
  // Packed weights and the rest of preparation. After keepalive, so that the packed copies,
  // registered by the addresses of the weights they copy, go before the mapping does.
  std::shared_ptr<Preparation> preparation = std::make_shared<Preparation>();
};

// Time spent in one op kind's kernels during a run.
struct OpTime {
  std::int64_t calls = 0;
  double ms = 0;
};

struct RunOptions {
  bool strict_shapes = false;  // refuse inputs where the trace silently cuts a size
  int threads = -1;            // kernel threads; -1: the model's; 0: every CPU
  // Refuse, before allocating, a run whose plan (arena + outputs) needs more bytes than
  // this; -1: the model's; 0: no limit.
  std::int64_t max_memory = -1;
  // When given, every kernel call is timed and added here by op kind ("aten::linear").
  std::map<std::string, OpTime>* profile = nullptr;
};

// Throws kiln::Error (bad_input) for archives kiln cannot run.
std::shared_ptr<const Program> load_program(const std::string& path, const LoadOptions& options = {});
std::shared_ptr<const Program> load_program(const format::Archive& archive, const LoadOptions& options = {});

// Assigns every node to a provider and inserts kiln::copy nodes where values cross memory
// spaces (engine/exec/placement.cpp). Called by load_program after the passes.
void place(Program& p, const std::vector<const Provider*>& providers);

// Runs with inputs in forward-argument order; returns the graph outputs with tuples
// flattened in order. Warnings (sizes the trace cut silently) go to `warnings` and what the
// run's memory came to goes to `memory`, when given.
std::vector<kernels::Tensor> run(const Program& program, std::vector<kernels::Tensor> inputs,
                                 const RunOptions& options = {}, std::vector<std::string>* warnings = nullptr,
                                 MemoryStats* memory = nullptr);

// The input symbols' sizes (symbol id -> size) these inputs bind, after checking their
// count, dtypes (int32 ids become int64 in place), ranks and agreement; throws kiln::Error
// (bad_input) naming the input otherwise. run() starts with this.
std::map<std::int64_t, std::int64_t> bind_inputs(const Program& program, std::vector<kernels::Tensor>& inputs);

// The size of dim `d` when the input symbols take `sizes` (as bind_inputs gives them): a
// fixed size, an input symbol's, or a derived symbol's ("seq+1") evaluated; nullopt when
// `sizes` does not settle it.
std::optional<std::int64_t> dim_size(const Program& program, const ir::Dim& d,
                                     const std::map<std::int64_t, std::int64_t>& sizes);

// The frame a run executes in; kernels (reference_ops.cpp) read and write it.
struct Frame {
  const Program& program;
  std::vector<RtValue> values;  // by value id
};

// The kernel for a node kind and overload ("aten::add", "Tensor"), or null.
Kernel find_kernel(std::string_view kind, std::string_view overload);

}  // namespace kiln::exec
