// View kernels: new sizes, strides and offset over the same buffer, as PyTorch's views.
// reshape and flatten copy only when no view can express the result.
#include <algorithm>
#include <optional>

#include "kernels/reference/checks.hpp"
#include "kernels/reference/reference.hpp"

namespace kiln::kernels::ref {

namespace {

Tensor with_geometry(const Tensor& a, std::vector<std::int64_t> sizes, std::vector<std::int64_t> strides,
                     std::int64_t offset) {
  Tensor v = a;
  v.sizes = std::move(sizes);
  v.strides = std::move(strides);
  v.offset = offset;
  return v;
}

std::int64_t size_at(const Tensor& a, std::int64_t d) { return a.sizes[static_cast<std::size_t>(d)]; }

// `shape` with its -1 replaced, checked to hold `numel` elements (PyTorch's infer_size).
std::vector<std::int64_t> infer_size(std::vector<std::int64_t> shape, std::int64_t numel) {
  std::int64_t known = 1;
  std::optional<std::size_t> inferred;
  bool overflow = false;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == -1) {
      if (inferred) fail("only one dimension can be inferred");
      inferred = d;
    } else if (shape[d] >= 0) {
      overflow = overflow || __builtin_mul_overflow(known, shape[d], &known);
    } else {
      fail(text("invalid shape dimension ", shape[d], " at index ", d, " of shape ", shape_string(shape)));
    }
  }
  if (!overflow && (numel == known || (inferred && known > 0 && numel % known == 0))) {
    if (inferred) {
      if (known == 0) {
        fail(text("cannot reshape tensor of 0 elements into shape ", shape_string(shape),
                  " because the unspecified dimension size -1 can be any value and is ambiguous"));
      }
      shape[*inferred] = numel / known;
    }
    return shape;
  }
  fail(text("shape '", shape_string(shape), "' is invalid for input of size ", numel));
}

// Strides giving `a`'s elements the shape `sizes` without a copy, if there are any
// (PyTorch's computeStride): each run of dims that is contiguous in memory may be split
// or merged, but never a dim that spans two such runs.
std::optional<std::vector<std::int64_t>> view_strides(const Tensor& a, const std::vector<std::int64_t>& sizes) {
  const std::vector<std::int64_t>& old_sizes = a.sizes;
  const std::vector<std::int64_t>& old_strides = a.strides;
  if (old_sizes.empty()) return std::vector<std::int64_t>(sizes.size(), 1);
  const std::int64_t numel = a.numel();
  if (numel == 0 && old_sizes == sizes) return old_strides;
  std::vector<std::int64_t> strides(sizes.size());
  if (numel == 0) return contiguous_strides(sizes);

  auto view_d = static_cast<std::int64_t>(sizes.size()) - 1;
  std::int64_t chunk_base_stride = old_strides.back();
  std::int64_t tensor_numel = 1, view_numel = 1;
  for (auto tensor_d = static_cast<std::int64_t>(old_sizes.size()) - 1; tensor_d >= 0; --tensor_d) {
    const auto td = static_cast<std::size_t>(tensor_d);
    tensor_numel *= old_sizes[td];
    const bool chunk_ends =
        tensor_d == 0 || (old_sizes[td - 1] != 1 && old_strides[td - 1] != tensor_numel * chunk_base_stride);
    if (!chunk_ends) continue;
    while (view_d >= 0 && (view_numel < tensor_numel || sizes[static_cast<std::size_t>(view_d)] == 1)) {
      strides[static_cast<std::size_t>(view_d)] = view_numel * chunk_base_stride;
      view_numel *= sizes[static_cast<std::size_t>(view_d)];
      --view_d;
    }
    if (view_numel != tensor_numel) return std::nullopt;
    if (tensor_d > 0) {
      chunk_base_stride = old_strides[td - 1];
      tensor_numel = 1;
      view_numel = 1;
    }
  }
  if (view_d != -1) return std::nullopt;
  return strides;
}

}  // namespace

Tensor view(const Tensor& a, std::vector<std::int64_t> sizes) {
  sizes = infer_size(std::move(sizes), a.numel());
  auto strides = view_strides(a, sizes);
  if (!strides) {
    fail("view size is not compatible with input tensor's size and stride (at least one dimension spans across "
         "two contiguous subspaces). Use .reshape(...) instead.");
  }
  return with_geometry(a, std::move(sizes), std::move(*strides), a.offset);
}

Tensor reshape(const Tensor& a, std::vector<std::int64_t> sizes) {
  sizes = infer_size(std::move(sizes), a.numel());
  if (auto strides = view_strides(a, sizes)) return with_geometry(a, std::move(sizes), std::move(*strides), a.offset);
  return view(contiguous(a), std::move(sizes));
}

