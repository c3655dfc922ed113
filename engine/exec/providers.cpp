// The CPU providers and the copy kernel.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <vector>

#include "engine/exec/frame_args.hpp"
#include "engine/exec/provider.hpp"
#include "kernels/cpu/elementwise.hpp"
#include "kernels/cpu/fast.hpp"
#include "kernels/cpu/fused.hpp"
#include "kernels/cpu/onednn_matmul.hpp"
#include "kernels/reference/reference.hpp"

namespace kiln::exec {
namespace {

using namespace args;

bool supports_everything(const ir::Graph&, ir::NodeId) { return true; }
kernels::Tensor identity_copy(const kernels::Tensor& t) { return t; }

Kernel reference_kernel(const ir::Graph& g, ir::NodeId n) {
  if (ir::is_kind(g, n, "kiln::copy")) return copy_kernel;
  return find_kernel(ir::kind_str(g, n), ir::symbol_str(g, ir::node(g, n).overload));
}

// Fast kernels: each tries kernels/cpu and falls back to the reference kernel, which also
// gives PyTorch's errors for the cases it refuses.
// oneDNN's matmul when kiln has it, else kiln's own GEMM.
void fast_linear(Frame& f, ir::NodeId n) {
  kernels::Tensor out;
  const kernels::Tensor &x = tensor(f, n, 0), &w = tensor(f, n, 1);
  const kernels::Tensor* b = opt_tensor(f, n, 2);
  if (kernels::onednn::linear(x, w, b, out) || kernels::fast::linear(x, w, b, out)) return out_tensor(f, n, std::move(out));
  find_kernel("aten::linear", "")(f, n);
}

void fast_matmul(Frame& f, ir::NodeId n) {
  kernels::Tensor out;
  if (kernels::onednn::matmul(tensor(f, n, 0), tensor(f, n, 1), out)) return out_tensor(f, n, std::move(out));
  find_kernel("aten::matmul", "")(f, n);
}

void fast_softmax(Frame& f, ir::NodeId n) {
  const kernels::Tensor& x = tensor(f, n, 0);
  const std::int64_t rank = static_cast<std::int64_t>(x.dim());
  const bool last = rank > 0 && (int_arg(f, n, 1) == -1 || int_arg(f, n, 1) == rank - 1);
  const bool same_dtype = in(f, n, 2).kind == K::none || int_arg(f, n, 2) == 6;
  kernels::Tensor out;
  if (last && same_dtype && kernels::fast::softmax_lastdim(x, out)) return out_tensor(f, n, std::move(out));
  find_kernel("aten::softmax", "int")(f, n);
}

void fast_layer_norm(Frame& f, ir::NodeId n) {
  const kernels::Tensor& x = tensor(f, n, 0);
  const std::vector<std::int64_t>& shape = ints_arg(f, n, 1);
  bool trailing = shape.size() <= x.dim();
  std::int64_t size = 1;
  for (std::size_t i = 0; trailing && i < shape.size(); ++i) {
    trailing = x.sizes[x.dim() - shape.size() + i] == shape[i];
    size *= shape[i];
  }
  kernels::Tensor out;
  if (trailing && kernels::fast::layer_norm(x, size, opt_tensor(f, n, 2), opt_tensor(f, n, 3), double_arg(f, n, 4), out))
    return out_tensor(f, n, std::move(out));
  find_kernel("aten::layer_norm", "")(f, n);
}

void fast_gelu(Frame& f, ir::NodeId n) {
  const RtValue& mode = in(f, n, 1);
  kernels::Tensor out;
  if (mode.kind == K::str && (mode.s == "none" || mode.s == "tanh") &&
      kernels::fast::gelu(tensor(f, n, 0), mode.s == "tanh", out))
    return out_tensor(f, n, std::move(out));
  find_kernel("aten::gelu", "")(f, n);
}

// scaled_dot_product_attention as PyTorch's math path computes it: softmax(q @ k^T * scale
// + mask) @ v (kernels/cpu/fused.hpp, shared with the fused kiln::attention). Dropout,
// causal masks, bool masks and grouped-query attention go to the reference kernel (which
// also gives their errors), as does any case the kernel refuses.
void fast_sdpa(Frame& f, ir::NodeId n) {
  const kernels::Tensor &q = tensor(f, n, 0), &k = tensor(f, n, 1), &v = tensor(f, n, 2);
  const bool plain = double_arg(f, n, 4) == 0.0 && !bool_arg(f, n, 5) && !(arity(f, n) > 7 && bool_arg(f, n, 7));
  if (plain && q.dim() >= 1 && q.sizes.back() > 0) {
    const double scale = in(f, n, 6).kind == K::none ? 1 / std::sqrt(static_cast<double>(q.sizes.back())) : double_arg(f, n, 6);
    kernels::Tensor out;
    if (kernels::fast::attention(q, k, v, opt_tensor(f, n, 3), {kernels::fast::AttentionScaling::Mode::multiply, scale},
                                 true, out))
      return out_tensor(f, n, std::move(out));
  }
  find_kernel("aten::scaled_dot_product_attention", "")(f, n);
}

void fast_embedding(Frame& f, ir::NodeId n) {
  kernels::Tensor out;
  if (kernels::fast::embedding(tensor(f, n, 0), tensor(f, n, 1), out)) return out_tensor(f, n, std::move(out));
  find_kernel("aten::embedding", "")(f, n);
}

// add, sub, mul and div of float32 tensors (the other operand a tensor or a number); the
// kernels take only cases whose result is float32, and refuse the rest to the reference.
template <kernels::fast::BinaryOp op>
void fast_binary(Frame& f, ir::NodeId n) {
  const ir::Graph& g = f.program.graph;
  const RtValue& a = in(f, n, 0);
  const RtValue& b = in(f, n, 1);
  constexpr bool has_alpha = op == kernels::fast::BinaryOp::add || op == kernels::fast::BinaryOp::sub;
  kernels::Tensor out;
  if (a.kind == K::tensor && (!has_alpha || arity(f, n) > 2)) {
    const double alpha = has_alpha ? double_arg(f, n, 2) : 1.0;
    bool done = false;
    if (b.kind == K::tensor) {
      done = kernels::fast::binary(op, a.t, b.t, alpha, out);
    } else if (b.kind == K::float_ || b.kind == K::bool_ ||
               (b.kind == K::int_ && b.i >= -(std::int64_t{1} << 53) && b.i <= (std::int64_t{1} << 53))) {
      const double v = b.kind == K::float_ ? b.f : b.kind == K::bool_ ? (b.b ? 1.0 : 0.0) : static_cast<double>(b.i);
      done = kernels::fast::binary_scalar(op, a.t, v, alpha, out);
    }
    if (done) return out_tensor(f, n, std::move(out));
  }
  find_kernel(ir::kind_str(g, n), ir::symbol_str(g, ir::node(g, n).overload))(f, n);
}

// --- fused ops (engine/passes/fusions.cpp); each falls back to its reference kernel ---

// GELU in the GEMM's epilogue, while each block of output is in cache.
void fast_linear_gelu(Frame& f, ir::NodeId n) {
  const RtValue& mode = in(f, n, 3);
  const bool known = mode.kind == K::str && (mode.s == "none" || mode.s == "tanh");
  const kernels::Epilogue gelu = mode.s == "tanh" ? kernels::Epilogue::gelu_tanh : kernels::Epilogue::gelu_erf;
  kernels::Tensor out;
  const kernels::Tensor &x = tensor(f, n, 0), &w = tensor(f, n, 1);
  const kernels::Tensor* b = opt_tensor(f, n, 2);
  if (known && (kernels::onednn::linear(x, w, b, out, gelu) || kernels::fast::linear(x, w, b, out, gelu)))
    return out_tensor(f, n, std::move(out));
  find_kernel("kiln::linear_gelu", "")(f, n);
}

// One GEMM on the weights prepare() packed side by side; unprepared, each linear on its
// own, copied into its columns.
void fast_linear_concat(Frame& f, ir::NodeId n) {
  const kernels::Tensor& x = tensor(f, n, 0);
  std::vector<const kernels::Tensor*> weights, biases;
  for (std::size_t i = 1; i + 1 < arity(f, n); i += 2) {
    weights.push_back(&tensor(f, n, i));
    biases.push_back(opt_tensor(f, n, i + 1));
  }
  kernels::Tensor out;
  if (weights.empty()) return find_kernel("kiln::linear_concat", "")(f, n);
  if (kernels::onednn::linear_concat(x, weights, biases, out)) return out_tensor(f, n, std::move(out));
  std::vector<kernels::Tensor> parts(weights.size());
  std::int64_t width = 0;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    if (!kernels::onednn::linear(x, *weights[i], biases[i], parts[i]) &&
        !kernels::fast::linear(x, *weights[i], biases[i], parts[i])) {
      return find_kernel("kiln::linear_concat", "")(f, n);
    }
    width += parts[i].sizes.back();
  }
  std::vector<std::int64_t> sizes = parts[0].sizes;
  sizes.back() = width;
  out = kernels::Tensor::uninitialized(DType::float32, sizes);
  const std::int64_t rows = out.numel() / std::max<std::int64_t>(width, 1);
  float* to = out.data<float>();
  std::int64_t column = 0;
  for (const kernels::Tensor& part : parts) {
    const std::int64_t w = part.sizes.back();
    const float* from = part.data<const float>();
    for (std::int64_t r = 0; r < rows; ++r) std::memcpy(to + r * width + column, from + r * w, sizeof(float) * w);
    column += w;
  }
  out_tensor(f, n, std::move(out));
}

void fast_add_layer_norm(Frame& f, ir::NodeId n) {
  const kernels::Tensor &a = tensor(f, n, 0), &b = tensor(f, n, 1);
  const std::vector<std::int64_t>& shape = ints_arg(f, n, 2);
  kernels::Tensor out;
  if (shape.size() == 1 &&
      kernels::fast::add_layer_norm(a, b, shape[0], opt_tensor(f, n, 3), opt_tensor(f, n, 4), double_arg(f, n, 5), out))
    return out_tensor(f, n, std::move(out));
  find_kernel("kiln::add_layer_norm", "")(f, n);
}

void fast_embedding_layer_norm(Frame& f, ir::NodeId n) {
  const std::vector<std::int64_t>& shape = ints_arg(f, n, 0);
  std::vector<const kernels::Tensor*> tables, ids;
  for (std::size_t i = 4; i + 1 < arity(f, n); i += 2) {
    tables.push_back(&tensor(f, n, i));
    ids.push_back(&tensor(f, n, i + 1));
  }
  kernels::Tensor out;
  if (shape.size() == 1 && !tables.empty() && tables[0]->dim() == 2 && tables[0]->sizes[1] == shape[0] &&
      kernels::fast::embedding_layer_norm(tables, ids, opt_tensor(f, n, 1), opt_tensor(f, n, 2), double_arg(f, n, 3), out))
    return out_tensor(f, n, std::move(out));
  find_kernel("kiln::embedding_layer_norm", "")(f, n);
}

// A divisor or scale as a double: a number, or a one-element float tensor.
std::optional<double> number_of(const RtValue& v) {
  if (v.kind == K::float_) return v.f;
  if (v.kind == K::int_) return static_cast<double>(v.i);
  if (v.kind == K::tensor && v.t.numel() == 1 && v.t.buffer) {
    if (v.t.dtype == DType::float64) return *v.t.data<const double>();
    if (v.t.dtype == DType::float32) return *v.t.data<const float>();
  }
  return std::nullopt;
}

void fast_attention(Frame& f, ir::NodeId n) {
  using Scaling = kernels::fast::AttentionScaling;
  const kernels::Tensor &q = tensor(f, n, 0), &k = tensor(f, n, 1), &v = tensor(f, n, 2);
  const bool from_sdpa = bool_arg(f, n, 6);
  Scaling scaling;
  bool ok = true;
  if (in(f, n, 4).kind != K::none) {
    const std::optional<double> d = number_of(in(f, n, 4));
    ok = d.has_value();
    scaling = {Scaling::Mode::divide, d.value_or(1)};
  } else if (in(f, n, 5).kind != K::none) {
    const std::optional<double> s = number_of(in(f, n, 5));
    ok = s.has_value();
    scaling = {Scaling::Mode::multiply, s.value_or(1)};
  } else if (from_sdpa && q.dim() > 0 && q.sizes.back() > 0) {
    scaling = {Scaling::Mode::multiply, 1 / std::sqrt(static_cast<double>(q.sizes.back()))};
  }
  kernels::Tensor out;
  if (ok && kernels::fast::attention(q, k, v, opt_tensor(f, n, 3), scaling, from_sdpa, out))
    return out_tensor(f, n, std::move(out));
  find_kernel("kiln::attention", "")(f, n);
}

Kernel cpu_kernel(const ir::Graph& g, ir::NodeId n) {
  const std::string_view kind = ir::kind_str(g, n);
  if (kind == "aten::linear") return fast_linear;
  if (kind == "aten::matmul") return fast_matmul;
  if (kind == "aten::embedding") return fast_embedding;
  if (kind == "aten::scaled_dot_product_attention") return fast_sdpa;
  const std::string_view overload = ir::symbol_str(g, ir::node(g, n).overload);
  using Op = kernels::fast::BinaryOp;
  if (kind == "aten::add" && (overload == "Tensor" || overload == "Scalar")) return fast_binary<Op::add>;
  if (kind == "aten::sub" && (overload == "Tensor" || overload == "Scalar")) return fast_binary<Op::sub>;
  if (kind == "aten::mul" && (overload == "Tensor" || overload == "Scalar")) return fast_binary<Op::mul>;
  if (kind == "aten::div" && (overload == "Tensor" || overload == "Scalar")) return fast_binary<Op::div>;
  if (kind == "aten::softmax") return fast_softmax;
  if (kind == "aten::layer_norm") return fast_layer_norm;
  if (kind == "aten::gelu") return fast_gelu;
  if (kind == "kiln::linear_gelu") return fast_linear_gelu;
  if (kind == "kiln::linear_concat") return fast_linear_concat;
  if (kind == "kiln::add_layer_norm") return fast_add_layer_norm;
  if (kind == "kiln::embedding_layer_norm") return fast_embedding_layer_norm;
  if (kind == "kiln::attention") return fast_attention;
  return reference_kernel(g, n);
}

const Provider* provider_for_space(const Program& p, const std::string& space) {
  for (const Provider* pr : p.providers)
    if (space == pr->memory_space) return pr;
  return nullptr;
}

}  // namespace

void copy_kernel(Frame& f, ir::NodeId n) {
  const ir::Node& node = node_of(f, n);
  const std::string& from = std::get<std::string>(node.attrs.at(0).value);
  const std::string& to = std::get<std::string>(node.attrs.at(1).value);
  kernels::Tensor t = tensor(f, n, 0);
  if (from != "host") t = provider_for_space(f.program, from)->to_host(t);
  if (to != "host") t = provider_for_space(f.program, to)->to_space(t);
  out_tensor(f, n, std::move(t));
}

const Provider& cpu_provider() {
  static const Provider p{"cpu", "host", supports_everything, cpu_kernel, identity_copy, identity_copy};
  return p;
}

const Provider& reference_provider() {
  static const Provider p{"cpu-reference", "host", supports_everything, reference_kernel, identity_copy, identity_copy};
  return p;
}

}  // namespace kiln::exec
