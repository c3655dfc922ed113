// Reductions and scans: sum, mean, norm, max/min, argmax, cumsum.
//
// Floating results accumulate in double and round once at the end (cumsum rounds each
// prefix, as PyTorch's CPU cumsum, which also accumulates in double); integer results
// accumulate in uint64, wrapping like PyTorch's int64 sums.
#include <cmath>
#include <limits>

#include "kernels/reference/checks.hpp"
#include "kernels/reference/indexing.hpp"
#include "kernels/reference/reference.hpp"

namespace kiln::kernels::ref {

namespace {

using Offsets1 = std::array<std::int64_t, 1>;

// The input dims a reduction keeps (walked once per result element) and those it reduces
// (walked inside each).
struct Reduction {
  std::vector<std::int64_t> out_sizes;
  std::vector<std::int64_t> kept_sizes, kept_strides;
  std::vector<std::int64_t> reduced_sizes, reduced_strides;
  std::int64_t count = 1;  // elements per result
};

// `dims` empty means all dims. A 0-dim tensor accepts dim 0 or -1 and reduces its one element.
Reduction plan_reduction(const Tensor& a, const std::vector<std::int64_t>& dims, bool keepdim) {
  const auto rank = static_cast<std::int64_t>(a.dim());
  std::vector<bool> reduced(static_cast<std::size_t>(std::max<std::int64_t>(rank, 1)), dims.empty());
  std::vector<bool> seen(reduced.size(), false);
  for (const std::int64_t d : dims) {
    const auto w = static_cast<std::size_t>(wrap_dim(d, rank));
    if (seen[w]) fail(text("dim ", w, " appears multiple times in the list of dims"));
    seen[w] = true;
    reduced[w] = true;
  }
  Reduction r;
  for (std::size_t d = 0; d < a.dim(); ++d) {
    if (reduced[d]) {
      r.reduced_sizes.push_back(a.sizes[d]);
      r.reduced_strides.push_back(a.strides[d]);
      r.count *= a.sizes[d];
      if (keepdim) r.out_sizes.push_back(1);
    } else {
      r.kept_sizes.push_back(a.sizes[d]);
      r.kept_strides.push_back(a.strides[d]);
      r.out_sizes.push_back(a.sizes[d]);
    }
  }
  return r;
}

// Calls reduce(n, base) for each result element n, base being the offset of its first input.
template <class F>
void for_each_result(const Reduction& r, F&& reduce) {
  walk<1>(r.kept_sizes, {r.kept_strides}, [&](std::int64_t n, const Offsets1& o) { reduce(n, o[0]); });
}

// Calls visit(offset) for each input element of the result at `base`.
template <class F>
void for_each_input(const Reduction& r, std::int64_t base, F&& visit) {
  walk<1>(r.reduced_sizes, {r.reduced_strides}, [&](std::int64_t, const Offsets1& o) { visit(base + o[0]); });
}

double sum_as(const Tensor& a, const Reduction& r, std::int64_t base, DType as) {
  double acc = 0;
  for_each_input(r, base, [&](std::int64_t off) { acc += load_float_as(a, off, as); });
  return acc;
}

// The p-norm of one result's elements; p = 0 counts nonzeros, +-inf is max/min |x|.
double vector_norm(const Tensor& a, const Reduction& r, std::int64_t base, double p) {
  if (std::isinf(p)) {
    double best = p > 0 ? 0 : std::numeric_limits<double>::infinity();
    bool nan = false;
    for_each_input(r, base, [&](std::int64_t off) {
      const double x = std::fabs(load_double_at(a, off));
      nan = nan || std::isnan(x);
      best = p > 0 ? std::max(best, x) : std::min(best, x);
    });
    return nan ? std::nan("") : best;
  }
  double acc = 0;
  for_each_input(r, base, [&](std::int64_t off) {
    const double x = std::fabs(load_double_at(a, off));
    acc += p == 0 ? (x != 0) : p == 1 ? x : p == 2 ? x * x : std::pow(x, p);
  });
  if (p == 0 || p == 1) return acc;
  return p == 2 ? std::sqrt(acc) : std::pow(acc, 1 / p);
}

// max or min of all elements; NaN wins.
Tensor extreme_all(const Tensor& a, bool max, const char* name) {
  if (a.numel() == 0) {
    fail(text(name, "(): Expected reduction dim to be specified for input.numel() == 0. ",
              "Specify the reduction dim with the 'dim' argument."));
  }
  Tensor out = Tensor::empty(a.dtype, {});
  const std::array<std::vector<std::int64_t>, 1> strides{a.strides};
  if (is_floating(a.dtype)) {
    double best = load_double_at(a, 0);
    walk<1>(a.sizes, strides, [&](std::int64_t, const Offsets1& o) {
      const double x = load_double_at(a, o[0]);
      if (std::isnan(best)) return;
      if (std::isnan(x) || (max ? x > best : x < best)) best = x;
    });
    store_double(out, 0, best);
  } else {
    std::int64_t best = load_int_at(a, 0);
    walk<1>(a.sizes, strides, [&](std::int64_t, const Offsets1& o) {
      const std::int64_t x = load_int_at(a, o[0]);
      if (max ? x > best : x < best) best = x;
    });
    store_int(out, 0, best);
  }
  return out;
}

// The position of the first maximum (the first NaN, if any) among elements visited in order.
struct ArgmaxState {
  std::int64_t index = -1, position = 0;
  double best = 0;
  std::int64_t best_int = 0;

