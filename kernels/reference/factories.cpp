// Kernels that make new tensors from values or from other tensors: full, arange, cat, stack.
#include <cmath>

#include "kernels/dtype_promotion.hpp"
#include "kernels/reference/checks.hpp"
#include "kernels/reference/indexing.hpp"
#include "kernels/reference/reference.hpp"

namespace kiln::kernels::ref {

namespace {

// PyTorch's cat skips 1-D empty tensors whatever their rank elsewhere (legacy behaviour).
bool skipped_by_cat(const Tensor& t) { return t.dim() == 1 && t.sizes[0] == 0; }

void check_cat_shapes(const std::vector<Tensor>& tensors, const Tensor& first, std::size_t dim) {
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    if (skipped_by_cat(t)) continue;
    if (t.dim() == 0) fail(text("zero-dimensional tensor (at position ", i, ") cannot be concatenated"));
    if (t.dim() != first.dim()) {
      fail(text("Tensors must have same number of dimensions: got ", first.dim(), " and ", t.dim()));
    }
    for (std::size_t d = 0; d < t.dim(); ++d) {
      if (d != dim && t.sizes[d] != first.sizes[d]) {
        fail(text("Sizes of tensors must match except in dimension ", dim, ". Expected size ", first.sizes[d],
                  " but got size ", t.sizes[d], " for tensor number ", i, " in the list."));
      }
    }
  }
}

}  // namespace

Tensor full(const std::vector<std::int64_t>& sizes, Scalar value, DType dtype) {
  Tensor out = Tensor::empty(dtype, sizes);
  const std::int64_t n = out.numel();
  for (std::int64_t i = 0; i < n; ++i) {
    if (value.kind == Scalar::Kind::floating) {
      store_double(out, i, value.f);
    } else {
      store_int(out, i, value.as_int());
    }
  }
  return out;
}

Tensor arange(double start, double end, double step, DType dtype) {
  if (step == 0) fail("step must be nonzero");
  if (!std::isfinite(start) || !std::isfinite(end)) fail(text("unsupported range: ", start, " -> ", end));
  if (!((step > 0 && end >= start) || (step < 0 && end <= start))) {
    fail("upper bound and lower bound inconsistent with step sign");
  }
  // The count from the doubles, then the values in the dtype's accumulate type: double
  // for floating dtypes, int64 (start and step truncated) for integers, so arange(0, 1,
  // 0.1, dtype=int64) is ten zeros, as in PyTorch.
  const double count = std::ceil((end - start) / step);
  if (!(count >= 0 && count < 0x1p63)) fail("invalid size, possible overflow?");
  Tensor out = Tensor::empty(dtype, {static_cast<std::int64_t>(count)});
  const std::int64_t n = out.numel();
  if (is_floating(dtype)) {
    for (std::int64_t i = 0; i < n; ++i) store_double(out, i, start + static_cast<double>(i) * step);
  } else {
    const auto first = static_cast<std::uint64_t>(floating_to_int(DType::int64, start));
    const auto stride = static_cast<std::uint64_t>(floating_to_int(DType::int64, step));
    for (std::int64_t i = 0; i < n; ++i) {
      store_int(out, i, static_cast<std::int64_t>(first + static_cast<std::uint64_t>(i) * stride));
    }
  }
  return out;
}

Tensor cat(const std::vector<Tensor>& tensors, std::int64_t dim) {
  if (tensors.empty()) fail("torch.cat(): expected a non-empty list of Tensors");
  DType dtype = tensors[0].dtype;
  for (const Tensor& t : tensors) dtype = promote_types(dtype, t.dtype);
  const Tensor* first = nullptr;
  for (const Tensor& t : tensors) {
    if (!skipped_by_cat(t)) {
      first = &t;
      break;
    }
  }
  if (!first) return Tensor::empty(dtype, {0});
  if (first->dim() == 0) fail("zero-dimensional tensor (at position 0) cannot be concatenated");
  const auto d = static_cast<std::size_t>(wrap_dim(dim, static_cast<std::int64_t>(first->dim())));
  check_cat_shapes(tensors, *first, d);

  std::vector<std::int64_t> sizes = first->sizes;
  sizes[d] = 0;
  for (const Tensor& t : tensors) {
    if (!skipped_by_cat(t) && __builtin_add_overflow(sizes[d], t.sizes[d], &sizes[d])) {
      fail("torch.cat(): the result has too many elements");
    }
  }
  Tensor out = Tensor::empty(dtype, sizes);
  std::int64_t position = 0;
  for (const Tensor& t : tensors) {
    if (skipped_by_cat(t)) continue;
    Tensor part = narrow(out, static_cast<std::int64_t>(d), position, t.sizes[d]);
    copy_into(part, t);
    position += t.sizes[d];
  }
  return out;
}

Tensor stack(const std::vector<Tensor>& tensors, std::int64_t dim) {
  if (tensors.empty()) fail("stack expects a non-empty TensorList");
  for (std::size_t i = 1; i < tensors.size(); ++i) {
    if (tensors[i].sizes != tensors[0].sizes) {
      fail(text("stack expects each tensor to be equal size, but got ", shape_string(tensors[0].sizes),
                " at entry 0 and ", shape_string(tensors[i].sizes), " at entry ", i));
    }
  }
  const std::int64_t d = wrap_dim(dim, static_cast<std::int64_t>(tensors[0].dim()) + 1);
  std::vector<Tensor> parts;
  parts.reserve(tensors.size());
  for (const Tensor& t : tensors) parts.push_back(unsqueeze(t, d));
  return cat(parts, d);
}

}  // namespace kiln::kernels::ref
