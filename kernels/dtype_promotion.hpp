// PyTorch's type promotion (c10 promoteTypes and ATen's result_type), for kiln's dtypes.
// Shape inference uses it to type the graph and the executor to pick kernels' compute
// dtypes, so both agree with each other and with PyTorch.
#pragma once

#include <optional>

#include "kiln/dtype.hpp"

namespace kiln::kernels {

// 0 bool, 1 integer, 2 floating.
constexpr int dtype_category(DType t) {
  switch (t) {
    case DType::bool_: return 0;
    case DType::uint8:
    case DType::int8:
    case DType::int16:
    case DType::int32:
    case DType::int64: return 1;
    default: return 2;
  }
}

// The dtype a wrapped number (a Python scalar, or a 0-dim tensor from a TorchScript
// constants table) takes part in promotion as: floats are the default float32.
constexpr DType wrapped_number_dtype(DType t) {
  return dtype_category(t) == 2 ? DType::float32 : dtype_category(t) == 1 ? DType::int64 : DType::bool_;
}

// promoteTypes(a, b).
constexpr DType promote_types(DType a, DType b) {
  if (a == b) return a;
  if (a == DType::bool_) return b;
  if (b == DType::bool_) return a;
  const int ca = dtype_category(a), cb = dtype_category(b);
  if (ca == 2 && cb == 2) {
    if (a == DType::float64 || b == DType::float64) return DType::float64;
    return DType::float32;  // float32 with a half type, or float16 with bfloat16
  }
  if (ca == 2) return a;
  if (cb == 2) return b;
  if (a == DType::uint8 || b == DType::uint8) {
    const DType other = a == DType::uint8 ? b : a;
    return other == DType::int8 ? DType::int16 : other;
  }
  auto rank = [](DType t) {
    return t == DType::int8 ? 1 : t == DType::int16 ? 2 : t == DType::int32 ? 3 : 4;
  };
  return rank(a) >= rank(b) ? a : b;
}

// result_type over operands in three tiers: tensors with dims, 0-dim tensors, and Python
// numbers (an int is int64, a float the default float32, a bool bool). A lower tier only
// matters when its category is higher.
struct ResultType {
  std::optional<DType> dim, zero, wrapped;

  void add_tensor(DType t, bool zero_dim) {
    auto& slot = zero_dim ? zero : dim;
    slot = slot ? promote_types(*slot, t) : t;
  }
  void add_number(DType natural) { wrapped = wrapped ? promote_types(*wrapped, natural) : natural; }

  static std::optional<DType> combine(std::optional<DType> higher, std::optional<DType> lower) {
    if (!higher) return lower;
    if (!lower) return higher;
    if (dtype_category(*higher) == 2) return higher;
    if (*higher == DType::bool_ || dtype_category(*lower) == 2) return promote_types(*higher, *lower);
    return higher;
  }
  std::optional<DType> result() const { return combine(dim, combine(zero, wrapped)); }
};

}  // namespace kiln::kernels
