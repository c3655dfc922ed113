#include "kernels/cpu/onednn_matmul.hpp"

#include "kiln_config.h"

#if KILN_HAVE_ONEDNN
#include <dlfcn.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kernels/cpu/gemm_panels.hpp"
#include "kiln/error.hpp"
#endif

namespace kiln::kernels::onednn {

#if KILN_HAVE_ONEDNN

// Memory for one packed copy: a mapping of its own, its start aligned to 2 MiB and the
// whole 2 MiB stretches in it advised for transparent huge pages. The copy is written once
// and then streamed by every GEMM, so huge pages save a page fault per 4 KiB when packing
// and TLB misses in every run (BERT-base on a 2-core VM: preparing took 250 ms with 4 KiB
// pages and 165 with huge ones, and a run at 16 tokens 22.5 ms and 20.5). Where the kernel
// gives no huge pages this is ordinary memory. The alignment costs address space only:
// pages never touched take no memory.
class PackedMemory {
 public:
  static constexpr std::size_t kHugePage = std::size_t{2} << 20;

  explicit PackedMemory(std::size_t bytes) {
    static const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    const std::size_t used = (bytes + page - 1) / page * page;
    length_ = used + kHugePage;
    mapping_ = mmap(nullptr, length_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapping_ == MAP_FAILED) throw Error(ErrorKind::internal, "", "", "out of memory packing a weight");
    const auto start = reinterpret_cast<std::uintptr_t>(mapping_);
    data_ = reinterpret_cast<void*>((start + kHugePage - 1) / kHugePage * kHugePage);
    const std::size_t huge = used / kHugePage * kHugePage;
    if (huge > 0) madvise(data_, huge, MADV_HUGEPAGE);  // advice: refused, it is 4 KiB pages
  }
  ~PackedMemory() { munmap(mapping_, length_); }
  PackedMemory(const PackedMemory&) = delete;
  PackedMemory& operator=(const PackedMemory&) = delete;

  void* data() const { return data_; }

 private:
  void* mapping_ = nullptr;
  std::size_t length_ = 0;
  void* data_ = nullptr;
};

// The packed copy and the layout oneDNN gave it; registered in `registry()` under `key`.
// A concatenation of weights (pack_weights) also keeps its parts' biases side by side.
class PackedWeight {
 public:
  // The weights as the registry knows them: for each, the address of element 0, sizes and
  // strides (and for a concatenation, each bias's address and stride, 0 for none).
  using Key = std::vector<std::int64_t>;

  PackedWeight(Key key, const dnnl::memory::desc& desc)
      : key_(std::move(key)), desc_(desc), memory_(desc.get_size()), panels_(panels_of(desc, memory_.data())) {}
  ~PackedWeight();
  PackedWeight(const PackedWeight&) = delete;
  PackedWeight& operator=(const PackedWeight&) = delete;

  const dnnl::memory::desc& desc() const { return desc_; }
  void* data() const { return memory_.data(); }
  std::size_t bytes() const { return desc_.get_size(); }
  std::vector<float> bias;  // a concatenation's biases, empty when no part has one
  // The copy as 64-column panels, when oneDNN chose that layout (data null otherwise).
  const cpu::PanelWeight& panels() const { return panels_; }

 private:
  // oneDNN's AVX-512 blocking for fp32 weights [k, n], BA16a64b: panels of 64 columns,
  // each [k padded to 16][64]. Read from the descriptor rather than assumed, so that
  // another oneDNN's other choice only turns the panel GEMM off.
  static cpu::PanelWeight panels_of(const dnnl::memory::desc& desc, void* data) {
#if DNNL_VERSION_MAJOR < 3
    const dnnl_memory_desc_t& d = desc.data;
    if (d.ndims != 2 || d.data_type != dnnl_f32 || d.format_kind != dnnl_blocked || d.offset0 != 0) return {};
    const dnnl_blocking_desc_t& b = d.format_desc.blocking;
    if (b.inner_nblks != 2 || b.inner_blks[0] != 16 || b.inner_idxs[0] != 0 || b.inner_blks[1] != cpu::kPanelWidth ||
        b.inner_idxs[1] != 1)
      return {};
    const std::int64_t k = d.dims[0], n = d.dims[1];
    if (b.strides[0] != 16 * cpu::kPanelWidth || b.strides[1] < d.padded_dims[0] * cpu::kPanelWidth) return {};
    return {static_cast<const float*>(data), k, n, b.strides[1]};
#else
    (void)desc, (void)data;
    return {};
#endif
  }

