// ts::Module and friends — the syntax tree of one serialized TorchScript source file.
//
// Plain data made by `parse_module_source` (ts_parser.hpp) from a `code/` file: classes,
// free functions, statements, expressions and types, each node with its location. Nothing is
// resolved (names, ops, types stay text); the importer maps this to kiln's IR.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kiln::format::ts {

// Limits the parser enforces, so that every recursive walk of a tree it returns (printer,
// importer, destructors) has a bounded depth whatever the input.
inline constexpr std::uint32_t kMaxExprDepth = 256;   // expression / type nesting and height
inline constexpr std::uint32_t kMaxBlockDepth = 100;  // nested suites: class, def, if, for, ...

// 1-based line and byte column of a node's first token.
struct Location {
  std::uint32_t line = 0;
  std::uint32_t column = 0;
};

// A type annotation: `Tensor`, `__torch__.a.___torch_mangle_3.C`, `Dict[str, List[int]]`.
struct TypeExpr {
  Location loc;
  std::string name;            // dotted as written: "Optional", "__torch__.a.b.C", "None"
  bool subscripted = false;    // `Name[...]`; `Tuple[()]` is subscripted with no args
  std::vector<TypeExpr> args;  // the subscript's types
};

enum class ExprKind : std::uint8_t {
  name,       // text
  attribute,  // children[0].text; text is the member
  call,       // children[0] callee, then the arguments; the last keywords.size() are keyword args
  subscript,  // children[0] value, then one child per comma-separated index (a slice is one)
  slice,      // `a:b:c` inside a subscript: children start, stop, step (kind omitted when absent)
  omitted,    // an absent slice bound
  integer,    // int_value; text is the spelling
  floating,   // float_value; text is the spelling ("1.", "1.0000000000000001e-05")
  string,     // text holds the decoded bytes (adjacent literals already joined)
  true_,
  false_,
  none,
  list,       // children: the elements
  tuple,      // children: the elements (`()`, `(x,)`, `a, b`)
  dict,       // children: key, value, key, value, ...
  unary,      // op, children[0]
  binary,     // op, children[0] lhs, children[1] rhs (comparisons and and/or too)
  ternary,    // `a if c else b`: children[0] c (test), [1] a (if true), [2] b (if false)
  type,       // a type argument (first argument of annotate / unchecked_cast / uninitialized)
};

enum class Op : std::uint8_t {
  // binary arithmetic and bitwise
  add, sub, mul, div, floordiv, mod, pow, matmul, lshift, rshift, bitand_, bitor_, bitxor,
  // comparisons (chains such as `a < b < c` are left-nested binaries)
  eq, ne, lt, le, gt, ge, is, is_not, in, not_in,
  // boolean
  and_, or_,
  // unary
  neg, pos, not_, invert,
};

struct Expr {
  ExprKind kind = ExprKind::name;
  Location loc;
  Op op = Op::add;              // unary and binary
  std::string text;             // name, member, string bytes, number spelling
  std::int64_t int_value = 0;
  double float_value = 0;
  std::vector<Expr> children;
  std::vector<std::string> keywords;  // call: names of the trailing keyword arguments
  std::optional<TypeExpr> type;       // kind type
  // Nodes on the longest path down from here (1 for a leaf); at most kMaxExprDepth.
  std::uint32_t height = 1;
};

enum class StmtKind : std::uint8_t {
  assign,      // targets (one per `=`, left to right; a tuple target is one tuple Expr), value,
               // optional annotation (`x : T = v`)
  aug_assign,  // targets[0] op= value
  expr,        // value
  return_,     // value (absent for a bare `return`)
  raise,       // value (absent for a bare `raise`)
  assert_,     // test, message (optional)
  if_,         // test, body, orelse (an `elif` is an if_ alone in orelse, with is_elif set)
  for_,        // targets[0] in value: body
  while_,      // test: body
  pass,
  break_,
  continue_,
};

struct Stmt {
  StmtKind kind = StmtKind::pass;
  Location loc;
  std::vector<Expr> targets;
  std::optional<TypeExpr> annotation;
  Op op = Op::add;  // aug_assign
  std::optional<Expr> value;
  std::optional<Expr> test;
  std::optional<Expr> message;
  std::vector<Stmt> body;
  std::vector<Stmt> orelse;
  bool is_elif = false;
};

struct Param {
  Location loc;
  std::string name;
  std::optional<TypeExpr> type;
  std::optional<Expr> default_value;
  bool keyword_only = false;  // after a bare `*`
};

struct Def {
  Location loc;  // of `def`
  std::string name;
  std::vector<Param> params;  // self included for methods
  std::optional<TypeExpr> returns;
  std::vector<Stmt> body;
};

// One declaration in a class body, other than the special lists and methods:
//   `name : T`                attribute (type)
//   `name : Final[T] = v`     constant (type and value); NamedTuple fields with defaults too
//   `NAME = v`                Enum value (value only)
//   `__annotations__["k"] = T`  attribute with a non-identifier name (quoted, type)
struct ClassField {
  Location loc;
  std::string name;
  bool quoted = false;
  std::optional<TypeExpr> type;
  std::optional<Expr> value;
};

enum class ClassBase : std::uint8_t { none, module, named_tuple, interface, module_interface, enum_ };

struct Class {
  Location loc;  // of `class`
  std::string name;  // unqualified; the file's qualifier + "." + name is the full name
  ClassBase base = ClassBase::none;
  bool has_parameters = false;  // `__parameters__ = [...]` seen
  bool has_buffers = false;
  bool has_annotations = false;  // `__annotations__ = []` seen
  std::vector<std::string> parameters;
  std::vector<std::string> buffers;
  std::vector<std::string> forward_pre_hooks;
  std::vector<std::string> forward_hooks;
  std::vector<ClassField> fields;  // in source order
  std::vector<Def> methods;        // in source order
};

struct Module {
  std::optional<std::int64_t> op_version_set;  // `op_version_set = N` (older archives)
  std::vector<Class> classes;
  std::vector<Def> functions;  // top-level defs
};

}  // namespace kiln::format::ts
