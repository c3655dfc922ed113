// softmax, log_softmax and layer_norm: each row is read into doubles, normalized there and
// rounded once when stored.
#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/reference/checks.hpp"
#include "kernels/reference/indexing.hpp"
#include "kernels/reference/reference.hpp"

namespace kiln::kernels::ref {

namespace {

// Calls row(values, in_base, out_base) for each line of `a` along `dim`, with `values`
// the line converted to `as`; the result is laid out like `a` contiguously, so the line
// sits at out_base + i * out_step.
template <class F>
void for_each_line(const Tensor& a, std::size_t dim, const std::vector<std::int64_t>& out_strides, DType as, F&& line) {
  std::vector<std::int64_t> outer_sizes = a.sizes;
  outer_sizes[dim] = 1;
  const std::int64_t length = a.sizes[dim], step = a.strides[dim];
  std::vector<double> values(static_cast<std::size_t>(length));
  walk<2>(outer_sizes, {a.strides, out_strides}, [&](std::int64_t, const std::array<std::int64_t, 2>& o) {
    for (std::int64_t i = 0; i < length; ++i) {
      values[static_cast<std::size_t>(i)] = load_float_as(a, o[0] + i * step, as);
    }
    line(values, o[1]);
  });
}

// The maximum, or NaN if any value is NaN (then the whole line is NaN, as in PyTorch).
double line_max(const std::vector<double>& values) {
  double m = -std::numeric_limits<double>::infinity();
  for (const double v : values) {
    if (std::isnan(v)) return v;
    m = std::max(m, v);
  }
  return m;
}

enum class SoftmaxKind { plain, log };

Tensor softmax_impl(const Tensor& a, std::int64_t dim, DType out, SoftmaxKind kind, const char* name) {
  if (!is_floating(out)) fail(text(name, "(): expected a floating point output dtype, but got ", out));
  const auto d = static_cast<std::size_t>(wrap_dim(dim, static_cast<std::int64_t>(a.dim())));
  Tensor result = Tensor::empty(out, a.sizes);
  if (a.dim() == 0) {
    // One element: exp(x - x) / exp(x - x), which is 1 (NaN for inf or NaN).
    const double x = load_double_at(a, 0);
    store_double(result, 0, kind == SoftmaxKind::log ? x - x : std::exp(x - x));
    return result;
  }
  const std::int64_t out_step = result.strides[d];
  for_each_line(a, d, result.strides, out, [&](const std::vector<double>& values, std::int64_t base) {
    // Subtracting the max keeps exp in range; a row of -inf gives NaN, as in PyTorch.
    const double m = line_max(values);
    double total = 0;
    for (const double v : values) total += std::exp(v - m);
    const double log_total = std::log(total);
    for (std::size_t i = 0; i < values.size(); ++i) {
      const double shifted = values[i] - m;
      const double y = kind == SoftmaxKind::log ? shifted - log_total : std::exp(shifted) / total;
      store_double(result, base + static_cast<std::int64_t>(i) * out_step, y);
    }
  });
  return result;
}

// A weight or bias as doubles, checked against normalized_shape.
std::vector<double> affine_values(const Tensor* t, const std::vector<std::int64_t>& normalized_shape,
                                  const char* what) {
  if (!t) return {};
  if (t->sizes != normalized_shape) {
    fail(text("Expected ", what, " to be of same shape as normalized_shape, but got ", what, " of shape ",
              shape_string(t->sizes), " and normalized_shape = ", shape_string(normalized_shape)));
  }
  return elements<double>(*t);
}

void check_layer_norm_input(const Tensor& x, const std::vector<std::int64_t>& normalized_shape) {
  if (normalized_shape.empty()) {
    fail(text("Expected normalized_shape to be at least 1-dimensional, i.e., containing at least one element, ",
              "but got normalized_shape = []"));
  }
  const std::size_t k = normalized_shape.size();
  const bool matches = x.dim() >= k && std::equal(normalized_shape.begin(), normalized_shape.end(),
                                                  x.sizes.end() - static_cast<std::ptrdiff_t>(k));
  if (!matches) {
    std::string expected = "[*";
    for (const std::int64_t s : normalized_shape) expected.append(", ").append(std::to_string(s));
    fail(text("Given normalized_shape=", shape_string(normalized_shape), ", expected input with shape ", expected,
              "], but got input of size", shape_string(x.sizes)));
  }
}

}  // namespace

Tensor softmax(const Tensor& a, std::int64_t dim, DType out) {
  return softmax_impl(a, dim, out, SoftmaxKind::plain, "softmax");
}

Tensor log_softmax(const Tensor& a, std::int64_t dim, DType out) {
  return softmax_impl(a, dim, out, SoftmaxKind::log, "log_softmax");
}

Tensor layer_norm(const Tensor& x, const std::vector<std::int64_t>& normalized_shape, const Tensor* weight,
                  const Tensor* bias, double eps) {
  check_layer_norm_input(x, normalized_shape);
  if (!is_floating(x.dtype)) fail(text("layer_norm(): expected a floating point input, but got ", x.dtype));
  const std::vector<double> w = affine_values(weight, normalized_shape, "weight");
  const std::vector<double> b = affine_values(bias, normalized_shape, "bias");

  // Rows are the leading dims; each row's elements are the trailing (normalized) dims.
  const std::size_t lead = x.dim() - normalized_shape.size();
  const std::vector<std::int64_t> row_sizes(x.sizes.begin(), x.sizes.begin() + static_cast<std::ptrdiff_t>(lead));
  const std::vector<std::int64_t> row_strides(x.strides.begin(), x.strides.begin() + static_cast<std::ptrdiff_t>(lead));
  const std::vector<std::int64_t> inner_strides(x.strides.begin() + static_cast<std::ptrdiff_t>(lead), x.strides.end());
  std::int64_t n = 1;
  for (const std::int64_t s : normalized_shape) n *= s;

  Tensor result = Tensor::empty(x.dtype, x.sizes);
  std::vector<double> row(static_cast<std::size_t>(n));
  walk<1>(row_sizes, {row_strides}, [&](std::int64_t r, const std::array<std::int64_t, 1>& base) {
    walk<1>(normalized_shape, {inner_strides}, [&](std::int64_t i, const std::array<std::int64_t, 1>& o) {
      row[static_cast<std::size_t>(i)] = load_double_at(x, base[0] + o[0]);
    });
    double mean = 0;
    for (const double v : row) mean += v;
    mean /= static_cast<double>(n);
    double var = 0;  // biased: the mean of squared deviations
    for (const double v : row) var += (v - mean) * (v - mean);
    var /= static_cast<double>(n);
    const double rstd = 1 / std::sqrt(var + eps);
    for (std::size_t i = 0; i < row.size(); ++i) {
      double y = (row[i] - mean) * rstd;
      if (!w.empty()) y *= w[i];
      if (!b.empty()) y += b[i];
      store_double(result, r * n + static_cast<std::int64_t>(i), y);
    }
  });
  return result;
}

}  // namespace kiln::kernels::ref