  Key key_;
  dnnl::memory::desc desc_;
  PackedMemory memory_;
  cpu::PanelWeight panels_;
};

namespace {

using Dims = std::vector<std::int64_t>;

// One matmul operand as oneDNN sees it: dims and strides in elements, and the address of
// element 0 (the view's offset already applied, so memory descriptors need none).
struct Operand {
  Dims dims, strides;
  const std::byte* data = nullptr;
};

PackedWeight::Key weight_key(const Tensor& w) {
  return {static_cast<std::int64_t>(reinterpret_cast<std::uintptr_t>(w.bytes())), w.sizes[0], w.sizes[1],
          w.strides[0], w.strides[1]};
}

// A concatenation's key: its weights' keys, then each bias's address and stride.
PackedWeight::Key group_key(const std::vector<const Tensor*>& weights, const std::vector<const Tensor*>& biases) {
  PackedWeight::Key key;
  for (const Tensor* w : weights) {
    const PackedWeight::Key part = weight_key(*w);
    key.insert(key.end(), part.begin(), part.end());
  }
  for (const Tensor* b : biases) {
    key.push_back(b ? static_cast<std::int64_t>(reinterpret_cast<std::uintptr_t>(b->bytes())) : 0);
    key.push_back(b ? b->strides[0] : 0);
  }
  return key;
}

// Every packed weight alive, so that linear() finds one by its weight alone: the kernels
// that call it know nothing of preparation. Entries are weak: the owners (the programs that
// packed them) decide how long a copy lives.
class Registry {
 public:
  std::shared_ptr<const PackedWeight> find(const PackedWeight::Key& key) {
    const std::lock_guard<std::mutex> lock(mutex_);
    const auto it = entries_.find(key);
    return it == entries_.end() ? nullptr : it->second.lock();
  }

  // Keeps a live entry another thread registered meanwhile; both copies are the same.
  std::shared_ptr<const PackedWeight> insert(const PackedWeight::Key& key, std::shared_ptr<const PackedWeight> packed) {
    const std::lock_guard<std::mutex> lock(mutex_);
    std::weak_ptr<const PackedWeight>& entry = entries_[key];
    if (std::shared_ptr<const PackedWeight> live = entry.lock()) return live;
    entry = packed;
    return packed;
  }

  // An entry replaced by a newer copy of the same weight stays: only an expired one goes.
  void erase_expired(const PackedWeight::Key& key) {
    const std::lock_guard<std::mutex> lock(mutex_);
    const auto it = entries_.find(key);
    if (it != entries_.end() && it->second.expired()) entries_.erase(it);
  }

