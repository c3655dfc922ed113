// kiln::Model and kiln::Tensor (include/kiln/kiln.hpp) over exec::Program.
#include <algorithm>
#include <cstring>
#include <limits>
#include <map>

#include "engine/exec/program.hpp"
#include "engine/exec/provider.hpp"
#include "kernels/cpu/parallel.hpp"
#include "kernels/reference/reference.hpp"
#include "kiln/kiln.hpp"

namespace kiln {

std::int64_t Tensor::count(const std::vector<std::int64_t>& shape) {
  std::int64_t n = 1;
  for (std::int64_t s : shape) {
    if (s < 0) throw Error(ErrorKind::usage, "", "", "Tensor: negative size " + std::to_string(s));
    if (__builtin_mul_overflow(n, s, &n)) throw Error(ErrorKind::usage, "", "", "Tensor: the element count overflows");
  }
  return n;
}

Tensor Tensor::from_bytes(DType dtype, std::vector<std::int64_t> shape, const void* data) {
  const std::int64_t n = count(shape);
  std::int64_t bytes = 0;
  if (__builtin_mul_overflow(n, static_cast<std::int64_t>(dtype_size(dtype)), &bytes))
    throw Error(ErrorKind::usage, "", "", "Tensor: the byte size overflows");
  auto buffer = kernels::Buffer::allocate(static_cast<std::size_t>(bytes));
  if (bytes > 0) std::memcpy(buffer->data, data, static_cast<std::size_t>(bytes));
  const void* p = buffer->data;
  return wrap(dtype, std::move(shape), p, std::move(buffer));
}

Tensor Tensor::view(DType dtype, std::vector<std::int64_t> shape, const void* data) {
  const std::int64_t n = count(shape);
  if (n > 0 && !data) throw Error(ErrorKind::usage, "", "", "Tensor::view: data is null");
  std::int64_t bytes = 0;
  if (__builtin_mul_overflow(n, static_cast<std::int64_t>(dtype_size(dtype)), &bytes))
    throw Error(ErrorKind::usage, "", "", "Tensor: the byte size overflows");
  return wrap(dtype, std::move(shape), data, nullptr);
}

Tensor Tensor::wrap(DType dtype, std::vector<std::int64_t> shape, const void* data, std::shared_ptr<const void> owner) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.data_ = data;
  t.owner_ = std::move(owner);
  return t;
}

struct Model::Impl {
  std::shared_ptr<const exec::Program> program;
  std::vector<std::string> input_names;
};

namespace {

kernels::Tensor to_kernel(const Tensor& t, const std::shared_ptr<const void>& keep) {
  kernels::Tensor k;
  k.dtype = t.dtype();
  k.sizes = t.shape();
  k.strides = kernels::contiguous_strides(k.sizes);
  k.buffer = kernels::Buffer::borrow(static_cast<const std::byte*>(t.data()), t.nbytes(), keep);
  return k;
}

Tensor from_kernel(const kernels::Tensor& k) {
  const kernels::Tensor c = k.is_contiguous() ? k : kernels::ref::contiguous(k);
  return Tensor::wrap(c.dtype, c.sizes, c.bytes(), c.buffer);
}

// Errors from a run name the model file when they do not name another one.
[[noreturn]] void rethrow_with_file(const Error& e, const std::string& file) {
  if (!e.file().empty()) throw e;
  throw Error(e.kind(), file, e.where(), e.message());
}

}  // namespace

