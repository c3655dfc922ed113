// Reading a node's arguments from a run's frame and writing its results: what every
// kernel binding (reference_ops.cpp, cpu_ops.cpp) starts and ends with. Argument i is
// the node's input i, in schema order (the importer fills in defaults).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/exec/program.hpp"
#include "kiln/error.hpp"

namespace kiln::exec::args {

using kernels::Tensor;
using K = RtValue::Kind;

inline const ir::Node& node_of(Frame& f, ir::NodeId n) { return ir::node(f.program.graph, n); }
inline const RtValue& in(Frame& f, ir::NodeId n, std::size_t i) { return f.values[ir::idx(node_of(f, n).inputs.at(i))]; }
inline std::size_t arity(Frame& f, ir::NodeId n) { return node_of(f, n).inputs.size(); }
inline void out(Frame& f, ir::NodeId n, RtValue v, std::size_t i = 0) { f.values[ir::idx(node_of(f, n).outputs.at(i))] = std::move(v); }
inline void out_tensor(Frame& f, ir::NodeId n, Tensor t) { out(f, n, RtValue::of_tensor(std::move(t))); }

[[noreturn]] inline void type_error(Frame& f, ir::NodeId n, std::size_t i, const char* want) {
  throw Error::bad_input("", "", "argument " + std::to_string(i) + " of " + std::string(ir::kind_str(f.program.graph, n)) +
                                     " should be " + want);
}

inline const Tensor& tensor(Frame& f, ir::NodeId n, std::size_t i) {
  const RtValue& v = in(f, n, i);
  if (v.kind != K::tensor) type_error(f, n, i, "a tensor");
  return v.t;
}
inline const Tensor* opt_tensor(Frame& f, ir::NodeId n, std::size_t i) {
  const RtValue& v = in(f, n, i);
  if (v.kind == K::none) return nullptr;
  if (v.kind != K::tensor) type_error(f, n, i, "a tensor or None");
  return &v.t;
}
inline std::int64_t int_arg(Frame& f, ir::NodeId n, std::size_t i) {
  const RtValue& v = in(f, n, i);
  if (v.kind == K::int_) return v.i;
  if (v.kind == K::bool_) return v.b;
  type_error(f, n, i, "an int");
}
inline std::optional<std::int64_t> opt_int(Frame& f, ir::NodeId n, std::size_t i) {
  if (in(f, n, i).kind == K::none) return std::nullopt;
  return int_arg(f, n, i);
}
inline double double_arg(Frame& f, ir::NodeId n, std::size_t i) {
  const RtValue& v = in(f, n, i);
  if (v.kind == K::float_) return v.f;
  if (v.kind == K::int_) return static_cast<double>(v.i);
  if (v.kind == K::bool_) return v.b;
  type_error(f, n, i, "a number");
}
inline std::optional<double> opt_double(Frame& f, ir::NodeId n, std::size_t i) {
  if (in(f, n, i).kind == K::none) return std::nullopt;
  return double_arg(f, n, i);
}
inline bool bool_arg(Frame& f, ir::NodeId n, std::size_t i) {
  const RtValue& v = in(f, n, i);
  if (v.kind == K::bool_) return v.b;
  if (v.kind == K::int_) return v.i != 0;
  type_error(f, n, i, "a bool");
}
inline const std::vector<std::int64_t>& ints_arg(Frame& f, ir::NodeId n, std::size_t i) {
  const RtValue& v = in(f, n, i);
  if (v.kind != K::int_list) type_error(f, n, i, "a list of ints");
  return v.ints;
}

}  // namespace kiln::exec::args