 private:
  std::mutex mutex_;
  std::map<PackedWeight::Key, std::weak_ptr<const PackedWeight>> entries_;
};

Registry& registry() {
  static Registry instance;
  return instance;
}

// A problem in oneDNN's terms: src [..., M, K] x weights [..., K, N] (+ bias) -> dst
// [..., M, N], all of one rank; dst is a fresh contiguous tensor shaped `out_sizes` (which
// may differ from `dst` in rank only: linear's leading dims are folded into M). `packed`,
// when set, is a copy of the weights that the primitive reads instead if it takes its layout.
struct Problem {
  Operand src, wei, bias;
  bool with_bias = false;
  Dims dst;
  Dims out_sizes;
  Epilogue epilogue = Epilogue::none;
  std::shared_ptr<const PackedWeight> packed;
};

// A float32 tensor with data, no zero-size dims, no negative strides, whose every element
// lies inside its buffer (a view that reaches past its buffer is refused here rather than
// handed to oneDNN).
bool readable(const Tensor& t) {
  if (t.dtype != DType::float32 || !t.buffer || !t.buffer->data) return false;
  if (t.sizes.size() != t.strides.size() || t.offset < 0) return false;
  std::int64_t reach = 0;  // the largest element offset from element 0
  for (std::size_t d = 0; d < t.sizes.size(); ++d) {
    if (t.sizes[d] <= 0 || t.strides[d] < 0) return false;
    std::int64_t step = 0;
    if (__builtin_mul_overflow(t.sizes[d] - 1, t.strides[d], &step) || __builtin_add_overflow(reach, step, &reach))
      return false;
  }
  std::int64_t last = 0;
  if (__builtin_add_overflow(t.offset, reach, &last)) return false;
  return static_cast<std::uint64_t>(last) < t.buffer->size / sizeof(float);
}

// The element count of `sizes` when it fits int64 (and so dnnl_dim_t) in elements and in bytes.
bool fits(const Dims& sizes) {
  std::int64_t n = sizeof(float);
  for (const std::int64_t s : sizes) {
    if (s <= 0 || __builtin_mul_overflow(n, s, &n)) return false;
  }
  return true;
}

Operand operand_of(const Tensor& t, std::size_t rank) {
  Operand o;
  o.dims.assign(rank - t.dim(), 1);  // torch.matmul's implicit leading 1s
  o.strides.assign(rank - t.dim(), 0);
  o.dims.insert(o.dims.end(), t.sizes.begin(), t.sizes.end());
  o.strides.insert(o.strides.end(), t.strides.begin(), t.strides.end());
  o.data = t.bytes();
  return o;
}

// A size-1 dim's stride is never applied, so it is free; oneDNN's GEMM-based matmul refuses
// any zero stride, and its faster paths recognise layouts by exact strides. Keep a view's
// own stride when it is positive (PyTorch-like views give the one a dense layout has) and
// otherwise (padded or expanded dims) give the dim the outermost stride.
void settle_unit_strides(Operand& o) {
  std::int64_t extent = 1;
  for (std::size_t d = 0; d < o.dims.size(); ++d) {
    if (o.dims[d] > 1) extent = std::max(extent, o.dims[d] * o.strides[d]);
  }
  for (std::size_t d = 0; d < o.dims.size(); ++d) {
    if (o.dims[d] == 1 && o.strides[d] <= 0) o.strides[d] = extent;
  }
}

void settle_unit_strides(Problem& p) {
  settle_unit_strides(p.src);
  settle_unit_strides(p.wei);
  if (p.with_bias) settle_unit_strides(p.bias);
}

// --- primitives, built once per signature ---

const dnnl::engine& cpu_engine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// oneDNN fixes a primitive's thread count when it is created (the OpenMP runtime's
// omp_get_max_threads() then) and runs with that many whatever the caller's setting is at
// execution, so the count is part of the cache key. libgomp is loaded with libdnnl but kiln
// does not link it itself, hence the lookup by name.
int creation_threads() {
  using MaxThreads = int (*)();
  static const MaxThreads max_threads = []() -> MaxThreads {
    if (dnnl_version()->cpu_runtime != DNNL_RUNTIME_OMP) return nullptr;
    return reinterpret_cast<MaxThreads>(dlsym(RTLD_DEFAULT, "omp_get_max_threads"));
  }();
  return max_threads ? max_threads() : 0;
}

using Key = std::vector<std::int64_t>;

Key key_of(const Problem& p) {
  Key key;
  key.reserve(8 * p.dst.size() + 4);
  key.push_back(creation_threads());
  key.push_back(static_cast<std::int64_t>(p.dst.size()));
  const auto add = [&key](const Dims& v) { key.insert(key.end(), v.begin(), v.end()); };
  add(p.src.dims), add(p.src.strides), add(p.wei.dims), add(p.wei.strides), add(p.dst);
  key.push_back(p.with_bias);
  if (p.with_bias) add(p.bias.dims), add(p.bias.strides);
  key.push_back(static_cast<std::int64_t>(p.epilogue));
  key.push_back(p.packed != nullptr);
  return key;
}

struct Compiled {
  dnnl::matmul primitive;  // empty: oneDNN has no implementation for the problem
  dnnl::memory::desc src, wei, bias, dst, scratchpad;
  std::string implementation;
  bool reads_packed = false;  // wei is the packed copy's layout, not the operand's strides
};

// Process-wide, bounded, least recently used out first. Entries are shared_ptrs so a
// primitive evicted while another thread runs it stays alive until that run ends.
class PrimitiveCache {
 public:
  static constexpr std::size_t kCapacity = 256;