namespace {

exec::LoadOptions to_exec(const LoadOptions& options) {
  exec::LoadOptions load;
  for (const std::string& name : options.providers) {
    if (name == "cpu") {
      load.providers.push_back(&exec::cpu_provider());
    } else if (name == "cpu-reference") {
      load.providers.push_back(&exec::reference_provider());
    } else {
      throw Error(ErrorKind::usage, "", "", "unknown provider '" + name + "' (kiln has: cpu, cpu-reference)");
    }
  }
  if (load.providers.empty()) throw Error(ErrorKind::usage, "", "", "LoadOptions::providers is empty");
  if (options.threads < 0) throw Error(ErrorKind::usage, "", "", "LoadOptions::threads must be 0 (every CPU) or more");
  if (options.max_memory < 0) throw Error(ErrorKind::usage, "", "", "LoadOptions::max_memory must be 0 (no limit) or more");
  load.threads = options.threads;
  load.max_memory = options.max_memory;
  return load;
}

std::shared_ptr<const Model::Impl> make_impl(std::shared_ptr<const exec::Program> program) {
  auto impl = std::make_shared<Model::Impl>();
  impl->program = std::move(program);
  for (const exec::InputInfo& i : impl->program->inputs) impl->input_names.push_back(i.name);
  return impl;
}

TensorInfo describe(const std::string& name, const ir::Type& type, const passes::ShapeReport& shapes) {
  TensorInfo info;
  info.name = name;
  if (type.kind != ir::TypeKind::tensor) return info;
  info.dtype = type.tensor.dtype;
  if (!type.tensor.shape) return info;
  info.shape.emplace();
  for (const ir::Dim& d : *type.tensor.shape)
    info.shape->push_back(d.symbolic ? Dim{-1, shapes.symbol_name(d.value)} : Dim{d.value, {}});
  return info;
}

// The types of what a returned value flattens to; a tuple built in the graph gives its
// elements' inferred types (inference does not write them back into the tuple's type).
void flatten_types(const ir::Graph& g, ir::ValueId v, std::vector<const ir::Type*>& out) {
  const ir::Value& value = ir::value(g, v);
  if (value.node != ir::kNoNode && ir::is_kind(g, value.node, "prim::TupleConstruct")) {
    for (ir::ValueId in : ir::node(g, value.node).inputs) flatten_types(g, in, out);
  } else if (value.type.kind == ir::TypeKind::tuple) {
    for (const ir::Type& e : value.type.elems) out.push_back(&e);
  } else {
    out.push_back(&value.type);
  }
}

}  // namespace

Model Model::load(const std::string& path, const LoadOptions& options) {
  const exec::LoadOptions load = to_exec(options);
  Model m;
  m.impl_ = make_impl(exec::load_program(path, load));
  if (options.prepare) m.prepare();
  return m;
}

Model Model::load_from_memory(const void* data, std::size_t size, const LoadOptions& options, const std::string& name) {
  if (!data && size > 0) throw Error(ErrorKind::usage, "", "", "Model::load_from_memory: data is null");
  const exec::LoadOptions load = to_exec(options);
  const format::Archive archive =
      format::Archive::from_buffer(std::span<const std::byte>(static_cast<const std::byte*>(data), size), name);
  Model m;
  m.impl_ = make_impl(exec::load_program(archive, load));
  if (options.prepare) m.prepare();
  return m;
}

void Model::prepare() const {
  try {
    exec::prepare(*impl_->program);
  } catch (const Error& e) {
    rethrow_with_file(e, impl_->program->source);
  }
}

std::vector<TensorInfo> Model::inputs() const {
  const exec::Program& p = *impl_->program;
  const auto& params = ir::block(p.graph, ir::kTopBlock).params;
  std::vector<TensorInfo> out;
  for (std::size_t i = 0; i < p.inputs.size(); ++i) {
    TensorInfo info = describe(p.inputs[i].name, ir::value(p.graph, params.at(i)).type, p.shapes);
    // The specs the run checks win over what inference kept (Hugging Face names: int64).
    if (p.inputs[i].spec.dtype) info.dtype = p.inputs[i].spec.dtype;
    out.push_back(std::move(info));
  }
  return out;
}

std::vector<TensorInfo> Model::outputs() const {
  const exec::Program& p = *impl_->program;
  std::vector<const ir::Type*> types;
  for (ir::ValueId v : ir::block(p.graph, ir::kTopBlock).returns) flatten_types(p.graph, v, types);
  std::vector<TensorInfo> out;
  for (std::size_t i = 0; i < types.size(); ++i) out.push_back(describe("output_" + std::to_string(i), *types[i], p.shapes));
  return out;
}

