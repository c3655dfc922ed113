// Lifetimes from the top-level node order, aliasing from op kinds, offsets by greedy
// best-lowest-gap packing (largest first).
#include "engine/exec/memory_plan.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <optional>
#include <set>
#include <string_view>

#include "engine/exec/program.hpp"
#include "kiln/error.hpp"

namespace kiln::exec {
namespace {

constexpr std::int64_t kAlign = 64;

std::int64_t align_up(std::int64_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// Outputs that share their inputs' storage: never given a slice of their own, and their
// readers keep the inputs' slices alive.
bool is_view(std::string_view kind) {
  static const std::set<std::string_view> views = {
      "aten::view",   "aten::permute",   "aten::transpose", "aten::select",     "aten::slice",
      "aten::narrow", "aten::unsqueeze", "aten::squeeze",   "aten::expand",     "aten::expand_as",
      "aten::t",      "aten::split",     "aten::chunk",     "aten::split_with_sizes", "aten::detach",
      "aten::add_",   "aten::mul_",      "aten::div_",      "aten::__getitem__", "prim::ListConstruct",
      "prim::TupleConstruct", "prim::ListUnpack", "prim::TupleUnpack", "prim::TupleIndex"};
  return views.count(kind) != 0;
}

// Outputs that are sometimes a new tensor and sometimes an input as it is (reshape of a
// contiguous tensor, to() of the same dtype, a host-to-host copy): planned, and aliasing.
bool may_alias(std::string_view kind) {
  return kind == "aten::reshape" || kind == "aten::contiguous" || kind == "aten::to" || kind == "aten::type_as" ||
         kind == "aten::flatten" || kind == "aten::dropout" || kind == "aten::clone" || kind == "kiln::copy";
}

std::optional<std::int64_t> tensor_bytes(const ir::Type& type, const Program& p,
                                         const std::map<std::int64_t, std::int64_t>& sizes) {
  if (type.kind != ir::TypeKind::tensor || !type.tensor.dtype || !type.tensor.shape) return std::nullopt;
  std::int64_t bytes = static_cast<std::int64_t>(dtype_size(*type.tensor.dtype));
  for (const ir::Dim& d : *type.tensor.shape) {
    const std::optional<std::int64_t> size = dim_size(p, d, sizes);
    if (!size || *size < 0) return std::nullopt;
    if (__builtin_mul_overflow(bytes, *size, &bytes) || bytes > (std::int64_t{1} << 40)) return std::nullopt;
  }
  return bytes;
}

}  // namespace

MemoryPlan plan_memory(const Program& p, const std::map<std::int64_t, std::int64_t>& sizes) {
  const ir::Graph& g = p.graph;
  const ir::Block& top = ir::block(g, ir::kTopBlock);
  MemoryPlan plan;

  // Positions in the top-level order; a read inside a nested block counts at its owner.
  std::vector<std::int64_t> def(g.values.size(), -1), end(g.values.size(), -1);
  std::vector<std::vector<std::uint32_t>> roots(g.values.size());  // storages a value may share
  // Bytes of each value the arena will hold; -1 for the rest (views, outputs, unknown sizes).
  std::vector<std::int64_t> planned(g.values.size(), -1);
  std::vector<ir::NodeId> order;
  for (ir::NodeId n : top.nodes)
    if (!ir::node(g, n).erased) order.push_back(n);
  const auto pos_count = static_cast<std::int64_t>(order.size());

  for (std::int64_t pos = 0; pos < pos_count; ++pos) {
    const ir::NodeId n = order[pos];
    const ir::Node& node = ir::node(g, n);
    std::function<void(const ir::Node&)> reads = [&](const ir::Node& m) {
      for (ir::ValueId v : m.inputs) end[ir::idx(v)] = pos;
      for (ir::BlockId b : m.blocks) {
        for (ir::NodeId k : ir::block(g, b).nodes) reads(ir::node(g, k));
        for (ir::ValueId v : ir::block(g, b).returns) end[ir::idx(v)] = pos;
      }
    };
    reads(node);
    const std::string_view kind = ir::kind_str(g, n);
    // Constants, and copies of weights made at load (no kernel), are not the run's memory.
    if (kind == "prim::Constant" || (node.blocks.empty() && !p.kernels.at(ir::idx(n)))) continue;
    const bool view = is_view(kind), aliasing = view || may_alias(kind) || !node.blocks.empty();
    for (ir::ValueId o : node.outputs) {
      const auto v = ir::idx(o);
      def[v] = pos;
      end[v] = std::max(end[v], pos);
      if (aliasing)
        for (ir::ValueId in : node.inputs) roots[v].insert(roots[v].end(), roots[ir::idx(in)].begin(), roots[ir::idx(in)].end());
      const ir::Type& type = ir::value(g, o).type;
      if (type.kind != ir::TypeKind::tensor || view) continue;
      roots[v].push_back(v);
      if (!node.blocks.empty()) {
        ++plan.unplanned_values;
        continue;
      }
      if (const auto bytes = tensor_bytes(type, p, sizes)) planned[v] = *bytes;
      else ++plan.unplanned_values;
    }
  }
  // Outputs leave the run: they, and whatever they may share, are not in the arena.
  for (ir::ValueId r : top.returns) {
    for (std::uint32_t root : roots[ir::idx(r)]) {
      if (planned[root] < 0) continue;
      plan.output_bytes += planned[root];
      planned[root] = -1;
    }
  }
  // A storage lives as long as any value that may share it.
  std::vector<std::int64_t> last = end;
  for (std::size_t v = 0; v < g.values.size(); ++v)
    for (std::uint32_t root : roots[v]) last[root] = std::max(last[root], end[v]);

  struct Item {
    std::uint32_t value;
    std::int64_t bytes, first, last;
  };
  std::vector<Item> items;
  for (std::size_t v = 0; v < g.values.size(); ++v) {
    if (planned[v] <= 0) continue;
    items.push_back(Item{static_cast<std::uint32_t>(v), planned[v], def[v], last[v]});
  }
  std::stable_sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.bytes > b.bytes; });