  std::shared_ptr<const Compiled> find(const Key& key) {
    const std::lock_guard<std::mutex> lock(mutex_);
    const auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    order_.splice(order_.begin(), order_, it->second);
    return it->second->second;
  }

  // Keeps an entry another thread inserted for the same key meanwhile; either is right.
  std::shared_ptr<const Compiled> insert(const Key& key, std::shared_ptr<const Compiled> compiled) {
    const std::lock_guard<std::mutex> lock(mutex_);
    if (const auto it = index_.find(key); it != index_.end()) return it->second->second;
    order_.emplace_front(key, std::move(compiled));
    index_.emplace(key, order_.begin());
    if (order_.size() > kCapacity) {
      index_.erase(order_.back().first);
      order_.pop_back();
    }
    return order_.front().second;
  }

 private:
  std::mutex mutex_;
  std::list<std::pair<Key, std::shared_ptr<const Compiled>>> order_;  // most recent first
  std::map<Key, std::list<std::pair<Key, std::shared_ptr<const Compiled>>>::iterator> index_;
};

PrimitiveCache& cache() {
  static PrimitiveCache instance;
  return instance;
}

dnnl::memory::desc desc_of(const Dims& dims, const Dims& strides) {
  return dnnl::memory::desc(dims, dnnl::memory::data_type::f32, strides);
}

dnnl::algorithm algorithm_of(Epilogue e) {
  return e == Epilogue::gelu_tanh ? dnnl::algorithm::eltwise_gelu_tanh : dnnl::algorithm::eltwise_gelu_erf;
}

dnnl::primitive_attr attributes(Epilogue epilogue) {
  dnnl::primitive_attr attr;
  // Strict is 2.6's default, but ONEDNN_DEFAULT_FPMATH_MODE=BF16 in the environment would
  // change the default; fixing it here keeps float32 inputs, products and sums float32.
  attr.set_fpmath_mode(dnnl::fpmath_mode::strict);
  // The caller's scratchpad, allocated per execution: a library-managed one is shared
  // between executions, which is safe for concurrent calls only in some oneDNN builds.
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (epilogue != Epilogue::none) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.0f, algorithm_of(epilogue), 0.0f, 0.0f);
    attr.set_post_ops(ops);
  }
  return attr;
}

// The primitive for `wei` as the weights' layout (null when oneDNN has none).
dnnl::matmul::primitive_desc primitive_desc(const Compiled& c, const dnnl::memory::desc& wei, const Problem& p) {
  const dnnl::matmul::desc desc =
      p.with_bias ? dnnl::matmul::desc(c.src, wei, c.bias, c.dst) : dnnl::matmul::desc(c.src, wei, c.dst);
  return dnnl::matmul::primitive_desc(desc, attributes(p.epilogue), cpu_engine(), /*allow_empty=*/true);
}

// Null only after a transient failure (out of memory) that must not be remembered;
// otherwise the entry, with an empty primitive when oneDNN refuses the problem.
std::shared_ptr<const Compiled> compile(const Problem& p) {
  auto c = std::make_shared<Compiled>();
  try {
    c->src = desc_of(p.src.dims, p.src.strides);
    c->dst = desc_of(p.dst, contiguous_strides(p.dst));
    if (p.with_bias) c->bias = desc_of(p.bias.dims, p.bias.strides);
    dnnl::matmul::primitive_desc pd;
    if (p.packed) {
      // The packed copy serves this shape only if the GEMM oneDNN picks for it, free to
      // choose the weights' layout, chooses the copy's.
      const dnnl::memory::desc any(p.wei.dims, dnnl::memory::data_type::f32, dnnl::memory::format_tag::any);
      pd = primitive_desc(*c, any, p);
      c->reads_packed = pd && pd.weights_desc() == p.packed->desc();
      if (c->reads_packed) c->wei = p.packed->desc();
    }
    if (!c->reads_packed) {
      c->wei = desc_of(p.wei.dims, p.wei.strides);
      pd = primitive_desc(*c, c->wei, p);
    }
    if (!pd) return c;
    c->scratchpad = pd.scratchpad_desc();
    c->implementation = pd.impl_info_str();
    c->primitive = dnnl::matmul(pd);
  } catch (const dnnl::error& e) {
    // invalid_arguments and unimplemented are properties of the problem, worth remembering.
    if (e.status != dnnl_invalid_arguments && e.status != dnnl_unimplemented) return nullptr;
    c->primitive = dnnl::matmul();
    c->implementation.clear();
    c->reads_packed = false;
  }
  return c;
}