Tensor permute(const Tensor& a, const std::vector<std::int64_t>& dims) {
  const auto rank = static_cast<std::int64_t>(a.dim());
  if (static_cast<std::int64_t>(dims.size()) != rank) {
    fail(text("permute(): number of dimensions in the tensor input does not match the length of the desired ordering ",
              "of dimensions i.e. input.dim() = ", rank, " is not equal to len(dims) = ", dims.size()));
  }
  std::vector<std::int64_t> sizes(dims.size()), strides(dims.size());
  std::vector<bool> seen(dims.size(), false);
  for (std::size_t i = 0; i < dims.size(); ++i) {
    const auto d = static_cast<std::size_t>(wrap_dim(dims[i], rank));
    if (seen[d]) fail("permute(): duplicate dims are not allowed.");
    seen[d] = true;
    sizes[i] = a.sizes[d];
    strides[i] = a.strides[d];
  }
  return with_geometry(a, std::move(sizes), std::move(strides), a.offset);
}

Tensor transpose(const Tensor& a, std::int64_t d0, std::int64_t d1) {
  const auto rank = static_cast<std::int64_t>(a.dim());
  const auto i = static_cast<std::size_t>(wrap_dim(d0, rank)), j = static_cast<std::size_t>(wrap_dim(d1, rank));
  if (rank == 0) return a;
  Tensor v = a;
  std::swap(v.sizes[i], v.sizes[j]);
  std::swap(v.strides[i], v.strides[j]);
  return v;
}

Tensor expand(const Tensor& a, const std::vector<std::int64_t>& sizes) {
  if (sizes.size() < a.dim()) {
    fail(text("expand(", a.dtype, "{", shape_string(a.sizes), "}, size=", shape_string(sizes),
              "): the number of sizes provided (", sizes.size(),
              ") must be greater or equal to the number of dimensions in the tensor (", a.dim(), ")"));
  }
  const std::size_t lead = sizes.size() - a.dim();
  std::vector<std::int64_t> out_sizes(sizes.size()), out_strides(sizes.size());
  for (std::size_t i = sizes.size(); i-- > 0;) {
    std::int64_t target = sizes[i];
    if (i < lead) {
      if (target < 0) {
        fail(text("The expanded size of the tensor (", target,
                  ") isn't allowed in a leading, non-existing dimension ", i));
      }
      out_sizes[i] = target;
      out_strides[i] = 0;
      continue;
    }
    const std::int64_t size = a.sizes[i - lead];
    if (target == -1) target = size;
    if (target != size) {
      if (size != 1 || target < 0) {
        fail(text("The expanded size of the tensor (", target, ") must match the existing size (", size,
                  ") at non-singleton dimension ", i, ".  Target sizes: ", shape_string(sizes),
                  ".  Tensor sizes: ", shape_string(a.sizes)));
      }
      out_sizes[i] = target;
      out_strides[i] = 0;
    } else {
      out_sizes[i] = size;
      out_strides[i] = a.strides[i - lead];
    }
  }
  std::int64_t numel = 1;
  for (const std::int64_t s : out_sizes) {
    if (__builtin_mul_overflow(numel, s, &numel)) {
      fail(text("expand(): the shape ", shape_string(out_sizes), " has too many elements"));
    }
  }
  return with_geometry(a, std::move(out_sizes), std::move(out_strides), a.offset);
}

Tensor unsqueeze(const Tensor& a, std::int64_t dim) {
  const auto d = static_cast<std::size_t>(wrap_dim(dim, static_cast<std::int64_t>(a.dim()) + 1));
  Tensor v = a;
  // PyTorch's choice of stride for the new size-1 dim; any would do.
  const std::int64_t stride = d >= a.dim() ? 1 : a.sizes[d] * a.strides[d];
  v.sizes.insert(v.sizes.begin() + static_cast<std::ptrdiff_t>(d), 1);
  v.strides.insert(v.strides.begin() + static_cast<std::ptrdiff_t>(d), stride);
  return v;
}

Tensor squeeze(const Tensor& a, std::optional<std::int64_t> dim) {
  std::vector<bool> drop(a.dim(), false);
  if (dim) {
    const auto d = wrap_dim(*dim, static_cast<std::int64_t>(a.dim()));
    if (a.dim() > 0 && size_at(a, d) == 1) drop[static_cast<std::size_t>(d)] = true;
  } else {
    for (std::size_t d = 0; d < a.dim(); ++d) drop[d] = a.sizes[d] == 1;
  }
  std::vector<std::int64_t> sizes, strides;
  for (std::size_t d = 0; d < a.dim(); ++d) {
    if (drop[d]) continue;
    sizes.push_back(a.sizes[d]);
    strides.push_back(a.strides[d]);
  }
  return with_geometry(a, std::move(sizes), std::move(strides), a.offset);
}