const std::vector<std::string>& Model::input_names() const { return impl_->input_names; }

std::vector<std::string> Model::shape_report() const {
  // Sizes the trace fixed; limits (position tables) are checked on every run instead.
  passes::ShapeReport fixed = impl_->program->shapes;
  std::erase_if(fixed.findings, [](const passes::ShapeFinding& f) { return f.kind == passes::ShapeFinding::Kind::limit; });
  return fixed.lines();
}

std::vector<Tensor> Model::run(const std::vector<Tensor>& inputs, const RunOptions& options,
                               std::vector<std::string>* warnings) const {
  // Inputs are borrowed for the run; the caller's Tensors keep their bytes alive.
  std::vector<kernels::Tensor> ks;
  for (const Tensor& t : inputs) ks.push_back(to_kernel(t, nullptr));
  exec::RunOptions o;
  if (options.threads < -1) throw Error(ErrorKind::usage, "", "", "RunOptions::threads must be -1 (the model's), 0 (every CPU) or more");
  if (options.max_memory < -1) throw Error(ErrorKind::usage, "", "", "RunOptions::max_memory must be -1 (the model's), 0 (no limit) or more");
  o.strict_shapes = options.strict_shapes;
  o.threads = options.threads;
  o.max_memory = options.max_memory;
  std::vector<kernels::Tensor> outs;
  exec::MemoryStats memory;
  std::map<std::string, exec::OpTime> profile;
  if (options.profile && options.stats) o.profile = &profile;
  try {
    outs = exec::run(*impl_->program, std::move(ks), o, warnings, &memory);
  } catch (const Error& e) {
    rethrow_with_file(e, impl_->program->source);
  }
  std::vector<Tensor> result;
  for (const kernels::Tensor& k : outs) result.push_back(from_kernel(k));
  if (options.stats) {
    RunStats& s = *options.stats;
    s.arena_bytes = memory.arena_bytes;
    s.output_bytes = memory.output_bytes;
    s.heap_bytes = memory.heap_bytes;
    s.planned_values = memory.planned_values;
    s.planned_bytes = memory.planned_bytes;
    s.unplanned_values = memory.unplanned_values;
    s.spilled_values = memory.spilled_values;
    const int asked = options.threads >= 0 ? options.threads : impl_->program->threads;
    s.threads = asked > 0 ? asked : kernels::cpu::hardware_threads();
    s.ops.clear();
    for (const auto& [op, t] : profile) s.ops.push_back(RunStats::OpTime{op, t.calls, t.ms});
    std::sort(s.ops.begin(), s.ops.end(), [](const auto& a, const auto& b) { return a.ms > b.ms; });
  }
  return result;
}

std::vector<Tensor> Model::run(const std::vector<std::pair<std::string, Tensor>>& inputs, const RunOptions& options,
                               std::vector<std::string>* warnings) const {
  const auto& names = impl_->input_names;
  std::vector<Tensor> ordered(names.size());
  std::vector<bool> given(names.size(), false);
  for (const auto& [name, t] : inputs) {
    const auto it = std::find(names.begin(), names.end(), name);
    if (it == names.end()) {
      std::string all;
      for (const std::string& n : names) all += (all.empty() ? "" : ", ") + n;
      throw Error(ErrorKind::bad_input, impl_->program->source, name, "the model has no input '" + name + "' (its inputs: " + all + ")");
    }
    const auto i = static_cast<std::size_t>(it - names.begin());
    if (given[i]) throw Error(ErrorKind::bad_input, impl_->program->source, name, "input given twice");
    ordered[i] = t;
    given[i] = true;
  }
  for (std::size_t i = 0; i < names.size(); ++i)
    if (!given[i]) throw Error(ErrorKind::bad_input, impl_->program->source, names[i], "input missing");
  return run(ordered, options, warnings);
}

}  // namespace kiln
