// Walking strided tensors: the one loop the reference kernels use to visit elements of
// any strides (transposed, sliced, 0-stride expanded) in row-major order, and the reads,
// writes and copies built on it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/tensor.hpp"

namespace kiln::kernels::ref {

// Strides that read a tensor of `sizes`/`strides` as if expanded to `shape`: dims align at
// the end, and a missing or size-1 dim gets stride 0. The sizes must broadcast to shape.
inline std::vector<std::int64_t> broadcast_strides(const std::vector<std::int64_t>& sizes,
                                                   const std::vector<std::int64_t>& strides,
                                                   const std::vector<std::int64_t>& shape) {
  std::vector<std::int64_t> out(shape.size(), 0);
  const std::size_t lead = shape.size() - sizes.size();
  for (std::size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] != 1) out[lead + d] = strides[d];
  }
  return out;
}

inline std::vector<std::int64_t> broadcast_strides(const Tensor& t, const std::vector<std::int64_t>& shape) {
  return broadcast_strides(t.sizes, t.strides, shape);
}

// Calls f(n, offsets) for each element of `sizes` in row-major order: n counts from 0 (the
// flat index in a contiguous result) and offsets[k] is the element's offset under
// strides[k]. Nothing is visited when a size is 0; a 0-dim shape is one element.
template <std::size_t N, class F>
void walk(const std::vector<std::int64_t>& sizes, const std::array<std::vector<std::int64_t>, N>& strides, F&& f) {
  const std::size_t rank = sizes.size();
  for (const std::int64_t s : sizes) {
    if (s == 0) return;
  }
  std::array<std::int64_t, N> base{};
  if (rank == 0) {
    f(std::int64_t{0}, base);
    return;
  }
  const std::int64_t inner = sizes[rank - 1];
  std::array<std::int64_t, N> inner_stride{};
  for (std::size_t k = 0; k < N; ++k) inner_stride[k] = strides[k][rank - 1];
  std::vector<std::int64_t> index(rank, 0);
  std::int64_t n = 0;
  for (;;) {
    std::array<std::int64_t, N> offsets = base;
    for (std::int64_t i = 0; i < inner; ++i) {
      f(n++, offsets);
      for (std::size_t k = 0; k < N; ++k) offsets[k] += inner_stride[k];
    }
    // Carry into the outer dims, odometer style.
    std::size_t d = rank - 1;
    for (;;) {
      if (d == 0) return;
      --d;
      if (++index[d] < sizes[d]) {
        for (std::size_t k = 0; k < N; ++k) base[k] += strides[k][d];
        break;
      }
      for (std::size_t k = 0; k < N; ++k) base[k] -= strides[k][d] * (sizes[d] - 1);
      index[d] = 0;
    }
  }
}

// The opmath (internal arithmetic) type of a floating compute dtype: PyTorch's CPU kernels
// compute half and bfloat16 in float.
inline DType opmath(DType compute) { return compute == DType::float64 ? DType::float64 : DType::float32; }

// The element at `offset` converted to `as`, exactly as PyTorch casts an operand to the
// compute dtype: a floating `as` rounds (an integer source once), an integer `as` wraps.
inline double load_float_as(const Tensor& t, std::int64_t offset, DType as) {
  if (is_floating(t.dtype)) return round_to(as, load_double_at(t, offset));
  return int_to_floating(as, load_int_at(t, offset));
}

inline std::int64_t load_int_as(const Tensor& t, std::int64_t offset, DType as) {
  if (is_floating(t.dtype)) return floating_to_int(as, load_double_at(t, offset));
  return wrap_to(as, load_int_at(t, offset));
}

// Copies one element across dtypes without a detour: integers never pass through double.
inline void copy_element(const Tensor& src, std::int64_t src_offset, Tensor& dst, std::int64_t dst_offset) {
  if (is_floating(src.dtype)) {
    store_double(dst, dst_offset, load_double_at(src, src_offset));
  } else {
    store_int(dst, dst_offset, load_int_at(src, src_offset));
  }
}

// dst = src elementwise (same sizes, any strides, converting to dst's dtype). dst may be a
// view into a larger result, such as a slice being filled by cat.
inline void copy_into(Tensor& dst, const Tensor& src) {
  const bool same = dst.dtype == src.dtype && dst.dtype != DType::bool_;  // bool bytes are normalized
  if (same && dst.buffer->writable && dst.is_contiguous() && src.is_contiguous()) {
    std::memcpy(dst.bytes(), src.bytes(), static_cast<std::size_t>(src.numel()) * dtype_size(src.dtype));
    return;
  }
  // A view whose rows are contiguous (a permute that keeps the last dim, as attention's
  // head merge does): a row at a time, not an element at a time.
  if (same && dst.buffer->writable && dst.is_contiguous() && !src.sizes.empty() && src.strides.back() == 1 &&
      src.sizes.back() > 1) {
    const std::size_t row = static_cast<std::size_t>(src.sizes.back()) * dtype_size(src.dtype);
    const std::vector<std::int64_t> outer(dst.sizes.begin(), dst.sizes.end() - 1);
    const std::vector<std::int64_t> dst_strides(dst.strides.begin(), dst.strides.end() - 1);
    const std::vector<std::int64_t> src_strides(src.strides.begin(), src.strides.end() - 1);
    const std::size_t item = dtype_size(src.dtype);
    walk<2>(outer, {dst_strides, src_strides}, [&](std::int64_t, const std::array<std::int64_t, 2>& o) {
      std::memcpy(dst.bytes() + o[0] * static_cast<std::int64_t>(item), src.bytes() + o[1] * static_cast<std::int64_t>(item), row);
    });
    return;
  }
  walk<2>(dst.sizes, {dst.strides, src.strides},
          [&](std::int64_t, const std::array<std::int64_t, 2>& o) { copy_element(src, o[1], dst, o[0]); });
}

// Every element of `t` in row-major order, as T (double: load_double_at; an integer T: the
// value wrapped into T, for exact integer arithmetic).
template <class T>
std::vector<T> elements(const Tensor& t) {
  std::vector<T> out(static_cast<std::size_t>(t.numel()));
  walk<1>(t.sizes, {t.strides}, [&](std::int64_t n, const std::array<std::int64_t, 1>& o) {
    if constexpr (std::is_floating_point_v<T>) {
      out[static_cast<std::size_t>(n)] = load_double_at(t, o[0]);
    } else {
      out[static_cast<std::size_t>(n)] = static_cast<T>(load_int_at(t, o[0]));
    }
  });
  return out;
}

}  // namespace kiln::kernels::ref
