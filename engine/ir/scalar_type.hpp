// PyTorch's ScalarType codes, as TorchScript source and IR constants spell dtypes
// (`torch.to(x, 6)` is float32), mapped to and from kiln::DType.
#pragma once

#include <cstdint>
#include <optional>

#include "kiln/dtype.hpp"

namespace kiln::ir {

// The codes of c10::ScalarType that kiln computes with; others (complex, quantized, the
// float8 family) have no DType and map to nullopt.
constexpr std::optional<DType> dtype_from_scalar_type(std::int64_t code) {
  switch (code) {
    case 0: return DType::uint8;
    case 1: return DType::int8;
    case 2: return DType::int16;
    case 3: return DType::int32;
    case 4: return DType::int64;
    case 5: return DType::float16;
    case 6: return DType::float32;
    case 7: return DType::float64;
    case 11: return DType::bool_;
    case 15: return DType::bfloat16;
    default: return std::nullopt;
  }
}

constexpr std::int64_t scalar_type_code(DType t) {
  switch (t) {
    case DType::uint8: return 0;
    case DType::int8: return 1;
    case DType::int16: return 2;
    case DType::int32: return 3;
    case DType::int64: return 4;
    case DType::float16: return 5;
    case DType::float32: return 6;
    case DType::float64: return 7;
    case DType::bool_: return 11;
    case DType::bfloat16: return 15;
  }
  return -1;
}

}  // namespace kiln::ir
