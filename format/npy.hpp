// NpyArray, read_npy and write_npy — NumPy's .npy format, read and written by kiln itself.
//
// Versions 1.0, 2.0 and 3.0; little-endian (or single-byte) data in C order; dtypes
// float16/32/64, int8/16/32/64, uint8 and bool. Anything else (big-endian, Fortran order,
// object arrays, a header or data size that disagrees with the file) is a kiln::Error
// naming the file and what is wrong, before any large allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "kiln/dtype.hpp"

namespace kiln::format {

struct NpyArray {
  DType dtype = DType::float32;
  std::vector<std::int64_t> shape;  // empty for a 0-d array
  std::vector<std::byte> data;      // C order, little-endian, numel() * dtype_size(dtype) bytes

  std::int64_t numel() const;
  // The data reinterpreted as T; T must match dtype's size. For tests and tools.
  template <typename T>
  std::span<const T> values() const {
    return {reinterpret_cast<const T*>(data.data()), data.size() / sizeof(T)};
  }
};

// Parses a complete .npy image; `source` names it in errors.
NpyArray parse_npy(std::span<const std::byte> bytes, const std::string& source);
NpyArray read_npy(const std::string& path);

// Version 1.0 when the header fits (as NumPy does), else 2.0.
std::vector<std::byte> serialize_npy(const NpyArray& array);
void write_npy(const std::string& path, const NpyArray& array);

}  // namespace kiln::format