std::shared_ptr<const Compiled> compiled_for(const Problem& p) {
  const Key key = key_of(p);
  if (auto hit = cache().find(key)) return hit;
  auto made = compile(p);  // outside the lock: creation takes a while, other shapes need not wait
  if (!made) return nullptr;
  return cache().insert(key, std::move(made));
}

void execute(const Compiled& c, const Problem& p, float* dst) {
  const dnnl::engine& engine = cpu_engine();
  const auto handle = [](const std::byte* data) { return const_cast<std::byte*>(data); };  // only read
  try {
    std::unordered_map<int, dnnl::memory> args;
    args.emplace(DNNL_ARG_SRC, dnnl::memory(c.src, engine, handle(p.src.data)));
    void* wei = c.reads_packed ? p.packed->data() : handle(p.wei.data);
    args.emplace(DNNL_ARG_WEIGHTS, dnnl::memory(c.wei, engine, wei));
    if (p.with_bias) args.emplace(DNNL_ARG_BIAS, dnnl::memory(c.bias, engine, handle(p.bias.data)));
    args.emplace(DNNL_ARG_DST, dnnl::memory(c.dst, engine, dst));
    if (c.scratchpad.get_size() > 0) args.emplace(DNNL_ARG_SCRATCHPAD, dnnl::memory(c.scratchpad, engine));
    dnnl::stream stream(engine);  // cheap; one per call keeps threads apart
    c.primitive.execute(stream, args);
    stream.wait();
  } catch (const dnnl::error& e) {
    throw Error(ErrorKind::internal, "", "", std::string("oneDNN matmul failed: ") + e.what());
  }
}

// Whether kiln's panel GEMM (kernels/cpu/gemm_panels.hpp) takes p: a linear whose weight
// has a packed copy in panels, with few enough rows that streaming the weight is the cost.
bool panels_take(const Problem& p) {
  return p.packed && p.packed->panels().data && p.dst.size() == 2 && p.src.dims.size() == 2 &&
         cpu::panel_gemm_suits(p.dst[0], cpu::active_isa());
}

Tensor run_panels(const Problem& p) {
  Tensor result = Tensor::uninitialized(DType::float32, p.out_sizes);
  const float* bias = p.with_bias ? reinterpret_cast<const float*>(p.bias.data) : nullptr;
  const std::int64_t bias_stride = p.with_bias && p.bias.dims[1] > 1 ? p.bias.strides[1] : 0;
  cpu::panel_linear(cpu::active_isa(), reinterpret_cast<const float*>(p.src.data), p.src.strides[0], p.src.strides[1],
                    p.dst[0], p.packed->panels(), bias, bias_stride, result.data<float>(), p.dst[1], p.epilogue);
  return result;
}

bool run(const Problem& p, Tensor& out) {
  if (panels_take(p)) {
    out = run_panels(p);
    return true;
  }
  const std::shared_ptr<const Compiled> c = compiled_for(p);
  if (!c || !c->primitive) return false;
  Tensor result = Tensor::uninitialized(DType::float32, p.out_sizes);
  execute(*c, p, result.data<float>());
  out = std::move(result);
  return true;
}

// x [..., k] as the GEMM's src [m, k] and a dst [m, n]: x's leading dims must step
// through memory as one dim does.
std::optional<Problem> plan_rows(const Tensor& x, std::int64_t n) {
  if (x.dim() < 1 || !readable(x)) return std::nullopt;
  const std::int64_t k = x.sizes.back();
  Problem p;
  p.out_sizes = x.sizes;
  p.out_sizes.back() = n;
  if (!fits(p.out_sizes)) return std::nullopt;  // so the product of x's leading dims fits too
  std::int64_t m = 1, m_stride = 0, expected = -1;
  for (std::size_t d = x.dim() - 1; d-- > 0;) {
    if (x.sizes[d] == 1) continue;
    if (expected >= 0 && x.strides[d] != expected) return std::nullopt;
    if (expected < 0) m_stride = x.strides[d];
    m *= x.sizes[d];
    expected = x.strides[d] * x.sizes[d];
  }
  p.src = {{m, k}, {m_stride, x.strides.back()}, x.bytes()};
  p.dst = {m, n};
  return p;
}

