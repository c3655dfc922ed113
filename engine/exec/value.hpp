// RtValue — what an IR value holds while a graph runs: None, a number, a string, a device,
// a tensor, an int list, or a list/tuple of values. Plain data; copying one copies tensor
// handles (buffers are shared), never tensor data.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/tensor.hpp"

namespace kiln::exec {

struct RtValue {
  enum class Kind { none, int_, float_, bool_, str, device, tensor, int_list, list, tuple };
  Kind kind = Kind::none;
  std::int64_t i = 0;
  double f = 0;
  bool b = false;
  std::string s;  // str, device
  kernels::Tensor t;
  std::vector<std::int64_t> ints;
  std::vector<RtValue> items;  // list (of tensors or others), tuple
  // A 0-dim tensor from the archive's constants table: PyTorch marks these as wrapped
  // numbers, which promote like Python scalars (int64 + CONSTANTS.c0 holding 2.5 is float32).
  bool wrapped = false;

  static RtValue none() { return {}; }
  static RtValue of_int(std::int64_t v) {
    RtValue r;
    r.kind = Kind::int_;
    r.i = v;
    return r;
  }
  static RtValue of_float(double v) {
    RtValue r;
    r.kind = Kind::float_;
    r.f = v;
    return r;
  }
  static RtValue of_bool(bool v) {
    RtValue r;
    r.kind = Kind::bool_;
    r.b = v;
    return r;
  }
  static RtValue of_tensor(kernels::Tensor t) {
    RtValue r;
    r.kind = Kind::tensor;
    r.t = std::move(t);
    return r;
  }
  static RtValue of_ints(std::vector<std::int64_t> v) {
    RtValue r;
    r.kind = Kind::int_list;
    r.ints = std::move(v);
    return r;
  }
};

}  // namespace kiln::exec