  // Each item goes into the lowest gap among already placed items whose lifetimes overlap.
  struct Placed {
    std::int64_t offset, size, first, last;
  };
  std::vector<Placed> placed;
  std::vector<std::int64_t> offset_of(g.values.size(), -1);
  for (const Item& it : items) {
    std::vector<std::pair<std::int64_t, std::int64_t>> busy;  // [offset, offset + size)
    for (const Placed& q : placed)
      if (q.first <= it.last && it.first <= q.last) busy.emplace_back(q.offset, q.offset + q.size);
    std::sort(busy.begin(), busy.end());
    const std::int64_t size = align_up(it.bytes);
    std::int64_t offset = 0;
    for (const auto& [lo, hi] : busy) {
      if (lo - offset >= size) break;
      offset = std::max(offset, hi);
    }
    placed.push_back(Placed{offset, size, it.first, it.last});
    offset_of[it.value] = offset;
    plan.arena_bytes = std::max(plan.arena_bytes, offset + size);
    plan.planned_bytes += it.bytes;
    ++plan.planned_values;
  }
  for (ir::NodeId n : order) {
    for (ir::ValueId o : ir::node(g, n).outputs) {
      const auto v = ir::idx(o);
      if (offset_of[v] >= 0) plan.slots[ir::idx(n)].push_back(MemoryPlan::Slot{o, offset_of[v], planned[v]});
    }
  }
  return plan;
}

std::shared_ptr<const MemoryPlan> ArenaPool::plan(const Program& program, const std::map<std::int64_t, std::int64_t>& sizes) {
  {
    const std::lock_guard lock(mutex_);
    const auto it = plans_.find(sizes);
    if (it != plans_.end()) return it->second;
  }
  auto made = std::make_shared<const MemoryPlan>(plan_memory(program, sizes));
  const std::lock_guard lock(mutex_);
  // A few shapes are the common case; a stream of new ones must not grow the cache forever.
  if (plans_.size() >= 32) plans_.clear();
  plans_.emplace(sizes, made);
  return made;
}

