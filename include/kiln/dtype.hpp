// kiln::DType — element types of tensors kiln reads, computes and writes.
//
// The names match PyTorch's (`torch.float32` is "float32"), so messages read the same
// as the ones a PyTorch user knows.
//
//   kiln::dtype_size(kiln::DType::int64);   // 8
//   kiln::dtype_name(kiln::DType::bool_);   // "bool"
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace kiln {

enum class DType : std::uint8_t {
  float32,
  float64,
  float16,
  bfloat16,
  int8,
  int16,
  int32,
  int64,
  uint8,
  bool_,
};

constexpr std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::float64:
    case DType::int64: return 8;
    case DType::float32:
    case DType::int32: return 4;
    case DType::float16:
    case DType::bfloat16:
    case DType::int16: return 2;
    case DType::int8:
    case DType::uint8:
    case DType::bool_: return 1;
  }
  return 0;
}

constexpr std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::float32: return "float32";
    case DType::float64: return "float64";
    case DType::float16: return "float16";
    case DType::bfloat16: return "bfloat16";
    case DType::int8: return "int8";
    case DType::int16: return "int16";
    case DType::int32: return "int32";
    case DType::int64: return "int64";
    case DType::uint8: return "uint8";
    case DType::bool_: return "bool";
  }
  return "?";
}

}  // namespace kiln
