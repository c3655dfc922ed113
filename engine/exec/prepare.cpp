// Packing GEMM weights, handing their mapped originals back, and warming the traced shape.
#include "engine/exec/prepare.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "engine/exec/program.hpp"
#include "engine/exec/provider.hpp"
#include "kernels/cpu/parallel.hpp"
#include "kiln/error.hpp"

namespace kiln::exec {
namespace {

using kernels::Tensor;
using Range = std::pair<const std::byte*, const std::byte*>;  // [first, last) bytes

// Nodes whose input 1 is a linear layer's weight [n, k], read through onednn::linear.
bool is_gemm(std::string_view kind) { return kind == "aten::linear" || kind == "kiln::linear_gelu"; }
// kiln::linear_concat(x, w1, b1, w2, b2, ...): weights at the odd inputs, packed together.
bool is_gemm_group(std::string_view kind) { return kind == "kiln::linear_concat"; }

bool on_cpu(const Program& p, ir::NodeId n) {
  return p.kernels[ir::idx(n)] != nullptr && p.placement[ir::idx(n)] == &cpu_provider();
}

// The bytes of the elements a tensor views.
Range byte_range(const Tensor& t) {
  std::int64_t last = 0;
  for (std::size_t d = 0; d < t.dim(); ++d) last += (t.sizes[d] - 1) * t.strides[d];
  const std::byte* first = t.bytes();
  return {first, first + (last + 1) * static_cast<std::int64_t>(dtype_size(t.dtype))};
}

// Every read of every value: (node, input index), or kNoNode for a block's return.
using Reads = std::map<std::uint32_t, std::vector<std::pair<ir::NodeId, std::size_t>>>;
Reads reads_of(const ir::Graph& g) {
  Reads reads;
  ir::walk(g, [&](ir::NodeId n) {
    const ir::Node& node = ir::node(g, n);
    for (std::size_t i = 0; i < node.inputs.size(); ++i) reads[ir::idx(node.inputs[i])].emplace_back(n, i);
    for (ir::BlockId b : node.blocks)
      for (ir::ValueId v : ir::block(g, b).returns) reads[ir::idx(v)].emplace_back(ir::kNoNode, 0);
  });
  for (ir::ValueId v : ir::block(g, ir::kTopBlock).returns) reads[ir::idx(v)].emplace_back(ir::kNoNode, 0);
  return reads;
}

// The constant float32 matrices that only GEMMs on the CPU provider read, as their weight
// (`all_reads` is reads_of(p.graph)).
std::vector<ir::ValueId> gemm_weights(const Program& p, const Reads& all_reads) {
  const ir::Graph& g = p.graph;
  std::vector<ir::ValueId> weights;
  for (const auto& [v, reads] : all_reads) {
    const ir::ValueId id{v};
    const ir::NodeId producer = ir::value(g, id).node;
    if (producer == ir::kNoNode || !ir::is_kind(g, producer, "prim::Constant")) continue;
    const RtValue& c = p.constant_values[v];
    if (c.kind != RtValue::Kind::tensor || c.t.dtype != DType::float32 || c.t.dim() != 2 || !c.t.buffer) continue;
    const bool only_gemms = std::all_of(reads.begin(), reads.end(), [&](const auto& r) {
      return r.first != ir::kNoNode && r.second == 1 && is_gemm(ir::kind_str(g, r.first)) && on_cpu(p, r.first);
    });
    if (only_gemms) weights.push_back(id);
  }
  return weights;
}

// The sizes of the input symbols at the traced shape, when the archive records every one
// the inputs use; what run() would bind from inputs of that shape.
std::optional<std::map<std::int64_t, std::int64_t>> traced_binding(const Program& p) {
  std::map<std::int64_t, std::int64_t> sizes;
  for (const InputInfo& in : p.inputs) {
    if (!in.spec.shape) continue;
    for (const ir::Dim& d : *in.spec.shape) {
      if (!d.symbolic) continue;
      const auto it = p.shapes.traced.find(d.value);
      if (it == p.shapes.traced.end()) return std::nullopt;
      sizes[d.value] = it->second;
    }
  }
  if (sizes.empty()) return std::nullopt;
  return sizes;
}

// A value's sizes under a binding of the input symbols, when its type says enough.
std::optional<std::vector<std::int64_t>> sizes_at(const Program& p, ir::ValueId v,
                                                  const std::map<std::int64_t, std::int64_t>& binding) {
  const ir::Type& type = ir::value(p.graph, v).type;
  if (type.kind != ir::TypeKind::tensor || !type.tensor.shape) return std::nullopt;
  std::vector<std::int64_t> sizes;
  for (const ir::Dim& d : *type.tensor.shape) {
    const std::optional<std::int64_t> size = dim_size(p, d, binding);
    if (!size || *size <= 0) return std::nullopt;
    sizes.push_back(*size);
  }
  return sizes;
}

// Rows of x (its dims but the last, multiplied) at the traced shape; BERT's 128 tokens when
// unknown: oneDNN chooses the packed layout by the weight's shape, not by the rows.
std::int64_t rows_hint(const Program& p, ir::ValueId weight,
                       const std::optional<std::map<std::int64_t, std::int64_t>>& binding) {
  constexpr std::int64_t kDefault = 128;
  if (!binding) return kDefault;
  for (const ir::Use& use : ir::uses(p.graph, weight)) {
    if (use.node == ir::kNoNode) continue;
    const auto x = sizes_at(p, ir::node(p.graph, use.node).inputs[0], *binding);
    if (!x || x->empty()) continue;
    std::int64_t rows = 1;
    for (std::size_t d = 0; d + 1 < x->size(); ++d) rows *= (*x)[d];
    return rows;
  }
  return kDefault;
}

// What every constant tensor but `weights` views, sorted by start.
std::vector<Range> other_constants(const Program& p, const std::vector<ir::ValueId>& weights) {
  std::set<std::uint32_t> skip;
  for (ir::ValueId w : weights) skip.insert(ir::idx(w));
  std::vector<Range> ranges;
  for (std::size_t v = 0; v < p.constant_values.size(); ++v) {
    const RtValue& c = p.constant_values[v];
    if (c.kind == RtValue::Kind::tensor && c.t.buffer && c.t.numel() > 0 && !skip.count(static_cast<std::uint32_t>(v)))
      ranges.push_back(byte_range(c.t));
  }
  std::sort(ranges.begin(), ranges.end());
  return ranges;
}

bool overlaps(const std::vector<Range>& sorted, Range r) {
  // The ranges may nest (views of one storage), so every one starting before r ends is a candidate.
  const auto end = std::lower_bound(sorted.begin(), sorted.end(), Range{r.second, nullptr});
  return std::any_of(sorted.begin(), end, [&](const Range& k) { return k.second > r.first; });
}

// Whether `r` lies in the archive file kiln mapped (a weight a pass made at load, or any
// caller memory, does not: handing its pages back would zero them).
bool in_mapped_file(const Program& p, Range r) {
  const std::byte* begin = p.mapped_file.data();
  return !p.mapped_file.empty() && r.first >= begin && r.second <= begin + p.mapped_file.size();
}

// Hands the whole pages inside [first, last) back to the OS. The mapping is private and
// read-only, so they are only dropped from this process: a later read faults them in again
// from the file. Returns the bytes handed back.
std::int64_t release_pages(Range bytes) {
  static const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  const std::uintptr_t a = (reinterpret_cast<std::uintptr_t>(bytes.first) + page - 1) / page * page;
  const std::uintptr_t b = reinterpret_cast<std::uintptr_t>(bytes.second) / page * page;
  // A failure only leaves the pages resident, which costs memory, not correctness.
  if (a >= b || madvise(reinterpret_cast<void*>(a), b - a, MADV_DONTNEED) != 0) return 0;
  return static_cast<std::int64_t>(b - a);
}

// Runs each distinct GEMM node once on zeros at the traced shape, so the primitives the
// first real run needs exist (oneDNN's cache is keyed by shapes, strides, thread count and
// epilogue, and by whether the weight is packed; not by values). Returns the nodes run.
std::int64_t warm_gemms(const Program& p, const std::map<std::int64_t, std::int64_t>& binding,
                        const std::set<std::uint32_t>& packed) {
  const ir::Graph& g = p.graph;
  const kernels::cpu::ThreadScope threads(p.threads);  // the count runs use by default
  Frame frame{p, p.constant_values};
  std::set<std::string> seen;
  std::int64_t warmed = 0;
  for (ir::NodeId n : ir::block(g, ir::kTopBlock).nodes) {
    const ir::Node& node = ir::node(g, n);
    const std::string_view kind = ir::kind_str(g, n);
    if (node.erased || !(is_gemm(kind) || is_gemm_group(kind)) || !on_cpu(p, n) || node.inputs.size() < 2) continue;
    const std::optional<std::vector<std::int64_t>> x = sizes_at(p, node.inputs[0], binding);
    const ir::Type& x_type = ir::value(g, node.inputs[0]).type;
    if (!x || x_type.tensor.dtype != DType::float32) continue;
    // Every other input is a constant (or a weight's copy made at load): the signature is
    // the kind, x's sizes, the others' sizes and strides or values, and packed or not.
    std::string signature(ir::kind_str(g, n));
    signature.append(kernels::shape_string(*x));
    bool constant = true;
    for (std::size_t i = 1; i < node.inputs.size() && constant; ++i) {
      const ir::NodeId from = ir::value(g, node.inputs[i]).node;
      constant = from != ir::kNoNode && (ir::is_kind(g, from, "prim::Constant") ||
                                         (ir::is_kind(g, from, "kiln::copy") && !p.kernels[ir::idx(from)]));
      const RtValue& c = p.constant_values[ir::idx(node.inputs[i])];
      if (c.kind == RtValue::Kind::tensor) {
        signature.append(kernels::shape_string(c.t.sizes)).append(kernels::shape_string(c.t.strides));
      } else {
        signature.append("|").append(std::to_string(static_cast<int>(c.kind))).append(c.s);
      }
    }
    signature.append(packed.count(ir::idx(node.inputs[1])) ? " packed" : " plain");
    if (!constant || !seen.insert(signature).second) continue;
    frame.values[ir::idx(node.inputs[0])] = RtValue::of_tensor(Tensor::empty(DType::float32, *x));
    try {
      p.kernels[ir::idx(n)](frame, n);
      ++warmed;
    } catch (const Error&) {
      // Zeros are valid inputs for a GEMM; a kernel that still refuses them is left to
      // report its error in a real run.
    }
    frame.values[ir::idx(node.inputs[0])] = RtValue::none();
    for (ir::ValueId o : node.outputs) frame.values[ir::idx(o)] = RtValue::none();
  }
  return warmed;
}

}  // namespace

void Preparation::ensure(const Program& p) {
  const std::lock_guard<std::mutex> lock(mutex_);
  if (done_) return;
  PrepareStats stats;
  const std::optional<std::map<std::int64_t, std::int64_t>> binding = traced_binding(p);

  // A weight sharing bytes with another constant (tied: the word embeddings that are also
  // the masked-LM decoder's weight) stays as it is: the other reader needs the original, so
  // a packed copy would hold those bytes twice.
  const Reads reads = reads_of(p.graph);
  std::vector<ir::ValueId> weights = gemm_weights(p, reads);
  const std::vector<Range> kept = other_constants(p, weights);
  std::erase_if(weights, [&](ir::ValueId w) { return overlaps(kept, byte_range(p.constant_values[ir::idx(w)].t)); });

  // Each original goes as soon as its copy exists, so the two take memory together for one
  // weight at a time; the pages hold no other constant's bytes (none overlaps).
  std::set<std::uint32_t> packed_values;
  std::vector<std::shared_ptr<const kernels::onednn::PackedWeight>> packed;
  const auto note_held_twice = [&] {
    stats.most_held_twice = std::max(stats.most_held_twice, stats.packed_bytes - stats.released_bytes);
  };
  // One thread: packing is bound by the first touch of fresh memory, which a second thread
  // did not speed up on BERT-base (2 cores: 165 ms with one, 190 to 400 with two).
  const kernels::cpu::ThreadScope threads(1);
  for (ir::ValueId w : weights) {
    const Tensor& original = p.constant_values[ir::idx(w)].t;
    auto copy = kernels::onednn::pack_weight(original, rows_hint(p, w, binding));
    if (!copy) continue;
    packed_values.insert(ir::idx(w));
    stats.packed_bytes += static_cast<std::int64_t>(kernels::onednn::packed_bytes(*copy));
    note_held_twice();
    packed.push_back(std::move(copy));
    if (in_mapped_file(p, byte_range(original))) stats.released_bytes += release_pages(byte_range(original));
  }
  // Linear groups (Q, K and V) as one copy of their weights side by side, when every part
  // is a constant that only such groups read (ALBERT's layers all read one group's).
  struct Group {
    std::vector<const Tensor*> parts, biases;
    std::vector<ir::ValueId> values;
  };
  const auto group_read_only = [&](ir::ValueId v) {
    const auto it = reads.find(ir::idx(v));
    return it != reads.end() && std::all_of(it->second.begin(), it->second.end(), [&](const auto& r) {
             return r.first != ir::kNoNode && r.second % 2 == 1 && is_gemm_group(ir::kind_str(p.graph, r.first)) &&
                    on_cpu(p, r.first) && ir::node(p.graph, r.first).owner == ir::kTopBlock;  // the groups below
           });
  };
  std::vector<Group> groups;
  for (ir::NodeId n : ir::block(p.graph, ir::kTopBlock).nodes) {
    const ir::Node& node = ir::node(p.graph, n);
    if (node.erased || !is_gemm_group(ir::kind_str(p.graph, n)) || !on_cpu(p, n)) continue;
    Group group;
    for (std::size_t i = 1; i + 1 < node.inputs.size(); i += 2) {
      const RtValue &w = p.constant_values[ir::idx(node.inputs[i])], &b = p.constant_values[ir::idx(node.inputs[i + 1])];
      const bool constant = w.kind == RtValue::Kind::tensor && w.t.buffer && group_read_only(node.inputs[i]) &&
                            (b.kind == RtValue::Kind::none || (b.kind == RtValue::Kind::tensor && b.t.buffer));
      if (!constant) {
        group.parts.clear();
        break;
      }
      group.parts.push_back(&w.t);
      group.biases.push_back(b.kind == RtValue::Kind::tensor ? &b.t : nullptr);
      group.values.push_back(node.inputs[i]);
    }
    if (!group.parts.empty()) groups.push_back(std::move(group));
  }
  // A part's original goes as soon as every group reading it has its copy (ALBERT's layers
  // all read one group), so originals and copies take memory together for about one group
  // at a time: releasing them all at the end made BERT-base's peak RSS 72 MiB higher. Bytes
  // that another constant views stay, other than packed weights and group parts: a part
  // left unpacked because its group was refused is not released, though a part of another
  // group that shares its bytes may be (its pages are then read from the file again).
  std::map<std::uint32_t, int> unpacked_readers;
  std::vector<ir::ValueId> copied;
  for (const std::uint32_t v : packed_values) copied.push_back(ir::ValueId{v});
  for (const Group& group : groups) {
    for (ir::ValueId v : group.values) {
      if (unpacked_readers[ir::idx(v)]++ == 0) copied.push_back(v);
    }
  }
  const std::vector<Range> kept_beside_groups = other_constants(p, copied);
  std::set<std::uint32_t> refused;  // parts of a group that was not packed
  std::set<const kernels::onednn::PackedWeight*> counted;
  for (const Group& group : groups) {
    auto copy = kernels::onednn::pack_weights(group.parts, group.biases, rows_hint(p, group.values[0], binding));
    if (copy && counted.insert(copy.get()).second) {  // else the same group in another layer: shared
      stats.packed_bytes += static_cast<std::int64_t>(kernels::onednn::packed_bytes(*copy));
      note_held_twice();
      packed.push_back(copy);
    }
    for (ir::ValueId v : group.values) {
      if (!copy) refused.insert(ir::idx(v));
      if (--unpacked_readers[ir::idx(v)] > 0 || refused.count(ir::idx(v))) continue;
      packed_values.insert(ir::idx(v));
      const Range bytes = byte_range(p.constant_values[ir::idx(v)].t);
      if (in_mapped_file(p, bytes) && !overlaps(kept_beside_groups, bytes)) stats.released_bytes += release_pages(bytes);
    }
  }
  stats.packed_weights = static_cast<std::int64_t>(packed.size());

  if (binding) {
    const std::shared_ptr<const MemoryPlan> plan = p.arenas->plan(p, *binding);
    p.arenas->give_back(p.arenas->take(plan->arena_bytes), plan->arena_bytes);
    stats.planned = true;
    stats.warmed_nodes = warm_gemms(p, *binding, packed_values);
  }
  packed_ = std::move(packed);
  stats_ = stats;
  done_ = true;
}

bool Preparation::done() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  return done_;
}

PrepareStats Preparation::stats() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

PrepareStats prepare(const Program& program) {
  program.preparation->ensure(program);
  return program.preparation->stats();
}

}  // namespace kiln::exec