  void see_float(double x) {
    if (index < 0 || (!std::isnan(best) && (std::isnan(x) || x > best))) {
      best = x;
      index = position;
    }
    ++position;
  }
  void see_int(std::int64_t x) {
    if (index < 0 || x > best_int) {
      best_int = x;
      index = position;
    }
    ++position;
  }
};

}  // namespace

Tensor sum(const Tensor& a, const std::vector<std::int64_t>& dims, bool keepdim, DType out) {
  const Reduction r = plan_reduction(a, dims, keepdim);
  Tensor result = Tensor::empty(out, r.out_sizes);
  if (is_floating(out)) {
    for_each_result(r, [&](std::int64_t n, std::int64_t base) { store_double(result, n, sum_as(a, r, base, out)); });
  } else {
    for_each_result(r, [&](std::int64_t n, std::int64_t base) {
      std::uint64_t acc = 0;
      for_each_input(r, base, [&](std::int64_t off) { acc += static_cast<std::uint64_t>(load_int_as(a, off, out)); });
      store_int(result, n, static_cast<std::int64_t>(acc));
    });
  }
  return result;
}

Tensor mean(const Tensor& a, const std::vector<std::int64_t>& dims, bool keepdim, DType out) {
  if (!is_floating(out)) {
    fail(text("mean(): could not infer output dtype. ",
              "Input dtype must be either a floating point or complex dtype. Got: ", out));
  }
  const Reduction r = plan_reduction(a, dims, keepdim);
  Tensor result = Tensor::empty(out, r.out_sizes);
  for_each_result(r, [&](std::int64_t n, std::int64_t base) {
    const double m = r.count == 0 ? std::nan("") : sum_as(a, r, base, out) / static_cast<double>(r.count);
    store_double(result, n, m);
  });
  return result;
}

Tensor norm(const Tensor& a, double p, const std::vector<std::int64_t>& dims, bool keepdim) {
  if (!is_floating(a.dtype)) {
    fail(text("linalg.vector_norm: Expected a floating point or complex tensor as input. Got ", a.dtype));
  }
  const Reduction r = plan_reduction(a, dims, keepdim);
  if (r.count == 0 && (p < 0 || std::isinf(p))) {
    fail(text("linalg.vector_norm cannot compute the ", p,
              " norm on an empty tensor because the operation does not have an identity"));
  }
  Tensor result = Tensor::empty(a.dtype, r.out_sizes);
  for_each_result(r, [&](std::int64_t n, std::int64_t base) { store_double(result, n, vector_norm(a, r, base, p)); });
  return result;
}

Tensor max_all(const Tensor& a) { return extreme_all(a, true, "max"); }

Tensor min_all(const Tensor& a) { return extreme_all(a, false, "min"); }

Tensor argmax(const Tensor& a, std::optional<std::int64_t> dim, bool keepdim) {
  std::vector<std::int64_t> dims;
  if (!dim) {
    if (a.numel() == 0) fail("argmax(): Expected reduction dim to be specified for input.numel() == 0.");
  } else {
    const std::int64_t d = wrap_dim(*dim, static_cast<std::int64_t>(a.dim()));
    if (a.dim() > 0 && a.sizes[static_cast<std::size_t>(d)] == 0) {
      fail(text("argmax(): Expected reduction dim ", d, " to have non-zero size."));
    }
    dims.push_back(d);
  }
  // Flattened (no dim): every dim reduced in row-major order, which is the flat index.
  const Reduction r = plan_reduction(a, dims, keepdim);
  Tensor result = Tensor::empty(DType::int64, r.out_sizes);
  const bool floating = is_floating(a.dtype);
  for_each_result(r, [&](std::int64_t n, std::int64_t base) {
    ArgmaxState state;
    for_each_input(r, base, [&](std::int64_t off) {
      if (floating) {
        state.see_float(load_double_at(a, off));
      } else {
        state.see_int(load_int_at(a, off));
      }
    });
    store_int(result, n, state.index);
  });
  return result;
}

Tensor cumsum(const Tensor& a, std::int64_t dim, DType out) {
  const auto d = static_cast<std::size_t>(wrap_dim(dim, static_cast<std::int64_t>(a.dim())));
  Tensor result = Tensor::empty(out, a.sizes);
  if (a.dim() == 0) {
    copy_into(result, cast(a, out));
    return result;
  }
  // Walk every line along `d`: the other dims outside, `d` inside.
  std::vector<std::int64_t> outer_sizes = a.sizes, in_strides = a.strides, out_strides = result.strides;
  const std::int64_t length = a.sizes[d], in_step = a.strides[d], out_step = result.strides[d];
  outer_sizes[d] = 1;
  const bool floating = is_floating(out);
  walk<2>(outer_sizes, {in_strides, out_strides}, [&](std::int64_t, const std::array<std::int64_t, 2>& o) {
    double acc = 0;
    std::uint64_t int_acc = 0;
    for (std::int64_t i = 0; i < length; ++i) {
      if (floating) {
        acc += load_float_as(a, o[0] + i * in_step, out);
        store_double(result, o[1] + i * out_step, acc);
      } else {
        int_acc += static_cast<std::uint64_t>(load_int_as(a, o[0] + i * in_step, out));
        store_int(result, o[1] + i * out_step, static_cast<std::int64_t>(int_acc));
      }
    }
  });
  return result;
}

}  // namespace kiln::kernels::ref
