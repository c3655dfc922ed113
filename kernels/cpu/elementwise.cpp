// The baseline half of the fast elementwise kernels (elementwise.hpp): dtype and shape
// checks, broadcasting, the strided walk and the split over threads. The loops themselves
// are per instruction set (elementwise_<isa>.cpp).
#include "kernels/cpu/elementwise.hpp"

#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "kernels/cpu/elementwise_isa.hpp"
#include "kernels/cpu/gemm_epilogue.hpp"
#include "kernels/cpu/parallel.hpp"

namespace kiln::kernels::fast {

namespace {

using Sizes = std::vector<std::int64_t>;

// Work below these sizes runs on the calling thread (waking a thread costs microseconds).
constexpr std::int64_t kBinaryElementsPerRange = std::int64_t{1} << 16;  // ~0.1-0.3 ns each
constexpr std::int64_t kGeluElementsPerRange = std::int64_t{1} << 14;    // ~1 ns each
constexpr std::int64_t kEmbeddingFloatsPerRange = std::int64_t{1} << 16;

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

// PyTorch's broadcast of two shapes; false when they do not broadcast.
bool broadcast(const Sizes& a, const Sizes& b, Sizes& shape) {
  const std::size_t rank = std::max(a.size(), b.size());
  shape.assign(rank, 1);
  for (std::size_t i = 0; i < rank; ++i) {
    const std::int64_t da = i + a.size() < rank ? 1 : a[i + a.size() - rank];
    const std::int64_t db = i + b.size() < rank ? 1 : b[i + b.size() - rank];
    if (da != db && da != 1 && db != 1) return false;
    shape[i] = da == 1 ? db : da;
  }
  return true;
}

// The strides that read `t` as if expanded to `shape`: 0 along the dims it broadcasts.
Sizes expanded_strides(const Tensor& t, const Sizes& shape) {
  Sizes strides(shape.size(), 0);
  const std::size_t lead = shape.size() - t.dim();
  for (std::size_t d = 0; d < t.dim(); ++d) {
    if (t.sizes[d] != 1) strides[lead + d] = t.strides[d];
  }
  return strides;
}

// One loop of the walk over the (contiguous) result: its size and each operand's stride.
struct Dim {
  std::int64_t size, sa, sb;
};

// The loops over `shape`, outermost first: size-1 dims dropped, and each dim merged into
// the one outside it where both operands (and the contiguous result) step through the
// pair as through one dim. A same-shape add becomes one loop; the attention mask
// [b,1,1,s] onto [b,h,s,s] becomes [b, h*s, s] with the mask's strides [s, 0, 1]. Never
// empty (a single element is one loop of size 1).
std::vector<Dim> coalesce(const Sizes& shape, const Sizes& sa, const Sizes& sb) {
  std::vector<Dim> dims;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    if (!dims.empty()) {
      Dim& outer = dims.back();
      if (outer.sa == sa[d] * shape[d] && outer.sb == sb[d] * shape[d]) {
        outer = {outer.size * shape[d], sa[d], sb[d]};
        continue;
      }
    }
    dims.push_back({shape[d], sa[d], sb[d]});
  }
  if (dims.empty()) dims.push_back({1, 0, 0});
  return dims;
}

using RowFn = void (*)(cpu::BinaryKernel, const float*, std::int64_t, const float*, std::int64_t, float*,
                       std::int64_t, float);

RowFn row_function(Isa isa) {
  switch (isa) {
    case Isa::avx512: return cpu::avx512::binary_row;
    case Isa::avx2: return cpu::avx2::binary_row;
    case Isa::scalar: break;
  }
  return cpu::scalar::binary_row;
}

// y (contiguous, the product of the dims' sizes) = a op b over `dims`: rows of the
// innermost dim split over threads, each range walking its rows odometer-style.
void run_binary(cpu::BinaryKernel kernel, float alpha, const float* a, const float* b, float* y,
                const std::vector<Dim>& dims, Isa isa) {
  const RowFn row = row_function(isa);
  const Dim inner = dims.back();
  const std::size_t outer = dims.size() - 1;
  if (outer == 0) {
    cpu::parallel_for(inner.size, kBinaryElementsPerRange, [&](std::int64_t begin, std::int64_t end) {
      row(kernel, a + begin * inner.sa, inner.sa, b + begin * inner.sb, inner.sb, y + begin, end - begin, alpha);
    });
    return;
  }
  std::int64_t rows = 1;
  for (std::size_t d = 0; d < outer; ++d) rows *= dims[d].size;
  cpu::parallel_for(rows, ceil_div(kBinaryElementsPerRange, inner.size), [&](std::int64_t begin, std::int64_t end) {
    Sizes index(outer);
    std::int64_t rest = begin, oa = 0, ob = 0;
    for (std::size_t d = outer; d-- > 0;) {
      index[d] = rest % dims[d].size;
      rest /= dims[d].size;
      oa += index[d] * dims[d].sa;
      ob += index[d] * dims[d].sb;
    }
    for (std::int64_t r = begin; r < end; ++r) {
      row(kernel, a + oa, inner.sa, b + ob, inner.sb, y + r * inner.size, inner.size, alpha);
      for (std::size_t d = outer; d-- > 0;) {
        oa += dims[d].sa;
        ob += dims[d].sb;
        if (++index[d] < dims[d].size) break;
        oa -= dims[d].sa * dims[d].size;
        ob -= dims[d].sb * dims[d].size;
        index[d] = 0;
      }
    }
  });
}

// The loop kernel for op and alpha, and the float alpha it takes (alpha rounded to float
// first, as PyTorch and the reference take it; with 1 it is exactly a + b or a - b).
cpu::BinaryKernel kernel_for(BinaryOp op, double alpha, float& alpha_f) {
  alpha_f = static_cast<float>(alpha);
  switch (op) {
    case BinaryOp::add: return alpha_f == 1.0f ? cpu::BinaryKernel::add : cpu::BinaryKernel::add_scaled;
    case BinaryOp::sub:
      alpha_f = -alpha_f;
      return alpha_f == -1.0f ? cpu::BinaryKernel::sub : cpu::BinaryKernel::add_scaled;
    case BinaryOp::mul: return cpu::BinaryKernel::mul;
    case BinaryOp::div: break;
  }
  return cpu::BinaryKernel::div;
}

// a op b where each operand is a float32 view (or a single float, strides all 0).
bool binary_views(BinaryOp op, const float* a, const Tensor& a_view, const float* b, const Tensor& b_view,
                  double alpha, Tensor& out, Isa isa) {
  Sizes shape;
  if (!broadcast(a_view.sizes, b_view.sizes, shape)) return false;
  Tensor result = Tensor::uninitialized(DType::float32, shape);
  if (result.numel() > 0) {
    float alpha_f = 1;
    const cpu::BinaryKernel kernel = kernel_for(op, alpha, alpha_f);
    const std::vector<Dim> dims = coalesce(shape, expanded_strides(a_view, shape), expanded_strides(b_view, shape));
    run_binary(kernel, alpha_f, a, b, result.data<float>(), dims, isa);
  }
  out = std::move(result);
  return true;
}

bool has_data(const Tensor& t) { return t.buffer != nullptr && t.sizes.size() == t.strides.size(); }

// A 0-dim float64 operand beside a float32 tensor with dims: the result is float32 and
// the value is rounded to float first (PyTorch's CPU scalar; ref::binary's opmath operand).
bool is_double_scalar(const Tensor& t) { return t.dtype == DType::float64 && t.dim() == 0; }

void gelu_isa(Isa isa, const float* x, float* y, std::int64_t n, bool tanh_approx) {
  switch (isa) {
    case Isa::avx512: return cpu::avx512::gelu_f32(x, y, n, tanh_approx);
    case Isa::avx2: return cpu::avx2::gelu_f32(x, y, n, tanh_approx);
    case Isa::scalar: return cpu::scalar::gelu_f32(x, y, n, tanh_approx);
  }
}

}  // namespace