std::optional<Problem> plan_linear(const Tensor& x, const Tensor& w, const Tensor* b, Epilogue epilogue) {
  if (x.dim() < 1 || w.dim() != 2 || !readable(w) || (b && !readable(*b))) return std::nullopt;
  const std::int64_t k = x.sizes.back(), n = w.sizes[0];
  if (w.sizes[1] != k) return std::nullopt;
  if (b && (b->dim() != 1 || (b->sizes[0] != n && b->sizes[0] != 1))) return std::nullopt;
  std::optional<Problem> p = plan_rows(x, n);
  if (!p) return std::nullopt;
  // w [n, k] read as the weights [k, n] by swapping strides: no transposed copy.
  p->wei = {{k, n}, {w.strides[1], w.strides[0]}, w.bytes()};
  if (b) {
    p->with_bias = true;
    p->bias = {{1, b->sizes[0]}, {0, b->strides[0]}, b->bytes()};
  }
  p->epilogue = epilogue;
  p->packed = registry().find(weight_key(w));
  settle_unit_strides(*p);
  return p;
}

std::optional<Problem> plan_matmul(const Tensor& a, const Tensor& b) {
  if (a.dim() < 2 || b.dim() < 2 || !readable(a) || !readable(b)) return std::nullopt;
  const std::size_t rank = std::max(a.dim(), b.dim());
  if (rank > DNNL_MAX_NDIMS) return std::nullopt;
  Problem p;
  p.src = operand_of(a, rank);
  p.wei = operand_of(b, rank);
  Dims& ad = p.src.dims;
  Dims& bd = p.wei.dims;
  if (ad[rank - 1] != bd[rank - 2]) return std::nullopt;
  p.dst.resize(rank);
  for (std::size_t d = 0; d + 2 < rank; ++d) {
    if (ad[d] != bd[d] && ad[d] != 1 && bd[d] != 1) return std::nullopt;
    p.dst[d] = std::max(ad[d], bd[d]);
  }
  p.dst[rank - 2] = ad[rank - 2];
  p.dst[rank - 1] = bd[rank - 1];
  if (!fits(p.dst)) return std::nullopt;
  p.out_sizes = p.dst;
  // An expanded batch dim (stride 0) is the same as a size-1 dim broadcast by oneDNN, which
  // its fast paths take and a zero stride they do not; dst's dim must stay the larger of the
  // two operands', so at most one side of a dim becomes 1.
  for (std::size_t d = 0; d + 2 < rank; ++d) {
    const bool a_expanded = ad[d] > 1 && p.src.strides[d] == 0;
    const bool b_expanded = bd[d] > 1 && p.wei.strides[d] == 0;
    if (a_expanded && bd[d] == p.dst[d]) {
      ad[d] = 1;
    } else if (b_expanded && ad[d] == p.dst[d]) {
      bd[d] = 1;
    }
  }
  settle_unit_strides(p);
  return p;
}

}  // namespace

PackedWeight::~PackedWeight() { registry().erase_expired(key_); }

bool available() { return true; }

bool linear(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& out, Epilogue epilogue) {
  std::optional<Problem> p = plan_linear(x, w, b, epilogue);
  return p && run(*p, out);
}

namespace {

// The layout oneDNN's matmul chooses for weights [k, n] in GEMMs of `rows` rows; empty when
// it has none.
dnnl::memory::desc preferred_weights(std::int64_t rows, std::int64_t k, std::int64_t n) {
  const dnnl::memory::desc src = desc_of({rows, k}, {k, 1}), dst = desc_of({rows, n}, {n, 1});
  const dnnl::memory::desc any({k, n}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::any);
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src, any, dst), attributes(Epilogue::none), cpu_engine(),
                                        /*allow_empty=*/true);
  return pd ? pd.weights_desc() : dnnl::memory::desc();
}

// w [n, k] as the weights [k, n], as plan_linear reads it; a size-1 dim's stride as it settles it.
Operand weights_operand(const Tensor& w) {
  Operand plain{{w.sizes[1], w.sizes[0]}, {w.strides[1], w.strides[0]}, w.bytes()};
  settle_unit_strides(plain);
  return plain;
}

