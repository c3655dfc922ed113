// kiln — run TorchScript models traced from Hugging Face BERT-family models, without PyTorch.
//
// This is the public C++ API: load a traced model once, run it many times (from any
// number of threads: a Model is immutable), with tensors in and tensors out.
//
//   kiln::Model model = kiln::Model::load("traced_bert.pt");
//   std::vector<kiln::Tensor> out = model.run({ids, mask});   // forward-argument order
//   const float* hidden = static_cast<const float*>(out[0].data());
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "kiln/dtype.hpp"
#include "kiln/error.hpp"

namespace kiln {

// How this copy of kiln was built; printed by `kiln --version`.
struct BuildInfo {
  std::string version;         // "0.1.0"
  std::string build_type;      // meson buildtype: "release", "debug", ...
  std::string compiler;        // "gcc 12.2.0"
  std::string sanitize;        // "none" or e.g. "address,undefined"
  bool onednn = false;         // linked against oneDNN
  std::string onednn_version;  // "2.6.3" as reported by the linked library, when onednn
  std::string onednn_runtime;  // "OpenMP", "sequential", ... when onednn
  bool protobuf = false;       // ONNX I/O available
};

BuildInfo build_info();

// A dense tensor in C order. Copies share their data, which is never modified.
class Tensor {
 public:
  Tensor() = default;
  // Copies numel(shape) * dtype_size(dtype) bytes from `data`. Throws kiln::Error (usage)
  // for a negative size or an element count that overflows.
  static Tensor from_bytes(DType dtype, std::vector<std::int64_t> shape, const void* data);
  template <class T>
  static Tensor from_values(DType dtype, std::vector<std::int64_t> shape, const std::vector<T>& values) {
    if (sizeof(T) != dtype_size(dtype) || count(shape) != static_cast<std::int64_t>(values.size()))
      throw Error(ErrorKind::usage, "", "", "Tensor::from_values: the values do not match the dtype and shape");
    return from_bytes(dtype, std::move(shape), values.data());
  }

  DType dtype() const { return dtype_; }
  const std::vector<std::int64_t>& shape() const { return shape_; }
  std::int64_t numel() const { return count(shape_); }
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype_); }
  const void* data() const { return data_; }

  // A view of caller memory, no copy: `data` must stay valid and unchanged for as long as
  // this Tensor, its copies, and any run it is passed to are alive. It is never written.
  static Tensor view(DType dtype, std::vector<std::int64_t> shape, const void* data);

  // Internal: wraps bytes kept alive by `owner` without copying.
  static Tensor wrap(DType dtype, std::vector<std::int64_t> shape, const void* data, std::shared_ptr<const void> owner);

 private:
  static std::int64_t count(const std::vector<std::int64_t>& shape);
  DType dtype_ = DType::float32;
  std::vector<std::int64_t> shape_;
  const void* data_ = nullptr;
  std::shared_ptr<const void> owner_;
};

// What one run's memory came to. Intermediates live in an arena planned from the input
// sizes before any kernel runs (and reused by later runs); outputs are allocated apart.
struct RunStats {
  std::int64_t arena_bytes = 0;       // the planned arena: peak bytes of intermediates
  std::int64_t output_bytes = 0;      // the outputs' bytes
  std::int64_t heap_bytes = 0;        // bytes kernels took outside the plan (scratch, spills)
  std::int64_t planned_values = 0;    // intermediates placed in the arena
  std::int64_t planned_bytes = 0;     // their sizes added up: what no reuse would take
  std::int64_t unplanned_values = 0;  // tensors whose size was not known ahead (heap)
  std::int64_t spilled_values = 0;    // planned, but moved to the heap (their slice was busy)
  int threads = 1;                    // kernel threads the run used at most
  // With RunOptions::profile: time in each op kind's kernels, slowest first.
  struct OpTime {
    std::string op;  // "aten::linear"
    std::int64_t calls = 0;
    double ms = 0;
  };
  std::vector<OpTime> ops;
};

