// OpSchema — the signatures of the ops kiln accepts, which are also its op allowlist.
//
// Each op is written once as a PyTorch schema string ("aten::add.Tensor(Tensor self, Tensor
// other, *, Scalar alpha=1) -> Tensor", the notation of native_functions.yaml) in
// op_schema.cpp and parsed when first needed. The importer matches a call's arguments
// against an op's overloads in table order and fills in defaults from here; an op that is
// not in the table is refused at load time. I/O and concurrency ops (save, from_file, fork,
// wait) are deliberately absent.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace kiln::import {

// The base of an argument or return type, as the schema spells it.
enum class BaseType : std::uint8_t {
  tensor,
  int_,          // int, SymInt
  float_,
  bool_,
  str,
  scalar,        // Scalar: int, float or bool
  scalar_type,   // ScalarType: an int code
  layout,        // an int code
  memory_format, // an int code
  device,
  generator,
  any,           // t: the element type of a generic list op
  none,          // NoneType (only as a return)
};

struct TypeSpec {
  BaseType base = BaseType::tensor;
  bool list = false;       // "int[]", "Tensor[]", "t[]"
  int list_size = 0;       // "int[1]": a single int is accepted for it
  bool optional = false;   // "Tensor?", "int[1]?"
  bool mutated = false;    // "Tensor(a!)": the op writes it
  bool aliased = false;    // "Tensor(a)": the result may be a view of it
};

struct NoneDefault {
  bool operator==(const NoneDefault&) const = default;
};
using DefaultValue = std::variant<NoneDefault, std::int64_t, double, bool, std::string, std::vector<std::int64_t>>;

struct ArgSchema {
  std::string name;
  TypeSpec type;
  std::optional<DefaultValue> default_value;
  bool keyword_only = false;  // after "*"
};

struct OpSchema {
  std::string name;      // "aten::add"
  std::string overload;  // "Tensor"; "" for the default overload
  std::vector<ArgSchema> args;
  std::vector<TypeSpec> returns;
  bool variadic_returns = false;  // "-> Tensor[]" counts as one list return; this is "-> ..."
  bool pure = true;               // false for ops with effects (RaiseException) or randomness
  std::string text;               // the schema string, for messages
};

// Every overload of `name` ("aten::add") in matching order; empty when kiln does not
// support the op.
std::span<const OpSchema* const> find_overloads(std::string_view name);

// One schema by name and overload, or null.
const OpSchema* find_schema(std::string_view name, std::string_view overload);

// Every schema in the table, in table order (docs and tests).
std::span<const OpSchema> all_schemas();

// Parses one schema string; throws kiln::Error (internal) on a malformed one. Exposed for
// tests.
OpSchema parse_schema(std::string_view text);

// The type as the schema writes it: "Tensor?", "int[1]?", "Scalar".
std::string type_spec_str(const TypeSpec& t);

}  // namespace kiln::import
