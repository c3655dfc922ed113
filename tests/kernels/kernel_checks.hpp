// What the kernel tests share: reproducible random tensors, and the comparisons of a fast
// kernel's float32 result against the reference kernel's, with one CHECK per tensor that
// names the first element out of bounds.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/reference/reference.hpp"
#include "kernels/tensor.hpp"

namespace kiln::testing {

// Uniform values in [lo, hi), the same on every platform.
inline kernels::Tensor random_f32(std::vector<std::int64_t> sizes, std::uint64_t seed, double lo = -2, double hi = 2) {
  kernels::Tensor t = kernels::Tensor::empty(DType::float32, std::move(sizes));
  std::uint64_t s = seed * 6364136223846793005ULL + 1442695040888963407ULL;
  float* p = t.data<float>();
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    p[i] = static_cast<float>(lo + static_cast<double>(s >> 11) / 0x1p53 * (hi - lo));
  }
  return t;
}

inline kernels::Tensor abs_of(const kernels::Tensor& t) {
  return kernels::ref::unary(kernels::ref::UnaryOp::abs, t, DType::float32);
}

// Counts elements of `got` (contiguous float32) that fail `ok(got, expected, i)`, then one
// CHECK naming the first.
template <class Ok>
void check_elements(const kernels::Tensor& got, const kernels::Tensor& expected, const std::string& label, Ok ok) {
  REQUIRE(got.sizes == expected.sizes);
  REQUIRE(got.is_contiguous());
  const float* g = got.data<const float>();
  const float* e = expected.data<const float>();
  std::int64_t bad = 0, first = -1;
  for (std::int64_t i = 0; i < got.numel(); ++i)
    if (!ok(g[i], e[i], i) && bad++ == 0) first = i;
  INFO(label);
  INFO("first bad element ", first, ": got ", first >= 0 ? g[first] : 0.0f, ", expected ", first >= 0 ? e[first] : 0.0f);
  CHECK(bad == 0);
}

// Every element within `abs_tol` or `rel_tol * |expected|`; NaN where the reference has NaN.
inline void check_close(const kernels::Tensor& got, const kernels::Tensor& expected, double abs_tol, double rel_tol,
                        const std::string& label) {
  check_elements(got, expected, label, [&](float g, float e, std::int64_t) {
    const double d = std::fabs(static_cast<double>(g) - e);
    return (std::isnan(g) && std::isnan(e)) || g == e || d <= abs_tol || d <= rel_tol * std::fabs(e);
  });
}

// A float32 dot product of length k against the reference's double one: within the
// worst-case rounding bound gamma_(k+2) * magnitude + u * |expected|, where `magnitude` is
// the same product on absolute values (|a| @ |b| + |bias|).
inline void check_dot_bound(const kernels::Tensor& got, const kernels::Tensor& expected, const kernels::Tensor& magnitude,
                            std::int64_t k, const std::string& label) {
  const double u = 0x1p-24, n = static_cast<double>(k);
  const double gamma = (n + 2) * u / (1 - (n + 2) * u);  // n + 2: magnitude itself is rounded
  const float* s = magnitude.data<const float>();
  check_elements(got, expected, label, [&](float g, float e, std::int64_t i) {
    return std::fabs(static_cast<double>(g) - e) <= gamma * s[i] + u * std::fabs(e);
  });
}

}  // namespace kiln::testing
