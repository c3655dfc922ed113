// Bounds-checked gathers: embedding and index_select. Every index is checked before it is
// used, so a bad token id in a model input is an error, never a read out of bounds.
#include "kernels/reference/checks.hpp"
#include "kernels/reference/indexing.hpp"
#include "kernels/reference/reference.hpp"

namespace kiln::kernels::ref {

namespace {

// The indices as int64, each checked against [0, size). PyTorch's own message here is
// "index out of range in self"; this one names the index and the size.
std::vector<std::int64_t> checked_indices(const Tensor& index, std::int64_t size, std::int64_t dim) {
  std::vector<std::int64_t> values = elements<std::int64_t>(index);
  for (const std::int64_t i : values) {
    if (i < 0 || i >= size) fail(text("index ", i, " is out of bounds for dimension ", dim, " with size ", size));
  }
  return values;
}

void check_integer_index(const Tensor& index, const char* what) {
  if (is_floating(index.dtype) || index.dtype == DType::bool_) {
    fail(text(what, " must be an integer tensor, but got ", index.dtype));
  }
}

}  // namespace

Tensor embedding(const Tensor& weight, const Tensor& indices) {
  if (weight.dim() != 2) fail(text("'weight' must be 2-D, but got a ", weight.dim(), "-D tensor"));
  check_integer_index(indices, "embedding(): indices");
  const std::int64_t rows = weight.sizes[0], width = weight.sizes[1];
  const std::vector<std::int64_t> ids = checked_indices(indices, rows, 0);
  std::vector<std::int64_t> sizes = indices.sizes;
  sizes.push_back(width);
  Tensor out = Tensor::empty(weight.dtype, sizes);
  const Tensor table = view(out, {static_cast<std::int64_t>(ids.size()), width});
  for (std::size_t r = 0; r < ids.size(); ++r) {
    Tensor destination = select(table, 0, static_cast<std::int64_t>(r));
    copy_into(destination, select(weight, 0, ids[r]));
  }
  return out;
}

Tensor index_select(const Tensor& a, std::int64_t dim, const Tensor& index) {
  if (index.dim() > 1) fail("index_select(): Index is supposed to be a vector");
  check_integer_index(index, "index_select(): index");
  const auto d = wrap_dim(dim, static_cast<std::int64_t>(a.dim()));
  if (a.dim() == 0) {
    // A 0-dim tensor has one element, at index 0.
    const std::vector<std::int64_t> ids = checked_indices(index, 1, d);
    if (ids.size() != 1) fail("index_select(): Index to scalar can have only 1 value");
    return contiguous(a);
  }
  const std::vector<std::int64_t> ids = checked_indices(index, a.sizes[static_cast<std::size_t>(d)], d);
  std::vector<std::int64_t> sizes = a.sizes;
  sizes[static_cast<std::size_t>(d)] = static_cast<std::int64_t>(ids.size());
  Tensor out = Tensor::empty(a.dtype, sizes);
  for (std::size_t p = 0; p < ids.size(); ++p) {
    Tensor destination = select(out, d, static_cast<std::int64_t>(p));
    copy_into(destination, select(a, d, ids[p]));
  }
  return out;
}

}  // namespace kiln::kernels::ref