void reorder_into(const Operand& from, const dnnl::memory::desc& to_desc, void* to) {
  dnnl::memory source(desc_of(from.dims, from.strides), cpu_engine(), const_cast<std::byte*>(from.data));  // only read
  dnnl::memory target(to_desc, cpu_engine(), to);
  dnnl::stream stream(cpu_engine());
  dnnl::reorder(source, target).execute(stream, source, target);
  stream.wait();
}

}  // namespace

std::shared_ptr<const PackedWeight> pack_weight(const Tensor& w, std::int64_t rows) {
  if (w.dim() != 2 || !readable(w) || rows <= 0 || !fits({rows, w.sizes[0]})) return nullptr;
  const PackedWeight::Key key = weight_key(w);
  if (std::shared_ptr<const PackedWeight> known = registry().find(key)) return known;
  const Operand plain = weights_operand(w);
  try {
    const dnnl::memory::desc packed_desc = preferred_weights(rows, w.sizes[1], w.sizes[0]);
    if (!packed_desc || packed_desc == desc_of(plain.dims, plain.strides)) return nullptr;
    auto packed = std::make_shared<PackedWeight>(key, packed_desc);
    reorder_into(plain, packed->desc(), packed->data());
    return registry().insert(key, std::move(packed));
  } catch (const dnnl::error& e) {
    if (e.status == dnnl_out_of_memory) throw Error(ErrorKind::internal, "", "", "out of memory packing a weight");
    return nullptr;  // oneDNN cannot reorder into its own layout: use the weight in place
  }
}

std::shared_ptr<const PackedWeight> pack_weights(const std::vector<const Tensor*>& weights,
                                                 const std::vector<const Tensor*>& biases, std::int64_t rows) {
  if (weights.empty() || biases.size() != weights.size() || rows <= 0) return nullptr;
  const std::int64_t k = weights[0]->dim() == 2 ? weights[0]->sizes[1] : -1;
  std::int64_t n = 0;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    const Tensor& w = *weights[i];
    const Tensor* b = biases[i];
    if (w.dim() != 2 || !readable(w) || w.sizes[1] != k || __builtin_add_overflow(n, w.sizes[0], &n)) return nullptr;
    if (b && (b->dim() != 1 || !readable(*b) || b->sizes[0] != w.sizes[0])) return nullptr;
  }
  if (!fits({rows, n}) || !fits({k, n})) return nullptr;
  const PackedWeight::Key key = group_key(weights, biases);
  if (std::shared_ptr<const PackedWeight> known = registry().find(key)) return known;
  try {
    const dnnl::memory::desc packed_desc = preferred_weights(rows, k, n);
    if (!packed_desc) return nullptr;
    auto packed = std::make_shared<PackedWeight>(key, packed_desc);
    // Each part straight into its columns of the packed whole: a sub-block of oneDNN's
    // blocked layout, where the parts' columns start on block boundaries (BERT's 768 do).
    // Otherwise the parts are put together plainly first, and that is packed.
    std::vector<dnnl::memory::desc> sub;
    std::int64_t column = 0;
    for (const Tensor* w : weights) {
      sub.push_back(packed_desc.submemory_desc({k, w->sizes[0]}, {0, column}, /*allow_empty=*/true));
      if (!sub.back()) break;
      column += w->sizes[0];
    }
    if (sub.size() == weights.size() && sub.back()) {
      for (std::size_t i = 0; i < weights.size(); ++i) reorder_into(weights_operand(*weights[i]), sub[i], packed->data());
    } else {
      std::vector<float> whole(static_cast<std::size_t>(n * k));
      std::int64_t row = 0;
      for (const Tensor* w : weights) {
        for (std::int64_t r = 0; r < w->sizes[0]; ++r, ++row) {
          for (std::int64_t c = 0; c < k; ++c)
            whole[static_cast<std::size_t>(row * k + c)] = w->data<const float>()[r * w->strides[0] + c * w->strides[1]];
        }
      }
      reorder_into(Operand{{k, n}, {1, k}, reinterpret_cast<const std::byte*>(whole.data())}, packed->desc(),
                   packed->data());
    }
    if (std::any_of(biases.begin(), biases.end(), [](const Tensor* b) { return b != nullptr; })) {
      packed->bias.assign(static_cast<std::size_t>(n), 0.0f);
      std::size_t at = 0;
      for (std::size_t i = 0; i < weights.size(); ++i) {
        const Tensor* b = biases[i];
        for (std::int64_t j = 0; b && j < b->sizes[0]; ++j) packed->bias[at + j] = b->data<const float>()[j * b->strides[0]];
        at += static_cast<std::size_t>(weights[i]->sizes[0]);
      }
    }
    return registry().insert(key, std::move(packed));
  } catch (const dnnl::error& e) {
    if (e.status == dnnl_out_of_memory) throw Error(ErrorKind::internal, "", "", "out of memory packing a weight");
    return nullptr;
  }
}

