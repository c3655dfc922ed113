// kiln::ir::Type — the types of IR values: tensors (dtype and a shape of concrete or
// symbolic dims), scalars (int, float, bool, str), None, Device, and List/Tuple/Optional.
//
// Plain values compared with ==. What is unknown stays unknown (no dtype, no rank, a
// symbolic dim) so that the importer can state exactly what TorchScript tells it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "kiln/dtype.hpp"

namespace kiln::ir {

// One dimension of a tensor shape: a concrete size, or a symbol standing for a size known
// only at run time. Symbols with the same id are the same size ("batch" in two inputs), so
// later passes can prove shapes equal without knowing them.
struct Dim {
  bool symbolic = false;
  std::int64_t value = 0;  // the size when concrete; the symbol's id when symbolic
  std::string name;        // a symbol's readable name ("batch", "seq"); may be empty

  static Dim of(std::int64_t size) { return Dim{false, size, {}}; }
  static Dim symbol(std::int64_t id, std::string name = {}) { return Dim{true, id, std::move(name)}; }

  bool operator==(const Dim&) const = default;
};

struct TensorType {
  std::optional<DType> dtype;             // absent: unknown element type
  std::optional<std::vector<Dim>> shape;  // absent: unknown rank

  bool operator==(const TensorType&) const = default;
};

enum class TypeKind : std::uint8_t {
  tensor,
  int_,      // TorchScript int (64-bit)
  float_,    // TorchScript float (double)
  bool_,
  string,
  none,      // NoneType
  device,
  list,      // elems[0] is the element type
  tuple,     // elems are the element types
  optional,  // elems[0] is the contained type
};

struct Type {
  TypeKind kind = TypeKind::none;
  TensorType tensor;        // only for kind == tensor
  std::vector<Type> elems;  // only for list, tuple, optional

  bool operator==(const Type&) const = default;

  static Type make_tensor(std::optional<DType> dtype = std::nullopt,
                          std::optional<std::vector<Dim>> shape = std::nullopt) {
    return Type{TypeKind::tensor, TensorType{dtype, std::move(shape)}, {}};
  }
  static Type make_int() { return Type{TypeKind::int_, {}, {}}; }
  static Type make_float() { return Type{TypeKind::float_, {}, {}}; }
  static Type make_bool() { return Type{TypeKind::bool_, {}, {}}; }
  static Type make_string() { return Type{TypeKind::string, {}, {}}; }
  static Type make_none() { return Type{TypeKind::none, {}, {}}; }
  static Type make_device() { return Type{TypeKind::device, {}, {}}; }
  static Type make_list(Type elem) { return Type{TypeKind::list, {}, {std::move(elem)}}; }
  static Type make_tuple(std::vector<Type> elems) { return Type{TypeKind::tuple, {}, std::move(elems)}; }
  static Type make_optional(Type elem) { return Type{TypeKind::optional, {}, {std::move(elem)}}; }
};

// As PyTorch's graph dump writes it: "Float(*, *, 32)", "Tensor", "int", "int[]",
// "(Tensor, int)", "Tensor?", "NoneType", "Device", "str". A named symbolic dim prints as
// its name, an unnamed one as "*". Defined in print.cpp.
std::string type_str(const Type& t);

}  // namespace kiln::ir