Tensor select(const Tensor& a, std::int64_t dim, std::int64_t index) {
  if (a.dim() == 0) fail("select() cannot be applied to a 0-dim tensor.");
  const auto d = static_cast<std::size_t>(wrap_dim(dim, static_cast<std::int64_t>(a.dim())));
  const std::int64_t size = a.sizes[d];
  if (index < -size || index >= size) {
    fail(text("select(): index ", index, " out of range for tensor of size ", shape_string(a.sizes),
              " at dimension ", d));
  }
  const std::int64_t i = index < 0 ? index + size : index;
  Tensor v = a;
  v.offset += i * a.strides[d];
  v.sizes.erase(v.sizes.begin() + static_cast<std::ptrdiff_t>(d));
  v.strides.erase(v.strides.begin() + static_cast<std::ptrdiff_t>(d));
  return v;
}

Tensor slice(const Tensor& a, std::int64_t dim, std::optional<std::int64_t> start, std::optional<std::int64_t> end,
             std::int64_t step) {
  if (a.dim() == 0) fail("slice() cannot be applied to a 0-dim tensor.");
  if (step <= 0) fail("slice step must be positive");
  const auto d = static_cast<std::size_t>(wrap_dim(dim, static_cast<std::int64_t>(a.dim())));
  const std::int64_t size = a.sizes[d];
  // Python's clamping: negative bounds count from the end, then both clamp into [0, size].
  std::int64_t lo = start.value_or(0), hi = end.value_or(size);
  if (lo < 0) lo += size;
  if (hi < 0) hi += size;
  lo = std::clamp<std::int64_t>(lo, 0, size);
  hi = std::clamp<std::int64_t>(hi, lo, size);
  const std::int64_t length = hi - lo;
  Tensor v = a;
  v.offset += lo * a.strides[d];
  v.sizes[d] = length == 0 ? 0 : (length - 1) / step + 1;
  // A dim of one element needs no step (and a huge step must not overflow the stride).
  if (v.sizes[d] > 1) v.strides[d] = a.strides[d] * step;
  return v;
}

Tensor narrow(const Tensor& a, std::int64_t dim, std::int64_t start, std::int64_t length) {
  if (a.dim() == 0) fail("narrow() cannot be applied to a 0-dim tensor.");
  if (length < 0) fail("narrow(): length must be non-negative.");
  const auto d = wrap_dim(dim, static_cast<std::int64_t>(a.dim()));
  const std::int64_t size = size_at(a, d);
  if (start < -size || start > size) {
    fail(text("start out of range (expected to be in range of [", -size, ", ", size, "], but got ", start, ")"));
  }
  if (start < 0) start += size;
  if (length > size - start) {
    fail(text("start (", start, ") + length (", length, ") exceeds dimension size (", size, ")."));
  }
  return slice(a, d, start, start + length, 1);
}

std::vector<Tensor> split(const Tensor& a, std::int64_t split_size, std::int64_t dim) {
  if (a.dim() == 0) fail("split expects at least a 1-dimensional tensor");
  if (split_size < 0) fail(text("split expects split_size be non-negative, but got split_size=", split_size));
  const auto d = wrap_dim(dim, static_cast<std::int64_t>(a.dim()));
  const std::int64_t size = size_at(a, d);
  if (split_size == 0 && size != 0) {
    fail(text("split_size can only be 0 if dimension size is 0, but got dimension size of ", size));
  }
  // One (empty) piece when the dim is empty, as PyTorch.
  const std::int64_t pieces = size == 0 ? 1 : (size - 1) / split_size + 1;
  std::vector<Tensor> out;
  for (std::int64_t i = 0; i < pieces; ++i) {
    const std::int64_t start = i * split_size;
    out.push_back(narrow(a, d, start, std::min(split_size, size - start)));
  }
  return out;
}

std::vector<Tensor> chunk(const Tensor& a, std::int64_t chunks, std::int64_t dim) {
  if (a.dim() == 0) fail("chunk expects at least a 1-dimensional tensor");
  if (chunks <= 0) fail(text("chunk expects `chunks` to be greater than 0, got: ", chunks));
  const auto d = wrap_dim(dim, static_cast<std::int64_t>(a.dim()));
  const std::int64_t size = size_at(a, d);
  if (size == 0) return std::vector<Tensor>(static_cast<std::size_t>(chunks), a);  // `chunks` empty pieces
  return split(a, (size - 1) / chunks + 1, d);
}

Tensor flatten(const Tensor& a, std::int64_t start_dim, std::int64_t end_dim) {
  if (a.dim() == 0) return reshape(a, {1});
  const auto rank = static_cast<std::int64_t>(a.dim());
  const auto start = wrap_dim(start_dim, rank), end = wrap_dim(end_dim, rank);
  if (start > end) fail("flatten() has invalid args: start_dim cannot come after end_dim");
  if (start == end) return a;
  std::vector<std::int64_t> sizes(a.sizes.begin(), a.sizes.begin() + start);
  std::int64_t merged = 1;
  for (std::int64_t d = start; d <= end; ++d) merged *= size_at(a, d);
  sizes.push_back(merged);
  sizes.insert(sizes.end(), a.sizes.begin() + end + 1, a.sizes.end());
  return reshape(a, std::move(sizes));
}

}  // namespace kiln::kernels::ref