std::shared_ptr<std::byte[]> ArenaPool::take(std::int64_t bytes) {
  {
    const std::lock_guard lock(mutex_);
    for (std::size_t i = 0; i < arenas_.size(); ++i) {
      if (arenas_[i].bytes < bytes) continue;
      auto arena = std::move(arenas_[i].arena);
      arenas_.erase(arenas_.begin() + static_cast<std::ptrdiff_t>(i));
      return arena;
    }
  }
  const auto size = static_cast<std::size_t>(std::max<std::int64_t>(align_up(bytes), kAlign));
  void* raw = std::aligned_alloc(kAlign, size);
  if (!raw) throw Error::bad_input("", "", "out of memory allocating the arena (" + std::to_string(bytes) + " bytes)");
  return std::shared_ptr<std::byte[]>(static_cast<std::byte*>(raw), [](std::byte* q) { std::free(q); });
}

void ArenaPool::give_back(std::shared_ptr<std::byte[]> arena, std::int64_t bytes) {
  // Only when nothing a run returned still points into it (outputs are planned outside the
  // arena, but a kernel may return a view of an intermediate).
  if (!arena || arena.use_count() != 1) return;
  const std::lock_guard lock(mutex_);
  // Kept: as many arenas as runs have been concurrent, the largest ones.
  arenas_.push_back(Kept{std::move(arena), bytes});
  std::sort(arenas_.begin(), arenas_.end(), [](const Kept& a, const Kept& b) { return a.bytes < b.bytes; });
  if (arenas_.size() > 16) arenas_.erase(arenas_.begin());
}

ArenaSession::ArenaSession(std::shared_ptr<const MemoryPlan> plan, std::shared_ptr<std::byte[]> arena)
    : plan_(std::move(plan)), arena_(std::move(arena)), base_(arena_.get()) {
  stats_.arena_bytes = plan_->arena_bytes;
  stats_.output_bytes = plan_->output_bytes;
  stats_.planned_bytes = plan_->planned_bytes;
  stats_.planned_values = plan_->planned_values;
  stats_.unplanned_values = plan_->unplanned_values;
}

kernels::Allocator ArenaSession::for_node(ir::NodeId n) {
  const auto it = plan_->slots.find(ir::idx(n));
  node_slots_ = it == plan_->slots.end() ? nullptr : &it->second;
  claimed_.assign(node_slots_ ? node_slots_->size() : 0, false);
  return kernels::Allocator{&ArenaSession::allocate, this};
}

std::shared_ptr<kernels::Buffer> ArenaSession::allocate(void* self, std::size_t bytes, bool zeroed) {
  auto& s = *static_cast<ArenaSession*>(self);
  const auto want = static_cast<std::int64_t>(bytes);
  if (s.node_slots_) {
    for (std::size_t i = 0; i < s.node_slots_->size(); ++i) {
      const MemoryPlan::Slot& slot = (*s.node_slots_)[i];
      if (s.claimed_[i] || slot.bytes != want) continue;
      s.claimed_[i] = true;
      std::erase_if(s.live_, [](const Handed& h) { return h.buffer.expired(); });
      const bool busy = std::any_of(s.live_.begin(), s.live_.end(), [&](const Handed& h) {
        return h.offset < slot.offset + slot.bytes && slot.offset < h.offset + h.bytes;
      });
      if (busy) {
        ++s.stats_.spilled_values;
        break;
      }
      auto buffer = std::make_shared<kernels::Buffer>();
      buffer->data = s.base_ + slot.offset;
      buffer->size = bytes;
      buffer->writable = true;
      buffer->owner = s.arena_;
      if (zeroed) std::memset(buffer->data, 0, bytes);
      s.live_.push_back(Handed{slot.offset, slot.bytes, buffer});
      return buffer;
    }
  }
  s.stats_.heap_bytes += want;
  return nullptr;
}

}  // namespace kiln::exec
