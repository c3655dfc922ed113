// Loading binds weights and kernels once; running checks inputs, then walks the graph.
#include "engine/exec/program.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <limits>
#include <map>

#include "engine/import/importer.hpp"
#include "engine/exec/provider.hpp"
#include "engine/passes/pipeline.hpp"
#include "kernels/cpu/parallel.hpp"
#include "kernels/reference/reference.hpp"
#include "kiln/error.hpp"

namespace kiln::exec {
namespace {

using kernels::Tensor;
using K = RtValue::Kind;

std::string loc_str(const ir::Node& node) {
  if (!node.loc) return "";
  return node.loc->file + ":" + std::to_string(node.loc->line) + ":" + std::to_string(node.loc->column);
}

RtValue constant_value(const ir::Graph& g, ir::NodeId n, const std::map<std::string, import::ArchiveTensor>& tensors,
                       const std::shared_ptr<const void>& keepalive, const std::string& source) {
  const ir::Node& node = ir::node(g, n);
  if (node.attrs.empty()) return RtValue::none();
  const ir::Type& type = ir::value(g, node.outputs[0]).type;
  const ir::AttrValue& v = node.attrs[0].value;
  if (const auto* i = std::get_if<std::int64_t>(&v)) return RtValue::of_int(*i);
  if (const auto* d = std::get_if<double>(&v)) return RtValue::of_float(*d);
  if (const auto* b = std::get_if<bool>(&v)) return RtValue::of_bool(*b);
  if (const auto* s = std::get_if<std::string>(&v)) {
    RtValue r;
    r.kind = type.kind == ir::TypeKind::device ? K::device : K::str;
    r.s = *s;
    return r;
  }
  if (const auto* l = std::get_if<std::vector<std::int64_t>>(&v)) return RtValue::of_ints(*l);
  const auto& ref = std::get<ir::TensorRef>(v);
  const auto it = tensors.find(ref.name);
  if (it == tensors.end()) throw Error(ErrorKind::internal, source, "", "tensor '" + ref.name + "' is not in the import");
  const format::TensorData& data = it->second.data;
  Tensor t;
  t.dtype = *data.dtype;
  t.sizes = data.sizes;
  t.strides = data.strides;
  t.offset = data.storage_offset;
  t.buffer = kernels::Buffer::borrow(data.storage.data(), data.storage.size(), keepalive);
  RtValue r = RtValue::of_tensor(std::move(t));
  r.wrapped = it->second.kind == import::ArchiveTensor::Kind::constant && r.t.dim() == 0;
  return r;
}

// The embedding table's short name: "embeddings.word_embeddings.weight" -> "word_embeddings".
std::string table_name(const std::string& tensor) {
  std::string s = tensor;
  if (s.size() > 7 && s.ends_with(".weight")) s.resize(s.size() - 7);
  const std::size_t dot = s.rfind('.');
  return dot == std::string::npos ? s : s.substr(dot + 1);
}

void find_index_checks(Program& p) {
  const ir::Graph& g = p.graph;
  const auto& params = ir::block(g, ir::kTopBlock).params;
  // A graph input used as the indices of a weight table: aten::embedding(table, ids), or
  // the (table, ids) pairs of the fused kiln::embedding_layer_norm from input 4.
  const auto check = [&](ir::ValueId table, ir::ValueId ids) {
    const auto param = std::find(params.begin(), params.end(), ids);
    if (param == params.end()) return;
    const ir::NodeId w = ir::value(g, table).node;
    if (w == ir::kNoNode || !ir::is_kind(g, w, "prim::Constant") || ir::node(g, w).attrs.empty()) return;
    const auto* ref = std::get_if<ir::TensorRef>(&ir::node(g, w).attrs[0].value);
    const auto& shape = ir::value(g, table).type.tensor.shape;
    if (!ref || !shape || shape->empty() || shape->front().symbolic) return;
    p.index_checks.push_back(IndexCheck{static_cast<std::size_t>(param - params.begin()), shape->front().value, table_name(ref->name)});
  };
  ir::walk(g, [&](ir::NodeId n) {
    const ir::Node& node = ir::node(g, n);
    if (ir::is_kind(g, n, "aten::embedding")) {
      check(node.inputs[0], node.inputs[1]);
    } else if (ir::is_kind(g, n, "kiln::embedding_layer_norm")) {
      for (std::size_t t = 4; t + 1 < node.inputs.size(); t += 2) check(node.inputs[t], node.inputs[t + 1]);
    }
  });
}

std::string shape_str(const std::vector<std::int64_t>& s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

std::string spec_str(const passes::InputSpec& spec) {
  std::string out = "[";
  for (std::size_t i = 0; i < spec.shape->size(); ++i) {
    const ir::Dim& d = (*spec.shape)[i];
    out += (i ? ", " : "") + (d.symbolic ? (d.name.empty() ? std::string("*") : d.name) : std::to_string(d.value));
  }
  return out + "]";
}

class Runner {
 public:
  Runner(const Program& p, ArenaSession* arena, std::map<std::string, OpTime>* profile)
      : p_(p), frame_{p, p.constant_values}, arena_(arena), profile_(profile) {}

  void block(ir::BlockId b) {
    for (ir::NodeId n : ir::block(p_.graph, b).nodes) {
      const ir::Node& node = ir::node(p_.graph, n);
      if (node.erased) continue;
      try {
        const std::string_view kind = ir::kind_str(p_.graph, n);
        if (kind == "prim::Constant") continue;
        const Kernel kernel = p_.kernels[ir::idx(n)];
        if (kind == "prim::If") {
          if_node(n);
        } else if (kind == "prim::Loop") {
          loop_node(n);
        } else if (kernel) {  // no kernel: a copy of a weight, made at load
          check_spaces(n);
          const kernels::AllocatorScope allocations(arena_->for_node(n));
          if (profile_) {
            const auto start = std::chrono::steady_clock::now();
            kernel(frame_, n);
            OpTime& t = (*profile_)[std::string(kind)];
            ++t.calls;
            t.ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
          } else {
            kernel(frame_, n);
          }
        }
      } catch (const Error& e) {
        if (!e.file().empty()) throw;
        throw Error(e.kind(), p_.source, loc_str(node), std::string(ir::kind_str(p_.graph, n)) + ": " + e.message());
      }
      if (b == ir::kTopBlock) release_after(n);
    }
  }

  Frame& frame() { return frame_; }
  void set_release(const std::vector<std::vector<ir::ValueId>>* r) { release_ = r; }

 private:
  void if_node(ir::NodeId n) {
    const ir::Node& node = ir::node(p_.graph, n);
    const RtValue& c = frame_.values[ir::idx(node.inputs[0])];
    const bool cond = c.kind == K::bool_ ? c.b : c.i != 0;
    const ir::BlockId chosen = node.blocks.at(cond ? 0 : 1);
    block(chosen);
    const auto& rets = ir::block(p_.graph, chosen).returns;
    for (std::size_t i = 0; i < node.outputs.size(); ++i) frame_.values[ir::idx(node.outputs[i])] = frame_.values[ir::idx(rets[i])];
  }

  void loop_node(ir::NodeId n) {
    const ir::Node& node = ir::node(p_.graph, n);
    const ir::BlockId body = node.blocks.at(0);
    const auto& params = ir::block(p_.graph, body).params;
    const auto& rets = ir::block(p_.graph, body).returns;
    const std::int64_t trips = frame_.values[ir::idx(node.inputs[0])].i;
    bool cond = frame_.values[ir::idx(node.inputs[1])].b;
    std::vector<RtValue> carried;
    for (std::size_t i = 2; i < node.inputs.size(); ++i) carried.push_back(frame_.values[ir::idx(node.inputs[i])]);
    // A bound on iterations, so that a model cannot make a run spin forever.
    constexpr std::int64_t kMaxIterations = 100'000'000;
    for (std::int64_t it = 0; cond && it < trips; ++it) {
      if (it >= kMaxIterations) throw Error::bad_input("", "", "loop ran more than 100000000 iterations");
      frame_.values[ir::idx(params[0])] = RtValue::of_int(it);
      for (std::size_t i = 0; i < carried.size(); ++i) frame_.values[ir::idx(params[i + 1])] = carried[i];
      block(body);
      const RtValue& c = frame_.values[ir::idx(rets[0])];
      cond = c.kind == K::bool_ ? c.b : c.i != 0;
      for (std::size_t i = 0; i < carried.size(); ++i) carried[i] = frame_.values[ir::idx(rets[i + 1])];
    }
    for (std::size_t i = 0; i < node.outputs.size(); ++i) frame_.values[ir::idx(node.outputs[i])] = carried[i];
  }

  // Every tensor a kernel reads lives in its provider's memory space (placement's promise;
  // copies and metadata ops read across spaces by design).
  void check_spaces(ir::NodeId n) {
    const Provider* pr = p_.placement[ir::idx(n)];
    if (!pr || ir::is_kind(p_.graph, n, "kiln::copy") || reads_only_metadata(ir::kind_str(p_.graph, n))) return;
    for (ir::ValueId v : ir::node(p_.graph, n).inputs) {
      const RtValue& value = frame_.values[ir::idx(v)];
      if (value.kind != K::tensor || !value.t.buffer) continue;
      if (std::strcmp(value.t.buffer->space, pr->memory_space) != 0)
        throw Error(ErrorKind::internal, "", "", std::string("a tensor in memory space '") + value.t.buffer->space +
                                                     "' reached " + pr->name + ", which runs in '" + pr->memory_space + "'");
    }
  }

  void release_after(ir::NodeId n) {
    if (!release_) return;
    for (ir::ValueId v : (*release_)[ir::idx(n)]) frame_.values[ir::idx(v)] = RtValue::none();
  }

  const Program& p_;
  Frame frame_;
  ArenaSession* arena_;
  std::map<std::string, OpTime>* profile_;
  const std::vector<std::vector<ir::ValueId>>* release_ = nullptr;
};

// For each top-level node, the values no later top-level node (or anything nested in
// one) reads, so a run can drop intermediate tensors as soon as they are dead.
std::vector<std::vector<ir::ValueId>> release_plan(const ir::Graph& g) {
  std::vector<std::vector<ir::ValueId>> plan(g.nodes.size());
  std::map<std::uint32_t, ir::NodeId> last;
  const auto& top = ir::block(g, ir::kTopBlock);
  for (ir::NodeId n : top.nodes) {
    if (ir::node(g, n).erased) continue;
    std::function<void(ir::NodeId)> reads = [&](ir::NodeId m) {
      for (ir::ValueId v : ir::node(g, m).inputs) last[ir::idx(v)] = n;
      for (ir::BlockId b : ir::node(g, m).blocks) {
        for (ir::NodeId k : ir::block(g, b).nodes) reads(k);
        for (ir::ValueId v : ir::block(g, b).returns) last[ir::idx(v)] = n;
      }
    };
    reads(n);
    // Outputs nobody reads (the second result of max, say) go right after their node.
    for (ir::ValueId o : ir::node(g, n).outputs) last.try_emplace(ir::idx(o), n);
  }
  for (ir::ValueId v : top.returns) last.erase(ir::idx(v));
  for (const auto& [v, n] : last) {
    const ir::Value& val = ir::value(g, ir::ValueId{v});
    // Constants stay (they are shared by every run); only top-level node outputs go.
    if (val.block != ir::kTopBlock || val.node == ir::kNoNode || ir::is_kind(g, val.node, "prim::Constant")) continue;
    plan[ir::idx(n)].push_back(ir::ValueId{v});
  }
  return plan;
}

void flatten_outputs(const RtValue& v, std::vector<Tensor>& out) {
  switch (v.kind) {
    case K::tensor: out.push_back(v.t); return;
    case K::tuple:
    case K::list:
      for (const RtValue& item : v.items) flatten_outputs(item, out);
      return;
    case K::int_: out.push_back(Tensor::scalar_int(DType::int64, v.i)); return;
    case K::float_: out.push_back(Tensor::scalar(DType::float64, v.f)); return;
    case K::bool_: out.push_back(Tensor::scalar_int(DType::bool_, v.b)); return;
    case K::int_list: {
      Tensor t = Tensor::empty(DType::int64, {static_cast<std::int64_t>(v.ints.size())});
      for (std::size_t i = 0; i < v.ints.size(); ++i) kernels::store_int(t, static_cast<std::int64_t>(i), v.ints[i]);
      out.push_back(std::move(t));
      return;
    }
    default: throw Error::bad_input("", "", "the model returns a value that is not a tensor");
  }
}

}  // namespace

namespace {

std::shared_ptr<Program> build_program(const format::Archive& archive, const LoadOptions& options) {
  if (archive.byteorder() != "little")
    throw Error::bad_input(archive.source(), "byteorder", "big-endian archives are not supported");
  import::ImportedModel model = import::import_model(archive);
  const std::vector<passes::InputSpec> specs = passes::default_input_specs(model);
  passes::OptimizeResult opt = passes::optimize(model, specs);
  auto p = std::make_shared<Program>();
  p->source = archive.source();
  p->keepalive = archive.zip().file();
  for (std::size_t i = 0; i < model.input_names.size(); ++i) p->inputs.push_back(InputInfo{model.input_names[i], specs.at(i)});
  p->shapes = std::move(opt.shapes);
  p->graph = std::move(model.graph);
  p->providers = options.providers.empty() ? std::vector<const Provider*>{&cpu_provider()} : options.providers;
  place(*p, p->providers);
  const ir::Graph& g = p->graph;
  p->kernels.assign(g.nodes.size(), nullptr);
  p->constant_values.assign(g.values.size(), RtValue::none());
  std::vector<ir::NodeId> order;
  ir::walk(g, [&](ir::NodeId n) { order.push_back(n); });
  for (ir::NodeId n : order) {
    const ir::Node& node = ir::node(g, n);
    const std::string_view kind = ir::kind_str(g, n);
    if (kind == "prim::Constant") {
      p->constant_values[ir::idx(node.outputs[0])] = constant_value(g, n, model.tensors, p->keepalive, p->source);
      continue;
    }
    if (kind == "prim::If" || kind == "prim::Loop") continue;
    // Weights crossing into a provider's memory space cross once, here.
    if (kind == "kiln::copy" && ir::value(g, node.inputs[0]).node != ir::kNoNode &&
        ir::is_kind(g, ir::value(g, node.inputs[0]).node, "prim::Constant")) {
      Frame frame{*p, p->constant_values};
      copy_kernel(frame, n);
      p->constant_values[ir::idx(node.outputs[0])] = frame.values[ir::idx(node.outputs[0])];
      continue;  // no kernel: the value is ready in every run's frame
    }
    const Provider* provider = p->placement.at(ir::idx(n));
    p->kernels[ir::idx(n)] = provider ? provider->kernel(g, n) : nullptr;
    if (!p->kernels[ir::idx(n)])
      throw Error::bad_input(p->source, loc_str(node), "kiln has no kernel for " + std::string(kind));
  }
  find_index_checks(*p);
  p->release = release_plan(g);
  p->threads = options.threads;
  p->max_memory = options.max_memory;
  return p;
}

}  // namespace

std::shared_ptr<const Program> load_program(const std::string& path, const LoadOptions& options) {
  const format::Archive archive = format::Archive::open(path);  // a mapping of the file
  std::shared_ptr<Program> p = build_program(archive, options);
  p->mapped_file = archive.zip().file()->bytes();
  return p;
}

std::shared_ptr<const Program> load_program(const format::Archive& archive, const LoadOptions& options) {
  return build_program(archive, options);
}

namespace {

struct Binding {
  std::map<std::int64_t, std::int64_t> sizes;  // input symbol id -> size
  std::map<std::int64_t, std::string> bound_by;  // input symbol id -> the input that set it
};

Binding bind(const Program& p, std::vector<Tensor>& inputs) {
  if (inputs.size() != p.inputs.size()) {
    std::string names;
    for (const InputInfo& i : p.inputs) names += (names.empty() ? "" : ", ") + i.name;
    throw Error::bad_input("", "", "the model takes " + std::to_string(p.inputs.size()) + " inputs (" + names + "), got " +
                                       std::to_string(inputs.size()));
  }
  // Dtypes, ranks and the input symbols' sizes.
  Binding binding;
  auto& sizes = binding.sizes;
  auto& bound_by = binding.bound_by;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const InputInfo& info = p.inputs[i];
    Tensor& t = inputs[i];
    if (info.spec.dtype == DType::int64) {
      if (t.dtype == DType::int32) {
        t = kernels::ref::cast(t, DType::int64);
      } else if (t.dtype != DType::int64) {
        throw Error::bad_input("", info.name, "expected an integer tensor (int64 or int32), got " + std::string(dtype_name(t.dtype)));
      }
    }
    if (!info.spec.shape) continue;
    const auto& want = *info.spec.shape;
    if (t.dim() != want.size())
      throw Error::bad_input("", info.name, "expected " + std::to_string(want.size()) + " dimensions " + spec_str(info.spec) +
                                                ", got " + std::to_string(t.dim()) + " " + shape_str(t.sizes));
    for (std::size_t d = 0; d < want.size(); ++d) {
      if (!want[d].symbolic) {
        if (t.sizes[d] != want[d].value)
          throw Error::bad_input("", info.name, "dimension " + std::to_string(d) + " must be " + std::to_string(want[d].value) +
                                                    ", got " + std::to_string(t.sizes[d]));
        continue;
      }
      const auto [it, fresh] = sizes.emplace(want[d].value, t.sizes[d]);
      if (fresh) {
        bound_by[want[d].value] = info.name;
      } else if (it->second != t.sizes[d]) {
        throw Error::bad_input("", info.name, "dimension " + std::to_string(d) + " (" + want[d].name + ") is " +
                                                  std::to_string(t.sizes[d]) + ", but " + bound_by[want[d].value] + " has " +
                                                  want[d].name + " = " + std::to_string(it->second));
      }
    }
  }
  return binding;
}

}  // namespace

std::map<std::int64_t, std::int64_t> bind_inputs(const Program& p, std::vector<Tensor>& inputs) { return bind(p, inputs).sizes; }

std::optional<std::int64_t> dim_size(const Program& p, const ir::Dim& d, const std::map<std::int64_t, std::int64_t>& sizes) {
  if (!d.symbolic) return d.value;
  const auto value_of = [&](std::int64_t id) -> std::optional<std::int64_t> {
    const auto it = sizes.find(id);
    return it == sizes.end() ? std::nullopt : std::optional(it->second);
  };
  if (const auto s = value_of(d.value)) return s;
  const auto it = p.shapes.derived.find(d.value);
  if (it == p.shapes.derived.end()) return std::nullopt;
  return ir::evaluate(it->second, value_of);
}

std::vector<Tensor> run(const Program& p, std::vector<Tensor> inputs, const RunOptions& options,
                        std::vector<std::string>* warnings, MemoryStats* memory) {
  Binding binding = bind(p, inputs);
  const auto& sizes = binding.sizes;
  auto& bound_by = binding.bound_by;
  // What the trace fixed: refuse where PyTorch would fail, warn where it silently cuts.
  // Findings are polynomials in the input symbols, which the inputs have just bound.
  const auto value_of = [&](std::int64_t id) -> std::optional<std::int64_t> {
    const auto it = sizes.find(id);
    return it == sizes.end() ? std::nullopt : std::optional(it->second);
  };
  for (const passes::ShapeFinding& f : p.shapes.findings) {
    const auto lhs = ir::evaluate(f.lhs, value_of);
    const auto rhs = ir::evaluate(f.rhs, value_of);
    if (!lhs || !rhs) continue;
    const std::string where = f.loc ? f.loc->file + ":" + std::to_string(f.loc->line) : "";
    if (f.kind == passes::ShapeFinding::Kind::refuses) {
      if (*lhs == *rhs || (f.or_one && *lhs == 1)) continue;
      std::string msg = "these inputs need a size the trace fixed: " + f.op + " " + f.detail;
      if (f.symbol && f.value) msg += "; the model works only with " + p.shapes.symbol_name(*f.symbol) + " = " + std::to_string(*f.value) + ", got " + std::to_string(value_of(*f.symbol).value_or(-1));
      throw Error::bad_input(p.source, where, msg + " (re-trace the model at this shape or with dynamic sizes)");
    }
    if (f.kind == passes::ShapeFinding::Kind::limit) {
      if (*lhs <= *rhs || f.value_bound) continue;  // value bounds explain failures below
      std::string msg = "these inputs are too large for the model: " + f.op + " " + f.detail + ", but " + p.shapes.str(f.lhs) +
                        " = " + std::to_string(*lhs);
      std::string input;
      if (f.symbol && f.value) {
        msg += "; the model takes at most " + p.shapes.symbol_name(*f.symbol) + " = " + std::to_string(*f.value);
        if (bound_by.count(*f.symbol)) input = bound_by[*f.symbol];
      }
      throw Error::bad_input(p.source, input.empty() ? where : input, msg + (input.empty() ? "" : " (at " + where + ")"));
    }
    if (*lhs > *rhs) {
      const std::string msg = f.op + " " + f.detail + ": this input has " + p.shapes.str(f.lhs) + " = " + std::to_string(*lhs) +
                              ", so the output keeps only " + std::to_string(*rhs) + ", as PyTorch would";
      if (options.strict_shapes) throw Error::bad_input(p.source, where, msg + " (refused: --strict-shapes)");
      if (warnings) warnings->push_back(p.source + ":" + where + ": " + msg);
    }
  }
  // Ids against their tables.
  for (const IndexCheck& c : p.index_checks) {
    const Tensor& t = inputs[c.input];
    const std::int64_t count = t.numel();
    for (std::int64_t i = 0; i < count; ++i) {
      const std::int64_t id = kernels::load_int(t, i);
      if (id >= 0 && id < c.rows) continue;
      std::vector<std::int64_t> at(t.dim());
      std::int64_t rest = i;
      for (std::size_t d = t.dim(); d-- > 0;) {
        at[d] = rest % t.sizes[d];
        rest /= t.sizes[d];
      }
      throw Error::bad_input("", p.inputs[c.input].name, "id " + std::to_string(id) + " at " + shape_str(at) + " is out of range for " +
                                                            c.table + " (" + std::to_string(c.rows) + " entries: ids 0.." +
                                                            std::to_string(c.rows - 1) + ")");
    }
  }

  // Memory: planned for these sizes, checked against the limit before anything is allocated.
  const std::shared_ptr<const MemoryPlan> plan = p.arenas->plan(p, sizes);
  const std::int64_t limit = options.max_memory >= 0 ? options.max_memory : p.max_memory;
  if (limit > 0 && plan->arena_bytes + plan->output_bytes > limit) {
    std::string at;
    for (const auto& [id, size] : sizes) at += (at.empty() ? "" : ", ") + p.shapes.symbol_name(id) + " = " + std::to_string(size);
    throw Error::bad_input(p.source, "", "this run needs " + std::to_string(plan->arena_bytes + plan->output_bytes) +
                                             " bytes (intermediates " + std::to_string(plan->arena_bytes) + ", outputs " +
                                             std::to_string(plan->output_bytes) + ")" + (at.empty() ? "" : " at " + at) +
                                             ", more than max_memory = " + std::to_string(limit));
  }
  const kernels::cpu::ThreadScope threads(options.threads >= 0 ? options.threads : p.threads);
  ArenaSession session(plan, p.arenas->take(plan->arena_bytes));
  std::vector<Tensor> outputs;
  {
    Runner runner(p, &session, options.profile);
    runner.set_release(&p.release);
    const auto& params = ir::block(p.graph, ir::kTopBlock).params;
    for (std::size_t i = 0; i < params.size(); ++i) runner.frame().values[ir::idx(params[i])] = RtValue::of_tensor(inputs[i]);
    inputs.clear();
    try {
      runner.block(ir::kTopBlock);
    } catch (const Error& e) {
    // An index past a table that a value bound predicted (RoBERTa's positions past 512):
    // say which input size caused it.
    for (const passes::ShapeFinding& f : p.shapes.findings) {
      if (!f.value_bound || !f.loc || e.where() != f.loc->file + ":" + std::to_string(f.loc->line) + ":" + std::to_string(f.loc->column))
        continue;
      const auto lhs = ir::evaluate(f.lhs, value_of);
      if (!lhs || !f.symbol || !f.value || *lhs <= *ir::evaluate(f.rhs, value_of)) continue;
      const std::string input = bound_by.count(*f.symbol) ? bound_by[*f.symbol] : std::string();
      throw Error::bad_input(p.source, input.empty() ? e.where() : input,
                             "these inputs are too large for the model: " + e.message() + "; with " + p.shapes.symbol_name(*f.symbol) +
                                 " = " + std::to_string(*value_of(*f.symbol)) + " the model takes at most " +
                                 std::to_string(*f.value) + " tokens that are not padding");
    }
    throw;
    }
    for (ir::ValueId v : ir::block(p.graph, ir::kTopBlock).returns) flatten_outputs(runner.frame().values[ir::idx(v)], outputs);
  }
  if (memory) *memory = session.stats();
  p.arenas->give_back(session.release_arena(), plan->arena_bytes);
  return outputs;
}

}  // namespace kiln::exec