bool binary(BinaryOp op, const Tensor& a, const Tensor& b, double alpha, Tensor& out, Isa isa) {
  if (!has_data(a) || !has_data(b)) return false;
  const bool a_f32 = a.dtype == DType::float32, b_f32 = b.dtype == DType::float32;
  if (a_f32 && b_f32) return binary_views(op, a.data<const float>(), a, b.data<const float>(), b, alpha, out, isa);
  if (a_f32 && a.dim() > 0 && is_double_scalar(b)) {
    const float value = static_cast<float>(*b.data<const double>());
    return binary_views(op, a.data<const float>(), a, &value, b, alpha, out, isa);
  }
  if (b_f32 && b.dim() > 0 && is_double_scalar(a)) {
    const float value = static_cast<float>(*a.data<const double>());
    return binary_views(op, &value, a, b.data<const float>(), b, alpha, out, isa);
  }
  return false;
}

bool binary_scalar(BinaryOp op, const Tensor& a, double scalar, double alpha, Tensor& out, Isa isa) {
  if (!has_data(a) || a.dtype != DType::float32) return false;
  const float value = static_cast<float>(scalar);
  const Tensor scalar_view;  // 0-dim: no sizes, no strides
  return binary_views(op, a.data<const float>(), a, &value, scalar_view, alpha, out, isa);
}