bool linear_concat(const Tensor& x, const std::vector<const Tensor*>& weights, const std::vector<const Tensor*>& biases,
                   Tensor& out) {
  if (weights.empty() || biases.size() != weights.size()) return false;
  const std::shared_ptr<const PackedWeight> packed = registry().find(group_key(weights, biases));
  if (!packed) return false;
  const std::int64_t k = weights[0]->sizes[1];
  std::int64_t n = 0;
  for (const Tensor* w : weights) n += w->sizes[0];
  // As one linear with the whole concatenation's shape; its plain weights do not exist, so
  // only a GEMM that reads the packed copy will do (the plain dims and strides below only
  // name the problem in the primitive cache).
  if (x.dim() < 1 || x.sizes.back() != k) return false;
  std::optional<Problem> p = plan_rows(x, n);
  if (!p) return false;
  p->wei = {{k, n}, {1, k}, nullptr};
  if (!packed->bias.empty()) {
    p->with_bias = true;
    p->bias = {{1, n}, {0, 1}, reinterpret_cast<const std::byte*>(packed->bias.data())};
  }
  settle_unit_strides(*p);
  p->packed = packed;
  if (panels_take(*p)) {
    out = run_panels(*p);
    return true;
  }
  const std::shared_ptr<const Compiled> c = compiled_for(*p);
  if (!c || !c->primitive || !c->reads_packed) return false;
  Tensor result = Tensor::uninitialized(DType::float32, p->out_sizes);
  execute(*c, *p, result.data<float>());
  out = std::move(result);
  return true;
}

std::size_t packed_bytes(const PackedWeight& packed) { return packed.bytes(); }

LinearInfo describe_linear(const Tensor& x, const Tensor& w, const Tensor* b, Epilogue epilogue) {
  std::optional<Problem> p = plan_linear(x, w, b, epilogue);
  if (!p) return {};
  if (panels_take(*p)) return {"kiln:panels", true};
  const std::shared_ptr<const Compiled> c = compiled_for(*p);
  if (!c || !c->primitive) return {};
  return {c->implementation, c->reads_packed};
}

bool matmul(const Tensor& a, const Tensor& b, Tensor& out) {
  std::optional<Problem> p = plan_matmul(a, b);
  return p && run(*p, out);
}

std::string matmul_implementation(const Tensor& a, const Tensor& b) {
  std::optional<Problem> p = plan_matmul(a, b);
  if (!p) return "";
  const std::shared_ptr<const Compiled> c = compiled_for(*p);
  return c && c->primitive ? c->implementation : "";
}

#else  // !KILN_HAVE_ONEDNN

class PackedWeight {};

bool available() { return false; }
bool linear(const Tensor&, const Tensor&, const Tensor*, Tensor&, Epilogue) { return false; }
std::shared_ptr<const PackedWeight> pack_weight(const Tensor&, std::int64_t) { return nullptr; }
std::shared_ptr<const PackedWeight> pack_weights(const std::vector<const Tensor*>&, const std::vector<const Tensor*>&,
                                                 std::int64_t) {
  return nullptr;
}
bool linear_concat(const Tensor&, const std::vector<const Tensor*>&, const std::vector<const Tensor*>&, Tensor&) {
  return false;
}
std::size_t packed_bytes(const PackedWeight&) { return 0; }
LinearInfo describe_linear(const Tensor&, const Tensor&, const Tensor*, Epilogue) { return {}; }
bool matmul(const Tensor&, const Tensor&, Tensor&) { return false; }
std::string matmul_implementation(const Tensor&, const Tensor&) { return ""; }

#endif

}  // namespace kiln::kernels::onednn