struct RunOptions {
  // Refuse inputs whose sizes the trace fixed silently (a literal slice bound) instead of
  // warning and computing what PyTorch computes.
  bool strict_shapes = false;
  // Kernel threads for this run: -1 takes the model's LoadOptions::threads; 0 is every CPU
  // the process may use. Results are the same for every count.
  int threads = -1;
  // Refuse a run whose planned memory (arena + outputs) exceeds this many bytes, before
  // allocating anything: -1 takes LoadOptions::max_memory; 0 is no limit.
  std::int64_t max_memory = -1;
  // Filled in after the run, when given.
  RunStats* stats = nullptr;
  // Time every kernel call into stats->ops (costs a clock read per op).
  bool profile = false;
};

// One size of a model input or output: fixed, or a symbol shared by the inputs and outputs
// that have it ("batch", "seq", or one derived from them such as "seq+1").
struct Dim {
  std::int64_t size = -1;  // >= 0 when fixed
  std::string symbol;      // the symbol's name when not fixed
};

// What a model takes or returns, as far as loading could tell: the dtype, the rank and
// sizes (fixed or symbolic), each optional when unknown.
struct TensorInfo {
  std::string name;                      // the forward argument ("input_ids"), or "output_0", ...
  std::optional<DType> dtype;
  std::optional<std::vector<Dim>> shape;
};

struct LoadOptions {
  // Providers by name, tried in order for every op: "cpu" (fast kernels where they apply,
  // reference kernels for the rest) or "cpu-reference" (reference kernels only, the
  // oracle). The last must run every op; both CPU providers do.
  std::vector<std::string> providers{"cpu"};
  // Defaults for every run (RunOptions overrides them): kernel threads (0: every CPU) and
  // the memory limit in bytes (0: none).
  int threads = 0;
  std::int64_t max_memory = 0;
  // Prepare the model as part of loading (see Model::prepare): a loaded model is then ready,
  // its first run as fast as the ones after it. false keeps loading cheap (no weight is
  // read) and leaves preparation to an explicit Model::prepare(), or to never: an unprepared
  // model runs correctly, reading its weights in place, only slower.
  bool prepare = true;
};

// A TorchScript archive loaded, checked and optimized. Loading never executes anything
// from the archive; ops kiln does not support are refused here with their source line.
class Model {
 public:
  // Throws kiln::Error (bad_input) for files kiln cannot read or run.
  static Model load(const std::string& path, const LoadOptions& options = {});
  // The same from an archive in caller memory, without copying: the `size` bytes at `data`
  // must stay valid and unchanged while the Model (or any copy of it) is alive, because
  // weights are used in place. `name` stands for the file in messages.
  static Model load_from_memory(const void* data, std::size_t size, const LoadOptions& options = {},
                                const std::string& name = "<memory>");

  // The inputs in forward-argument order and the outputs (tuples flattened in order).
  std::vector<TensorInfo> inputs() const;
  std::vector<TensorInfo> outputs() const;

  // The forward arguments after self, in order ("input_ids", "attention_mask", ...).
  const std::vector<std::string>& input_names() const;
  // What the trace fixed (sizes baked into literals), one line each; empty when nothing.
  std::vector<std::string> shape_report() const;

  // Makes the model ready for fast runs, once: copies each linear layer's weight into the
  // layout the GEMM prefers (then hands the mapped file's pages of the original back to
  // the OS, so memory holds the weights once), and, at the shape the model was traced
  // with, creates the kernels and the arena a first run would. Results stay the same up
  // to float rounding. Idempotent and thread-safe: later calls return at once, and runs
  // may go on from other threads meanwhile. Model::load does this unless
  // LoadOptions::prepare is false. Throws kiln::Error (internal) when out of memory.
  void prepare() const;

  // Inputs in forward-argument order; outputs flattened (tuples in order). Integer ids may
  // be int32 or int64. Bad inputs (count, dtype, rank, ids out of range, a size the trace
  // fixed) are a kiln::Error before any computation. `warnings` receives what the trace
  // cut silently, when given.
  std::vector<Tensor> run(const std::vector<Tensor>& inputs, const RunOptions& options = {},
                          std::vector<std::string>* warnings = nullptr) const;
  // Inputs by name, in any order; every input must be given.
  std::vector<Tensor> run(const std::vector<std::pair<std::string, Tensor>>& inputs, const RunOptions& options = {},
                          std::vector<std::string>* warnings = nullptr) const;

  struct Impl;

 private:
  std::shared_ptr<const Impl> impl_;
};

}  // namespace kiln