bool gelu(const Tensor& x, bool tanh_approx, Tensor& out, Isa isa) {
  if (!has_data(x) || x.dtype != DType::float32 || !x.is_contiguous()) return false;
  Tensor result = Tensor::uninitialized(DType::float32, x.sizes);
  const float* in = x.data<const float>();
  float* y = result.data<float>();
  cpu::parallel_for(result.numel(), kGeluElementsPerRange, [&](std::int64_t begin, std::int64_t end) {
    gelu_isa(isa, in + begin, y + begin, end - begin, tanh_approx);
  });
  out = std::move(result);
  return true;
}

bool embedding(const Tensor& weight, const Tensor& indices, Tensor& out) {
  if (!has_data(weight) || !has_data(indices)) return false;
  if (weight.dtype != DType::float32 || weight.dim() != 2 || !weight.is_contiguous()) return false;
  if (indices.dtype != DType::int64 && indices.dtype != DType::int32) return false;
  const std::int64_t rows = weight.sizes[0], width = weight.sizes[1];
  // The indices in row-major order, each checked before anything is allocated.
  std::vector<std::int64_t> ids;
  ids.reserve(static_cast<std::size_t>(indices.numel()));
  bool in_range = true;
  const Sizes& sizes = indices.sizes;
  Sizes index(sizes.size(), 0);
  std::int64_t offset = 0;
  // Steps `index` and `offset` to the next element; false after the last.
  auto advance = [&] {
    for (std::size_t d = sizes.size(); d-- > 0;) {
      offset += indices.strides[d];
      if (++index[d] < sizes[d]) return true;
      offset -= indices.strides[d] * sizes[d];
      index[d] = 0;
    }
    return false;
  };
  if (indices.numel() > 0) {
    do {
      const std::int64_t id = indices.dtype == DType::int64 ? indices.data<const std::int64_t>()[offset]
                                                             : indices.data<const std::int32_t>()[offset];
      in_range = in_range && id >= 0 && id < rows;
      ids.push_back(id);
    } while (advance());
  }
  if (!in_range) return false;
  Sizes out_sizes = sizes;
  out_sizes.push_back(width);
  Tensor result = Tensor::uninitialized(DType::float32, std::move(out_sizes));
  if (width > 0) {
    const float* table = weight.data<const float>();
    float* y = result.data<float>();
    const auto count = static_cast<std::int64_t>(ids.size());
    cpu::parallel_for(count, ceil_div(kEmbeddingFloatsPerRange, width), [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t r = begin; r < end; ++r) {
        std::memcpy(y + r * width, table + ids[static_cast<std::size_t>(r)] * width,
                    static_cast<std::size_t>(width) * sizeof(float));
      }
    });
  }
  out = std::move(result);
  return true;
}

}  // namespace kiln::kernels::fast

namespace kiln::kernels {

void apply_epilogue(cpu::Isa isa, Epilogue epilogue, float* y, std::int64_t count) {
  if (epilogue != Epilogue::none) fast::gelu_isa(isa, y, y, count, epilogue == Epilogue::gelu_tanh);
}

}  // namespace kiln::kernels
