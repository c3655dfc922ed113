// Placement: the first provider that supports a node runs it; a tensor read in another
// memory space than the one it lives in goes through a kiln::copy node. Control flow,
// lists and tuples stay on the host (their values are copied there first); ops that only
// read metadata (size, dim, dtype) run wherever their inputs are.
#include <cstring>
#include <map>
#include <set>
#include <utility>

#include "engine/exec/provider.hpp"
#include "kiln/error.hpp"

namespace kiln::exec {
namespace {

bool same_space(const char* a, const char* b) { return std::strcmp(a, b) == 0; }

class Placer {
 public:
  Placer(Program& p, const std::vector<const Provider*>& providers) : p_(p), g_(p.graph), providers_(providers) {
    host_ = providers_.back();
    if (!same_space(host_->memory_space, "host"))
      throw Error(ErrorKind::usage, "", "", std::string("the last provider must run on the host; '") + host_->name + "' does not");
  }

  void run() {
    space_.assign(g_.values.size(), "host");
    block(ir::kTopBlock);
    // Outputs go back to the host.
    ir::Block& top = ir::block(g_, ir::kTopBlock);
    for (std::size_t i = 0; i < top.returns.size(); ++i) top.returns[i] = to_host_at_end(top.returns[i]);
  }

 private:
  const char* space_of(ir::ValueId v) const {
    const std::size_t i = ir::idx(v);
    return i < space_.size() ? space_[i] : "host";
  }
  void set_space(ir::ValueId v, const char* s) {
    if (space_.size() <= ir::idx(v)) space_.resize(ir::idx(v) + 1, "host");
    space_[ir::idx(v)] = s;
  }
  void set_provider(ir::NodeId n, const Provider* pr) {
    if (p_.placement.size() <= ir::idx(n)) p_.placement.resize(ir::idx(n) + 1, nullptr);
    p_.placement[ir::idx(n)] = pr;
  }
  bool is_tensor(ir::ValueId v) const { return ir::value(g_, v).type.kind == ir::TypeKind::tensor; }

  // `v` in memory space `to`, copied before node `before` when it lives elsewhere. Copies
  // are shared by later readers in the same block.
  ir::ValueId in_space(ir::ValueId v, const char* to, ir::NodeId before) {
    const char* from = space_of(v);
    if (same_space(from, to) || !is_tensor(v)) return v;
    const ir::BlockId b = ir::node(g_, before).owner;
    const auto key = std::make_tuple(ir::idx(v), std::string(to), ir::idx(b));
    const auto it = copies_.find(key);
    if (it != copies_.end()) return it->second;
    const ir::NodeId c = ir::insert_node_before(g_, before, "kiln::copy", {v}, {ir::value(g_, v).type});
    ir::node(g_, c).attrs.push_back(ir::Attribute{"from", std::string(from)});
    ir::node(g_, c).attrs.push_back(ir::Attribute{"to", std::string(to)});
    const ir::ValueId out = ir::node(g_, c).outputs[0];
    set_space(out, to);
    set_provider(c, host_);
    copies_.emplace(key, out);
    return out;
  }

  ir::ValueId to_host_at_end(ir::ValueId v) {
    if (same_space(space_of(v), "host") || !is_tensor(v)) return v;
    const ir::NodeId c = ir::append_node(g_, ir::kTopBlock, "kiln::copy", {v}, {ir::value(g_, v).type});
    ir::node(g_, c).attrs.push_back(ir::Attribute{"from", std::string(space_of(v))});
    ir::node(g_, c).attrs.push_back(ir::Attribute{"to", std::string("host")});
    set_provider(c, host_);
    return ir::node(g_, c).outputs[0];
  }

  void block(ir::BlockId b) {
    const std::vector<ir::NodeId> nodes = ir::block(g_, b).nodes;  // copies are inserted as we go
    for (ir::NodeId n : nodes) node(n);
    // Block returns feed If/Loop outputs, which live on the host.
    if (b != ir::kTopBlock) {
      ir::Block& blk = ir::block(g_, b);
      for (std::size_t i = 0; i < blk.returns.size(); ++i) {
        if (same_space(space_of(blk.returns[i]), "host") || !is_tensor(blk.returns[i])) continue;
        const ir::ValueId v = blk.returns[i];
        const ir::NodeId c = ir::append_node(g_, b, "kiln::copy", {v}, {ir::value(g_, v).type});
        ir::node(g_, c).attrs.push_back(ir::Attribute{"from", std::string(space_of(v))});
        ir::node(g_, c).attrs.push_back(ir::Attribute{"to", std::string("host")});
        set_provider(c, host_);
        ir::block(g_, b).returns[i] = ir::node(g_, c).outputs[0];
      }
    }
  }

  void node(ir::NodeId n) {
    const std::string_view kind = ir::kind_str(g_, n);
    if (kind == "prim::Constant") return;
    if (kind == "prim::If" || kind == "prim::Loop") {
      for (std::size_t i = 0; i < ir::node(g_, n).inputs.size(); ++i)
        ir::node(g_, n).inputs[i] = in_space(ir::node(g_, n).inputs[i], "host", n);
      for (ir::BlockId b : std::vector<ir::BlockId>(ir::node(g_, n).blocks)) block(b);
      return;
    }
    if (reads_only_metadata(kind)) {
      set_provider(n, host_);
      return;  // reads only sizes and dtypes, which every space keeps on the host
    }
    const Provider* chosen = nullptr;
    for (const Provider* pr : providers_) {
      if (pr->supports(g_, n)) {
        chosen = pr;
        break;
      }
    }
    if (!chosen) {
      const ir::Node& node = ir::node(g_, n);
      const std::string where = node.loc ? node.loc->file + ":" + std::to_string(node.loc->line) : "";
      throw Error::bad_input(p_.source, where, "no provider runs " + std::string(kind));
    }
    set_provider(n, chosen);
    for (std::size_t i = 0; i < ir::node(g_, n).inputs.size(); ++i)
      ir::node(g_, n).inputs[i] = in_space(ir::node(g_, n).inputs[i], chosen->memory_space, n);
    for (ir::ValueId o : ir::node(g_, n).outputs) set_space(o, chosen->memory_space);
  }

  Program& p_;
  ir::Graph& g_;
  const std::vector<const Provider*>& providers_;
  const Provider* host_ = nullptr;
  std::vector<const char*> space_;
  std::map<std::tuple<std::uint32_t, std::string, std::uint32_t>, ir::ValueId> copies_;
};

}  // namespace

bool reads_only_metadata(std::string_view kind) {
  static const std::set<std::string_view> kinds{"aten::size", "aten::dim", "aten::numel", "aten::len", "prim::dtype",
                                                "prim::device"};
  return kinds.count(kind) > 0;
}

void place(Program& p, const std::vector<const Provider*>& providers) {
  p.placement.assign(p.graph.nodes.size(), nullptr);
  Placer(p, providers).run();
  p.placement.resize(p.graph.nodes.size(), nullptr);
}

}  // namespace kiln::exec
