// AST -> IR. One Importer per archive; emission walks a method's statements with an
// environment of names, inlining calls as it meets them, the way PyTorch's ir_emitter
// does for a single function followed by its Inline pass.
#include "engine/import/importer.hpp"

#include <algorithm>
#include <functional>
#include <limits>
#include <optional>
#include <set>
#include <unordered_map>
#include <utility>
#include <variant>

#include "engine/import/op_schema.hpp"
#include "engine/ir/scalar_type.hpp"
#include "format/pickle.hpp"
#include "format/ts_parser.hpp"
#include "kiln/error.hpp"

namespace kiln::import {
namespace {

namespace ts = format::ts;
using format::PickleRef;
using format::PickleValue;
using ir::BlockId;
using ir::Type;
using ir::TypeKind;
using ir::ValueId;

struct SourceFile {
  std::string record;  // "bert/code/__torch__/a.py"
  ts::Module module;
};

struct ClassInfo {
  std::string qualified;
  const ts::Class* cls = nullptr;
  const SourceFile* file = nullptr;
};

struct FunctionInfo {
  std::string qualified;
  const ts::Def* def = nullptr;
  const SourceFile* file = nullptr;
};

// What a name can stand for while emitting: an IR value, or something that exists only at
// compile time (a module instance, a function, a namespace such as `torch` or `ops.prim`).
struct ModuleRef {
  PickleRef object;
  std::string path;  // "" for the root, "encoder.layer.0"
  const ClassInfo* cls = nullptr;
};
struct FunctionRef {
  const FunctionInfo* fn = nullptr;
};
struct MethodRef {
  ModuleRef module;
  std::string name;
};
struct Namespace {
  std::string name;  // "torch", "ops", "ops.prim", "CONSTANTS", "__torch__.a"
};
using Sugared = std::variant<ValueId, ModuleRef, FunctionRef, MethodRef, Namespace>;

using Env = std::map<std::string, Sugared>;

// Where we are, for messages and node locations.
struct Context {
  const SourceFile* file = nullptr;
};

std::string loc_str(const SourceFile* f, ts::Location loc) {
  return (f ? f->record : std::string()) + ":" + std::to_string(loc.line) + ":" + std::to_string(loc.column);
}

bool is_number(const Type& t) { return t.kind == TypeKind::int_ || t.kind == TypeKind::float_ || t.kind == TypeKind::bool_; }

class Importer {
 public:
  Importer(const format::Archive& archive, const ImportOptions& options) : archive_(archive), options_(options) {}

  ImportedModel run();

 private:
  // --- errors ---
  [[noreturn]] void fail(ts::Location loc, const std::string& message) const {
    throw Error::bad_input(archive_.source(), loc_str(ctx_.file, loc), message);
  }
  [[noreturn]] void fail_here(const std::string& message) const {
    throw Error::bad_input(archive_.source(), "", message);
  }

  // --- setup ---
  void parse_sources();
  const ClassInfo* class_of(const PickleRef& object, const std::string& path) const;

  // --- graph building ---
  ir::NodeId add_node(std::string_view kind, std::vector<ValueId> inputs, std::vector<Type> outputs,
                      ts::Location loc);
  ValueId constant(ir::AttrValue v, Type type);
  ValueId none_constant();
  ValueId value_of(const Sugared& s, ts::Location loc) const;
  std::string unique_name(const std::string& base);

  // --- emission ---
  Sugared call_function(const ts::Def& def, const SourceFile* file, std::vector<Sugared> args,
                        const std::vector<std::pair<std::string, Sugared>>& kwargs, ts::Location call_loc,
                        std::optional<ModuleRef> self);
  // Emits statements; returns the value of a `return` when the last statement is one.
  std::optional<Sugared> emit_block(const std::vector<ts::Stmt>& stmts, Env& env);
  void emit_stmt(const ts::Stmt& s, Env& env, std::optional<Sugared>& ret, bool last);
  void emit_if(const ts::Stmt& s, Env& env);
  void emit_loop(const ts::Stmt& s, Env& env);
  void assign(const ts::Expr& target, Sugared value, Env& env, ts::Location loc);
  Sugared emit_expr(const ts::Expr& e, Env& env);
  ValueId emit_value(const ts::Expr& e, Env& env) { return value_of(emit_expr(e, env), e.loc); }
  Sugared emit_call(const ts::Expr& e, Env& env);
  Sugared emit_attribute(const ts::Expr& e, Env& env);
  Sugared module_attribute(const ModuleRef& m, const std::string& name, ts::Location loc);
  Sugared emit_builtin(const std::string& name, const ts::Expr& e, Env& env);
  ValueId emit_op(const std::string& name, std::vector<ValueId> args,
                  std::vector<std::pair<std::string, ValueId>> kwargs, ts::Location loc);
  std::optional<std::vector<ValueId>> match(const OpSchema& s, const std::vector<ValueId>& args,
                                            const std::vector<std::pair<std::string, ValueId>>& kwargs,
                                            bool convert);
  std::optional<ValueId> coerce(ValueId v, const TypeSpec& t, bool convert);
  bool convertible(ValueId v, const TypeSpec& t) const;
  ValueId default_value(const DefaultValue& d, const TypeSpec& t);
  Type return_type(const TypeSpec& t, const OpSchema& s, const std::vector<ValueId>& inputs) const;
  ValueId emit_binary(const ts::Expr& e, Env& env);
  ValueId emit_short_circuit(const ts::Expr& e, Env& env);
  ValueId emit_list(const ts::Expr& e, Env& env, std::optional<Type> elem);
  ValueId tensor_constant(const std::string& name, const format::PickleTensor& t, bool from_constants,
                          ArchiveTensor::Kind kind, ts::Location loc);
  ValueId pickle_constant(const PickleRef& v, const std::string& name, ts::Location loc);
  Type type_from_expr(const ts::TypeExpr& t) const;
  ValueId literal(const ts::Expr& e);
  void merge_branch_types(ValueId out, const Type& a, const Type& b);

  const format::Archive& archive_;
  ImportOptions options_;
  ImportedModel model_;
  std::vector<SourceFile> files_;
  std::unordered_map<std::string, ClassInfo> classes_;
  std::unordered_map<std::string, FunctionInfo> functions_;
  std::unordered_map<std::string, int> name_counts_;
  BlockId block_ = ir::kTopBlock;  // where nodes go now
  Context ctx_;
  int depth_ = 0;
};

// ---------------------------------------------------------------------------------------
// Setup

void Importer::parse_sources() {
  files_.reserve(archive_.code().size());
  for (const auto& [qualifier, source] : archive_.code()) {
    std::string path = qualifier;
    std::replace(path.begin(), path.end(), '.', '/');
    const std::string record = archive_.record_name("code/" + path + ".py");
    files_.push_back(SourceFile{record, ts::parse_module_source(source, archive_.source(), record)});
  }
  // Pointers into files_ are stable from here on (no more push_back).
  std::size_t i = 0;
  for (const auto& [qualifier, source] : archive_.code()) {
    (void)source;
    const SourceFile& f = files_[i++];
    for (const ts::Class& c : f.module.classes) {
      const std::string q = qualifier + "." + c.name;
      classes_[q] = ClassInfo{q, &c, &f};
    }
    for (const ts::Def& d : f.module.functions) {
      const std::string q = qualifier + "." + d.name;
      functions_[q] = FunctionInfo{q, &d, &f};
    }
  }
}

const ClassInfo* Importer::class_of(const PickleRef& object, const std::string& path) const {
  if (!object || object->kind != PickleValue::Kind::object)
    fail_here("data.pkl: " + (path.empty() ? std::string("the root") : "'" + path + "'") + " is not a module object");
  const auto it = classes_.find(object->text);
  if (it == classes_.end())
    fail_here("data.pkl: " + (path.empty() ? std::string("the root module") : "module '" + path + "'") +
              " has class " + object->text + ", which has no code in the archive");
  return &it->second;
}

// ---------------------------------------------------------------------------------------
// Graph building

ir::NodeId Importer::add_node(std::string_view kind, std::vector<ValueId> inputs, std::vector<Type> outputs,
                              ts::Location loc) {
  if (model_.graph.nodes.size() >= options_.max_nodes)
    fail(loc, "the program has more than " + std::to_string(options_.max_nodes) +
                  " nodes after inlining; kiln refuses programs this large");
  const ir::NodeId n = ir::append_node(model_.graph, block_, kind, std::move(inputs), std::move(outputs));
  if (ctx_.file) ir::node(model_.graph, n).loc = ir::SourceLoc{ctx_.file->record, loc.line, loc.column};
  return n;
}

ValueId Importer::constant(ir::AttrValue v, Type type) {
  if (model_.graph.nodes.size() >= options_.max_nodes)
    fail_here("the program has more than " + std::to_string(options_.max_nodes) + " nodes after inlining");
  return ir::append_constant(model_.graph, block_, std::move(v), std::move(type));
}

ValueId Importer::none_constant() {
  const ir::NodeId n = add_node("prim::Constant", {}, {Type::make_none()}, {});
  ir::node(model_.graph, n).loc.reset();
  return ir::node(model_.graph, n).outputs[0];
}

ValueId Importer::value_of(const Sugared& s, ts::Location loc) const {
  if (const ValueId* v = std::get_if<ValueId>(&s)) return *v;
  if (const ModuleRef* m = std::get_if<ModuleRef>(&s))
    fail(loc, "module '" + (m->path.empty() ? std::string("self") : m->path) + "' used as a value");
  if (std::holds_alternative<FunctionRef>(s) || std::holds_alternative<MethodRef>(s))
    fail(loc, "a function used as a value");
  fail(loc, "'" + std::get<Namespace>(s).name + "' used as a value");
}

std::string Importer::unique_name(const std::string& base) {
  int& count = name_counts_[base];
  const std::string name = count == 0 ? base : base + "." + std::to_string(count);
  ++count;
  return name;
}

ValueId Importer::literal(const ts::Expr& e) {
  switch (e.kind) {
    case ts::ExprKind::integer: return constant(e.int_value, Type::make_int());
    case ts::ExprKind::floating: return constant(e.float_value, Type::make_float());
    case ts::ExprKind::string: return constant(e.text, Type::make_string());
    case ts::ExprKind::true_: return constant(true, Type::make_bool());
    case ts::ExprKind::false_: return constant(false, Type::make_bool());
    case ts::ExprKind::none: return none_constant();
    default: fail(e.loc, "not a literal");
  }
}

ValueId Importer::tensor_constant(const std::string& name, const format::PickleTensor& t, bool from_constants,
                                  ArchiveTensor::Kind kind, ts::Location loc) {
  auto it = model_.tensors.find(name);
  if (it == model_.tensors.end()) {
    format::TensorData data = archive_.tensor(t, from_constants);
    if (data.quantized || !data.dtype) fail(loc, "tensor '" + name + "' has type " + data.storage_type + ", which kiln does not support");
    it = model_.tensors.emplace(name, ArchiveTensor{kind, std::move(data)}).first;
  }
  std::vector<ir::Dim> dims;
  for (std::int64_t s : it->second.data.sizes) dims.push_back(ir::Dim::of(s));
  return constant(ir::TensorRef{name}, Type::make_tensor(it->second.data.dtype, std::move(dims)));
}

ValueId Importer::pickle_constant(const PickleRef& v, const std::string& name, ts::Location loc) {
  using K = PickleValue::Kind;
  switch (v->kind) {
    case K::none: return none_constant();
    case K::boolean: return constant(v->boolean, Type::make_bool());
    case K::integer: return constant(v->integer, Type::make_int());
    case K::floating: return constant(v->floating, Type::make_float());
    case K::string: return constant(v->text, Type::make_string());
    case K::device: return constant(v->text, Type::make_device());
    case K::list:
    case K::tuple: {
      std::vector<std::int64_t> ints;
      for (const PickleRef& item : v->items) {
        if (item->kind != K::integer) fail(loc, "attribute '" + name + "' is a list of non-integers, which kiln does not support");
        ints.push_back(item->integer);
      }
      if (v->kind == K::list) return constant(std::move(ints), Type::make_list(Type::make_int()));
      std::vector<ValueId> items;
      std::vector<Type> types;
      for (std::int64_t i : ints) {
        items.push_back(constant(i, Type::make_int()));
        types.push_back(Type::make_int());
      }
      const ir::NodeId n = add_node("prim::TupleConstruct", items, {Type::make_tuple(types)}, loc);
      return ir::node(model_.graph, n).outputs[0];
    }
    default: fail(loc, "attribute '" + name + "' has a kind of value kiln does not support");
  }
}

Type Importer::type_from_expr(const ts::TypeExpr& t) const {
  const std::string& n = t.name;
  if (n == "Tensor") return Type::make_tensor();
  if (n == "int") return Type::make_int();
  if (n == "float") return Type::make_float();
  if (n == "bool") return Type::make_bool();
  if (n == "str") return Type::make_string();
  if (n == "NoneType" || n == "None") return Type::make_none();
  if (n == "Device") return Type::make_device();
  if (n == "number") return Type::make_float();
  if ((n == "List" || n == "Optional") && t.args.size() == 1) {
    Type elem = type_from_expr(t.args[0]);
    return n == "List" ? Type::make_list(std::move(elem)) : Type::make_optional(std::move(elem));
  }
  if (n == "Tuple") {
    std::vector<Type> elems;
    for (const ts::TypeExpr& a : t.args) elems.push_back(type_from_expr(a));
    return Type::make_tuple(std::move(elems));
  }
  fail(t.loc, "type " + ts::to_source(t) + " is not supported");
}

// ---------------------------------------------------------------------------------------
// Op calls: overload resolution against the schema table.

// Whether a value of type `vt` fits a parameter of type `t` as it is.
bool fits(const Type& vt, const TypeSpec& t) {
  if (vt.kind == TypeKind::none) return t.optional;
  if (vt.kind == TypeKind::optional) {
    // An Optional[T] value fits only an optional parameter of T.
    return t.optional && !vt.elems.empty() && vt.elems[0].kind != TypeKind::optional && fits(vt.elems[0], t);
  }
  if (t.list) {
    if (vt.kind != TypeKind::list || vt.elems.empty()) return false;
    TypeSpec elem = t;
    elem.list = false;
    elem.optional = false;
    return t.base == BaseType::any || fits(vt.elems[0], elem);
  }
  switch (t.base) {
    case BaseType::tensor: return vt.kind == TypeKind::tensor;
    case BaseType::int_:
    case BaseType::scalar_type:
    case BaseType::layout:
    case BaseType::memory_format: return vt.kind == TypeKind::int_;
    case BaseType::float_: return vt.kind == TypeKind::float_;
    case BaseType::bool_: return vt.kind == TypeKind::bool_;
    case BaseType::str: return vt.kind == TypeKind::string;
    case BaseType::scalar: return is_number(vt);
    case BaseType::device: return vt.kind == TypeKind::device;
    case BaseType::any: return true;
    case BaseType::generator:
    case BaseType::none: return false;
  }
  return false;
}

// Whether coerce(v, t, true) succeeds, without making anything.
bool Importer::convertible(ValueId v, const TypeSpec& t) const {
  const Type& vt = ir::value(model_.graph, v).type;
  if (fits(vt, t)) return true;
  if (t.list && t.list_size == 1 && t.base == BaseType::int_ && vt.kind == TypeKind::int_) return true;
  if (t.list || t.base != BaseType::float_ || vt.kind != TypeKind::int_) return false;
  const ir::NodeId producer = ir::value(model_.graph, v).node;
  return producer != ir::kNoNode && ir::is_kind(model_.graph, producer, "prim::Constant") &&
         std::holds_alternative<std::int64_t>(ir::node(model_.graph, producer).attrs.at(0).value);
}

// The conversions TorchScript's matcher allows on a second try: an int constant where a
// float is expected (`eps=1`), and a single int for an `int[1]` (`sum(x, 1)`).
std::optional<ValueId> Importer::coerce(ValueId v, const TypeSpec& t, bool convert) {
  const Type vt = ir::value(model_.graph, v).type;
  if (fits(vt, t)) return v;
  if (!convert) return std::nullopt;
  if (t.list && t.list_size == 1 && t.base == BaseType::int_ && vt.kind == TypeKind::int_) {
    const ir::NodeId n = add_node("prim::ListConstruct", {v}, {Type::make_list(Type::make_int())}, {});
    return ir::node(model_.graph, n).outputs[0];
  }
  if (!t.list && t.base == BaseType::float_ && vt.kind == TypeKind::int_) {
    const ir::NodeId producer = ir::value(model_.graph, v).node;
    if (producer != ir::kNoNode && ir::is_kind(model_.graph, producer, "prim::Constant")) {
      const auto* i = std::get_if<std::int64_t>(&ir::node(model_.graph, producer).attrs.at(0).value);
      if (i) return constant(static_cast<double>(*i), Type::make_float());
    }
  }
  return std::nullopt;
}

ValueId Importer::default_value(const DefaultValue& d, const TypeSpec& t) {
  if (std::holds_alternative<NoneDefault>(d)) return none_constant();
  if (const bool* b = std::get_if<bool>(&d)) return constant(*b, Type::make_bool());
  if (const std::string* s = std::get_if<std::string>(&d)) return constant(*s, Type::make_string());
  if (const double* f = std::get_if<double>(&d)) return constant(*f, Type::make_float());
  if (const auto* l = std::get_if<std::vector<std::int64_t>>(&d)) return constant(*l, Type::make_list(Type::make_int()));
  const std::int64_t i = std::get<std::int64_t>(d);
  if (t.base == BaseType::float_) return constant(static_cast<double>(i), Type::make_float());
  return constant(i, Type::make_int());
}

std::optional<std::vector<ValueId>> Importer::match(const OpSchema& s, const std::vector<ValueId>& args,
                                                    const std::vector<std::pair<std::string, ValueId>>& kwargs,
                                                    bool convert) {
  if (args.size() > s.args.size()) return std::nullopt;
  std::vector<std::optional<ValueId>> bound(s.args.size());
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (s.args[i].keyword_only) return std::nullopt;
    bound[i] = args[i];
  }
  for (const auto& kw : kwargs) {
    const std::string& name = kw.first;
    const ValueId v = kw.second;
    const auto it = std::find_if(s.args.begin(), s.args.end(), [&](const ArgSchema& a) { return a.name == name; });
    if (it == s.args.end()) return std::nullopt;
    const std::size_t i = static_cast<std::size_t>(it - s.args.begin());
    if (bound[i]) return std::nullopt;
    bound[i] = v;
  }
  for (std::size_t i = 0; i < s.args.size(); ++i)
    if (!bound[i] && !s.args[i].default_value) return std::nullopt;
  // Strict fit first, so a failed overload leaves no conversion nodes behind.
  for (std::size_t i = 0; i < s.args.size(); ++i) {
    if (!bound[i] || fits(ir::value(model_.graph, *bound[i]).type, s.args[i].type)) continue;
    if (!convert) return std::nullopt;
  }
  if (convert) {
    // Every argument must fit or convert before any conversion node is made, so that a
    // failed overload leaves nothing in the graph.
    for (std::size_t i = 0; i < s.args.size(); ++i)
      if (bound[i] && !convertible(*bound[i], s.args[i].type)) return std::nullopt;
    for (std::size_t i = 0; i < s.args.size(); ++i) {
      if (!bound[i]) continue;
      const auto r = coerce(*bound[i], s.args[i].type, true);
      if (!r) return std::nullopt;
      bound[i] = *r;
    }
  }
  std::vector<ValueId> out;
  out.reserve(s.args.size());
  for (std::size_t i = 0; i < s.args.size(); ++i)
    out.push_back(bound[i] ? *bound[i] : default_value(*s.args[i].default_value, s.args[i].type));
  return out;
}

Type Importer::return_type(const TypeSpec& t, const OpSchema& s, const std::vector<ValueId>& inputs) const {
  Type base;
  switch (t.base) {
    case BaseType::tensor: base = Type::make_tensor(); break;
    case BaseType::int_:
    case BaseType::scalar_type:
    case BaseType::layout:
    case BaseType::memory_format: base = Type::make_int(); break;
    case BaseType::float_:
    case BaseType::scalar: base = Type::make_float(); break;
    case BaseType::bool_: base = Type::make_bool(); break;
    case BaseType::str: base = Type::make_string(); break;
    case BaseType::device: base = Type::make_device(); break;
    case BaseType::any: {
      // `t` of a generic list op: the element type of its list argument.
      for (std::size_t i = 0; i < s.args.size() && i < inputs.size(); ++i) {
        const Type& it = ir::value(model_.graph, inputs[i]).type;
        if (s.args[i].type.base == BaseType::any && s.args[i].type.list && it.kind == TypeKind::list && !it.elems.empty()) {
          base = it.elems[0];
          break;
        }
      }
      break;
    }
    case BaseType::generator:
    case BaseType::none: base = Type::make_none(); break;
  }
  if (t.list) base = Type::make_list(std::move(base));
  if (t.optional) base = Type::make_optional(std::move(base));
  return base;
}

ValueId Importer::emit_op(const std::string& name, std::vector<ValueId> args,
                          std::vector<std::pair<std::string, ValueId>> kwargs, ts::Location loc) {
  std::span<const OpSchema* const> overloads = find_overloads(name);
  if (overloads.empty())
    fail(loc, "unsupported op " + name + " (not in kiln's op allowlist; docs/ops.md lists what is)");
  for (const bool convert : {false, true}) {
    for (const OpSchema* s : overloads) {
      auto inputs = match(*s, args, kwargs, convert);
      if (!inputs) continue;
      std::string kind = s->name;
      // Upgraders: archives before version 4 meant integer division by aten::div on two
      // integer tensors; kiln::div_legacy decides by dtype as PyTorch's div_0_3 upgrader does.
      if (name == "aten::div" && archive_.version() < 4 && (s->overload == "Tensor" || s->overload == "Scalar"))
        kind = "kiln::div_legacy";
      if (!s->overload.empty()) kind += "." + s->overload;
      std::vector<Type> outs;
      for (const TypeSpec& r : s->returns) outs.push_back(return_type(r, *s, *inputs));
      const ir::NodeId n = add_node(kind, std::move(*inputs), std::move(outs), loc);
      const auto& outputs = ir::node(model_.graph, n).outputs;
      if (outputs.empty()) return none_constant();
      return outputs[0];
    }
  }
  std::string got;
  for (ValueId a : args) got += (got.empty() ? "" : ", ") + ir::type_str(ir::value(model_.graph, a).type);
  for (const auto& [k, v] : kwargs) got += (got.empty() ? "" : ", ") + k + "=" + ir::type_str(ir::value(model_.graph, v).type);
  fail(loc, "no overload of " + name + " takes (" + got + "); kiln knows: " + overloads.front()->text +
                (overloads.size() > 1 ? " and " + std::to_string(overloads.size() - 1) + " more" : ""));
}

// ---------------------------------------------------------------------------------------
// Functions and statements

Sugared Importer::call_function(const ts::Def& def, const SourceFile* file, std::vector<Sugared> args,
                                const std::vector<std::pair<std::string, Sugared>>& kwargs, ts::Location call_loc,
                                std::optional<ModuleRef> self) {
  if (depth_ >= options_.max_inline_depth)
    fail(call_loc, "calls nest more than " + std::to_string(options_.max_inline_depth) +
                       " deep (recursive methods are not supported)");
  const Context saved = ctx_;
  ++depth_;
  Env env;
  std::size_t p = 0;
  if (self) {
    if (def.params.empty()) fail(call_loc, "method " + def.name + " has no self parameter");
    env[def.params[0].name] = *self;
    p = 1;
  }
  if (args.size() > def.params.size() - p) {
    ctx_ = saved;
    fail(call_loc, def.name + "() takes " + std::to_string(def.params.size() - p) + " arguments, " +
                       std::to_string(args.size()) + " given");
  }
  std::vector<bool> bound(def.params.size(), false);
  for (std::size_t i = 0; i < args.size(); ++i) {
    env[def.params[p + i].name] = args[i];
    bound[p + i] = true;
  }
  for (const auto& kw : kwargs) {
    const std::string& k = kw.first;
    const Sugared& v = kw.second;
    const auto it = std::find_if(def.params.begin(), def.params.end(), [&](const ts::Param& q) { return q.name == k; });
    if (it == def.params.end() || bound[static_cast<std::size_t>(it - def.params.begin())])
      fail(call_loc, def.name + "() got an unexpected keyword argument '" + k + "'");
    env[k] = v;
    bound[static_cast<std::size_t>(it - def.params.begin())] = true;
  }
  ctx_.file = file;
  for (std::size_t i = p; i < def.params.size(); ++i) {
    if (bound[i]) continue;
    if (!def.params[i].default_value) {
      ctx_ = saved;
      fail(call_loc, def.name + "() is missing argument '" + def.params[i].name + "'");
    }
    env[def.params[i].name] = emit_expr(*def.params[i].default_value, env);
  }
  std::optional<Sugared> ret = emit_block(def.body, env);
  --depth_;
  ctx_ = saved;
  if (!ret) return none_constant();
  return *ret;
}

std::optional<Sugared> Importer::emit_block(const std::vector<ts::Stmt>& stmts, Env& env) {
  std::optional<Sugared> ret;
  for (std::size_t i = 0; i < stmts.size(); ++i) {
    if (ret) fail(stmts[i].loc, "statement after return");
    emit_stmt(stmts[i], env, ret, i + 1 == stmts.size());
  }
  return ret;
}

// Names a statement list assigns, nested blocks included (a loop's carried variables).
void assigned_names(const std::vector<ts::Stmt>& stmts, std::set<std::string>& out) {
  std::function<void(const ts::Expr&)> target = [&](const ts::Expr& t) {
    if (t.kind == ts::ExprKind::name) out.insert(t.text);
    if (t.kind == ts::ExprKind::tuple || t.kind == ts::ExprKind::list)
      for (const ts::Expr& c : t.children) target(c);
  };
  for (const ts::Stmt& s : stmts) {
    for (const ts::Expr& t : s.targets) target(t);
    assigned_names(s.body, out);
    assigned_names(s.orelse, out);
  }
}

void Importer::emit_stmt(const ts::Stmt& s, Env& env, std::optional<Sugared>& ret, bool last) {
  switch (s.kind) {
    case ts::StmtKind::assign: {
      // `a, b = x, y` binds element by element, as TorchScript does, with no tuple made.
      if (s.targets.size() == 1 && s.targets[0].kind == ts::ExprKind::tuple && s.value->kind == ts::ExprKind::tuple &&
          s.targets[0].children.size() == s.value->children.size()) {
        std::vector<Sugared> values;
        for (const ts::Expr& c : s.value->children) values.push_back(emit_expr(c, env));
        for (std::size_t i = 0; i < values.size(); ++i) assign(s.targets[0].children[i], values[i], env, s.loc);
        return;
      }
      Sugared v = emit_expr(*s.value, env);
      if (s.annotation) {
        // `x : T = v` only states a type TorchScript already knows.
      }
      for (const ts::Expr& t : s.targets) assign(t, v, env, s.loc);
      return;
    }
    case ts::StmtKind::aug_assign: {
      ts::Expr bin;
      bin.kind = ts::ExprKind::binary;
      bin.loc = s.loc;
      bin.op = s.op;
      bin.children = {s.targets.at(0), *s.value};
      assign(s.targets[0], emit_binary(bin, env), env, s.loc);
      return;
    }
    case ts::StmtKind::expr: emit_expr(*s.value, env); return;
    case ts::StmtKind::return_:
      if (!last || depth_ == 0) fail(s.loc, "return before the end of a function is not supported");
      ret = s.value ? emit_expr(*s.value, env) : Sugared(none_constant());
      return;
    case ts::StmtKind::raise: {
      ValueId msg = s.value ? emit_value(*s.value, env) : constant(std::string("Exception"), Type::make_string());
      if (ir::value(model_.graph, msg).type.kind != TypeKind::string)
        msg = constant(std::string("Exception"), Type::make_string());
      emit_op("prim::RaiseException", {msg}, {}, s.loc);
      return;
    }
    case ts::StmtKind::assert_: {
      // assert c, m  ==  if not c: raise AssertionError(m)
      const ValueId cond = emit_value(*s.test, env);
      if (ir::value(model_.graph, cond).type.kind != TypeKind::bool_) fail(s.loc, "assert needs a bool condition");
      const ir::NodeId n = add_node("prim::If", {cond}, {}, s.loc);
      const BlockId then_b = ir::add_block(model_.graph, n);
      const BlockId else_b = ir::add_block(model_.graph, n);
      (void)then_b;
      const BlockId saved = block_;
      block_ = else_b;
      ValueId msg = s.message ? emit_value(*s.message, env) : constant(std::string("AssertionError: "), Type::make_string());
      if (ir::value(model_.graph, msg).type.kind != TypeKind::string)
        msg = constant(std::string("AssertionError: "), Type::make_string());
      emit_op("prim::RaiseException", {msg}, {}, s.loc);
      block_ = saved;
      return;
    }
    case ts::StmtKind::if_: emit_if(s, env); return;
    case ts::StmtKind::for_:
    case ts::StmtKind::while_: emit_loop(s, env); return;
    case ts::StmtKind::pass: return;
    case ts::StmtKind::break_:
    case ts::StmtKind::continue_: fail(s.loc, "break and continue are not supported");
  }
}

void Importer::assign(const ts::Expr& target, Sugared value, Env& env, ts::Location loc) {
  if (target.kind == ts::ExprKind::name) {
    if (const ValueId* v = std::get_if<ValueId>(&value)) {
      ir::Value& val = ir::value(model_.graph, *v);
      if (val.name.empty() && target.text.rfind("_", 0) != 0) val.name = unique_name(target.text);
    }
    env[target.text] = std::move(value);
    return;
  }
  if (target.kind == ts::ExprKind::tuple || target.kind == ts::ExprKind::list) {
    const ValueId v = value_of(value, loc);
    const Type& t = ir::value(model_.graph, v).type;
    const std::size_t n = target.children.size();
    std::vector<Type> types;
    std::string kind;
    if (t.kind == TypeKind::tuple) {
      if (t.elems.size() != n)
        fail(loc, "cannot unpack a tuple of " + std::to_string(t.elems.size()) + " into " + std::to_string(n) + " names");
      types = t.elems;
      kind = "prim::TupleUnpack";
    } else if (t.kind == TypeKind::list) {
      types.assign(n, t.elems.empty() ? Type::make_tensor() : t.elems[0]);
      kind = "prim::ListUnpack";
    } else {
      fail(loc, "cannot unpack a value of type " + ir::type_str(t));
    }
    const ir::NodeId node = add_node(kind, {v}, types, loc);
    const std::vector<ValueId> outs = ir::node(model_.graph, node).outputs;
    for (std::size_t i = 0; i < n; ++i) assign(target.children[i], outs[i], env, loc);
    return;
  }
  fail(loc, "assignment to " + ts::to_source(target) + " is not supported");
}

void Importer::merge_branch_types(ValueId out, const Type& a, const Type& b) {
  Type& t = ir::value(model_.graph, out).type;
  if (a == b) {
    t = a;
  } else if (a.kind == TypeKind::none) {
    t = b.kind == TypeKind::optional ? b : Type::make_optional(b);
  } else if (b.kind == TypeKind::none) {
    t = a.kind == TypeKind::optional ? a : Type::make_optional(a);
  } else if (a.kind == TypeKind::tensor && b.kind == TypeKind::tensor) {
    t = Type::make_tensor();
  } else {
    t = a;
  }
}

void Importer::emit_if(const ts::Stmt& s, Env& env) {
  const ValueId cond = emit_value(*s.test, env);
  if (ir::value(model_.graph, cond).type.kind != TypeKind::bool_)
    fail(s.test->loc, "an if condition must be a bool, not " + ir::type_str(ir::value(model_.graph, cond).type));
  const ir::NodeId n = add_node("prim::If", {cond}, {}, s.loc);
  const BlockId then_b = ir::add_block(model_.graph, n);
  const BlockId else_b = ir::add_block(model_.graph, n);
  const BlockId saved = block_;
  Env then_env = env;
  Env else_env = env;
  block_ = then_b;
  if (emit_block(s.body, then_env)) fail(s.loc, "return inside if is not supported");
  block_ = else_b;
  if (emit_block(s.orelse, else_env)) fail(s.loc, "return inside else is not supported");
  block_ = saved;

  // A name becomes an output of the If when both branches define it and at least one
  // changed it; names defined in only one branch are dead after the If (TorchScript
  // refuses to read them).
  std::set<std::string> names;
  for (const auto& [k, v] : then_env) names.insert(k);
  for (const auto& [k, v] : else_env) names.insert(k);
  for (const std::string& k : names) {
    const auto ti = then_env.find(k);
    const auto ei = else_env.find(k);
    if (ti == then_env.end() || ei == else_env.end()) {
      env.erase(k);
      continue;
    }
    const ValueId* tv = std::get_if<ValueId>(&ti->second);
    const ValueId* ev = std::get_if<ValueId>(&ei->second);
    const auto before = env.find(k);
    if (!tv || !ev) {
      // Compile-time things (modules) must agree across branches.
      if (before != env.end() && ti->second.index() == before->second.index() && ei->second.index() == before->second.index())
        continue;
      fail(s.loc, "'" + k + "' refers to different modules or functions in the branches of an if");
    }
    const ValueId* bv = before == env.end() ? nullptr : std::get_if<ValueId>(&before->second);
    if (bv && *bv == *tv && *bv == *ev) continue;
    ir::Block& tb = ir::block(model_.graph, then_b);
    tb.returns.push_back(*tv);
    ir::block(model_.graph, else_b).returns.push_back(*ev);
    const ValueId out = ir::add_node_output(model_.graph, n, Type::make_none(),
                                            unique_name(k.rfind("_", 0) == 0 ? std::string("_") + k : k));
    merge_branch_types(out, ir::value(model_.graph, *tv).type, ir::value(model_.graph, *ev).type);
    env[k] = out;
  }
}

void Importer::emit_loop(const ts::Stmt& s, Env& env) {
  const bool is_for = s.kind == ts::StmtKind::for_;
  ValueId trip, cond;
  std::string counter_name;
  if (is_for) {
    const ts::Expr& it = *s.value;
    if (it.kind != ts::ExprKind::call || it.children.empty() || it.children[0].kind != ts::ExprKind::name ||
        it.children[0].text != "range" || it.children.size() != 2 || !it.keywords.empty())
      fail(it.loc, "only `for i in range(n)` loops are supported");
    if (s.targets.size() != 1 || s.targets[0].kind != ts::ExprKind::name) fail(s.loc, "a for loop needs one name");
    trip = emit_value(it.children[1], env);
    if (ir::value(model_.graph, trip).type.kind != TypeKind::int_) fail(it.loc, "range() needs an int");
    cond = constant(true, Type::make_bool());
    counter_name = s.targets[0].text;
  } else {
    trip = constant(std::numeric_limits<std::int64_t>::max(), Type::make_int());
    cond = emit_value(*s.test, env);
    if (ir::value(model_.graph, cond).type.kind != TypeKind::bool_) fail(s.test->loc, "a while condition must be a bool");
  }
  std::set<std::string> assigned;
  assigned_names(s.body, assigned);
  std::vector<std::string> carried;
  for (const std::string& k : assigned) {
    const auto it = env.find(k);
    if (it != env.end() && std::holds_alternative<ValueId>(it->second) && k != counter_name) carried.push_back(k);
  }
  std::vector<ValueId> inputs{trip, cond};
  for (const std::string& k : carried) inputs.push_back(std::get<ValueId>(env[k]));
  const ir::NodeId n = add_node("prim::Loop", inputs, {}, s.loc);
  const BlockId body = ir::add_block(model_.graph, n);
  Env body_env = env;
  const ValueId counter = ir::add_block_param(model_.graph, body, Type::make_int(), counter_name.empty() ? "" : unique_name(counter_name));
  if (is_for) body_env[counter_name] = counter;
  for (const std::string& k : carried) {
    const ValueId init = std::get<ValueId>(env[k]);
    body_env[k] = ir::add_block_param(model_.graph, body, ir::value(model_.graph, init).type, unique_name(k));
  }
  const BlockId saved = block_;
  block_ = body;
  if (emit_block(s.body, body_env)) fail(s.loc, "return inside a loop is not supported");
  ValueId next_cond = is_for ? constant(true, Type::make_bool()) : emit_value(*s.test, body_env);
  if (ir::value(model_.graph, next_cond).type.kind != TypeKind::bool_) fail(s.test->loc, "a while condition must be a bool");
  ir::Block& b = ir::block(model_.graph, body);
  b.returns.push_back(next_cond);
  for (const std::string& k : carried) {
    const auto it = body_env.find(k);
    if (it == body_env.end() || !std::holds_alternative<ValueId>(it->second))
      fail(s.loc, "loop variable '" + k + "' is not a value at the end of the loop body");
    ir::block(model_.graph, body).returns.push_back(std::get<ValueId>(it->second));
  }
  block_ = saved;
  for (std::size_t i = 0; i < carried.size(); ++i) {
    env[carried[i]] = ir::add_node_output(model_.graph, n, ir::value(model_.graph, std::get<ValueId>(env[carried[i]])).type,
                                          unique_name(carried[i]));
  }
}

// ---------------------------------------------------------------------------------------
// Expressions

Sugared Importer::module_attribute(const ModuleRef& m, const std::string& name, ts::Location loc) {
  const PickleRef& state = m.object->state;
  const std::string path = m.path.empty() ? name : m.path + "." + name;
  if (state && state->kind == PickleValue::Kind::dict) {
    for (const auto& [k, v] : state->entries) {
      if (k->kind != PickleValue::Kind::string || k->text != name) continue;
      if (v->kind == PickleValue::Kind::object) {
        const ClassInfo* c = class_of(v, path);
        if (c->cls->base != ts::ClassBase::module) fail(loc, "attribute '" + path + "' is an object of class " + c->qualified + ", which kiln does not support");
        return ModuleRef{v, path, c};
      }
      if (v->kind == PickleValue::Kind::tensor) {
        const auto& params = m.cls->cls->parameters;
        const auto& buffers = m.cls->cls->buffers;
        const ArchiveTensor::Kind kind = std::find(params.begin(), params.end(), name) != params.end()
                                             ? ArchiveTensor::Kind::parameter
                                         : std::find(buffers.begin(), buffers.end(), name) != buffers.end()
                                             ? ArchiveTensor::Kind::buffer
                                             : ArchiveTensor::Kind::attribute;
        return tensor_constant(path, v->tensor, false, kind, loc);
      }
      return pickle_constant(v, path, loc);
    }
  }
  // Class constants (`eps : Final[float] = 1e-05`) are not in the object's state.
  for (const ts::ClassField& f : m.cls->cls->fields) {
    if (f.name == name && f.value) {
      const Context saved = ctx_;
      ctx_.file = m.cls->file;
      Env empty;
      Sugared v = emit_expr(*f.value, empty);
      ctx_ = saved;
      return v;
    }
  }
  for (const ts::Def& d : m.cls->cls->methods)
    if (d.name == name) return MethodRef{m, name};
  fail(loc, "module '" + (m.path.empty() ? std::string("self") : m.path) + "' (" + m.cls->qualified +
                ") has no attribute '" + name + "'");
}

Sugared Importer::emit_attribute(const ts::Expr& e, Env& env) {
  Sugared base = emit_expr(e.children.at(0), env);
  if (const ModuleRef* m = std::get_if<ModuleRef>(&base)) return module_attribute(*m, e.text, e.loc);
  if (const Namespace* ns = std::get_if<Namespace>(&base)) {
    if (ns->name == "CONSTANTS") {
      if (e.text.size() < 2 || e.text[0] != 'c') fail(e.loc, "unknown constant CONSTANTS." + e.text);
      std::size_t index = 0;
      for (std::size_t i = 1; i < e.text.size(); ++i) {
        if (e.text[i] < '0' || e.text[i] > '9' || index > 100000000) fail(e.loc, "unknown constant CONSTANTS." + e.text);
        index = index * 10 + static_cast<std::size_t>(e.text[i] - '0');
      }
      if (index >= archive_.constants().size())
        fail(e.loc, "CONSTANTS." + e.text + " is out of range: constants.pkl holds " +
                        std::to_string(archive_.constants().size()) + " values");
      const PickleRef& c = archive_.constants()[index];
      const std::string name = "CONSTANTS." + e.text;
      if (c->kind == PickleValue::Kind::tensor) return tensor_constant(name, c->tensor, true, ArchiveTensor::Kind::constant, e.loc);
      return pickle_constant(c, name, e.loc);
    }
    return Namespace{ns->name + "." + e.text};
  }
  const ValueId v = value_of(base, e.loc);
  (void)v;
  fail(e.loc, "attribute '" + e.text + "' of a value is not supported");
}

ValueId Importer::emit_list(const ts::Expr& e, Env& env, std::optional<Type> elem) {
  std::vector<ValueId> items;
  for (const ts::Expr& c : e.children) items.push_back(emit_value(c, env));
  Type et = elem ? *elem : Type::make_tensor();
  if (!items.empty()) {
    et = ir::value(model_.graph, items[0]).type;
    for (ValueId v : items) {
      const Type& t = ir::value(model_.graph, v).type;
      if (t.kind != et.kind) fail(e.loc, "a list of mixed types (" + ir::type_str(et) + " and " + ir::type_str(t) + ")");
      if (t != et) et = et.kind == TypeKind::tensor ? Type::make_tensor() : et;
    }
  }
  const ir::NodeId n = add_node("prim::ListConstruct", std::move(items), {Type::make_list(et)}, e.loc);
  return ir::node(model_.graph, n).outputs[0];
}

ValueId Importer::emit_short_circuit(const ts::Expr& e, Env& env) {
  // a and b == b if a else False; a or b == True if a else b.
  const ValueId a = emit_value(e.children[0], env);
  if (ir::value(model_.graph, a).type.kind != TypeKind::bool_) fail(e.loc, "and/or need bool operands");
  const ir::NodeId n = add_node("prim::If", {a}, {Type::make_bool()}, e.loc);
  const BlockId then_b = ir::add_block(model_.graph, n);
  const BlockId else_b = ir::add_block(model_.graph, n);
  const BlockId saved = block_;
  const bool is_and = e.op == ts::Op::and_;
  block_ = is_and ? then_b : else_b;
  const ValueId b = emit_value(e.children[1], env);
  if (ir::value(model_.graph, b).type.kind != TypeKind::bool_) fail(e.loc, "and/or need bool operands");
  ir::block(model_.graph, block_).returns.push_back(b);
  block_ = is_and ? else_b : then_b;
  ir::block(model_.graph, block_).returns.push_back(constant(!is_and, Type::make_bool()));
  block_ = saved;
  return ir::node(model_.graph, n).outputs[0];
}

ValueId Importer::emit_binary(const ts::Expr& e, Env& env) {
  using ts::Op;
  if (e.op == Op::and_ || e.op == Op::or_) return emit_short_circuit(e, env);
  const ValueId a = emit_value(e.children[0], env);
  const ValueId b = emit_value(e.children[1], env);
  if (e.op == Op::is || e.op == Op::is_not) {
    const TypeKind ka = ir::value(model_.graph, a).type.kind;
    const TypeKind kb = ir::value(model_.graph, b).type.kind;
    // Decided statically when one side is None and the other cannot be, as TorchScript does.
    const bool a_none = ka == TypeKind::none, b_none = kb == TypeKind::none;
    if ((a_none && kb != TypeKind::optional) || (b_none && ka != TypeKind::optional)) {
      const bool same = a_none && b_none;
      return constant(e.op == Op::is ? same : !same, Type::make_bool());
    }
    return emit_op(e.op == Op::is ? "aten::__is__" : "aten::__isnot__", {a, b}, {}, e.loc);
  }
  const char* op = nullptr;
  switch (e.op) {
    case Op::add: op = "aten::add"; break;
    case Op::sub: op = "aten::sub"; break;
    case Op::mul: op = "aten::mul"; break;
    case Op::div: op = "aten::div"; break;
    case Op::floordiv: op = "aten::floordiv"; break;
    case Op::mod: op = "aten::remainder"; break;
    case Op::pow: op = "aten::pow"; break;
    case Op::eq: op = "aten::eq"; break;
    case Op::ne: op = "aten::ne"; break;
    case Op::lt: op = "aten::lt"; break;
    case Op::le: op = "aten::le"; break;
    case Op::gt: op = "aten::gt"; break;
    case Op::ge: op = "aten::ge"; break;
    default: fail(e.loc, "operator is not supported: " + ts::to_source(e));
  }
  return emit_op(op, {a, b}, {}, e.loc);
}

Sugared Importer::emit_builtin(const std::string& name, const ts::Expr& e, Env& env) {
  const std::size_t argc = e.children.size() - 1;
  auto arg = [&](std::size_t i) -> const ts::Expr& { return e.children.at(i + 1); };
  if (name == "int" || name == "float" || name == "bool") {
    if (argc != 1 || !e.keywords.empty()) fail(e.loc, name + "() takes one argument");
    const ValueId v = emit_value(arg(0), env);
    const TypeKind k = ir::value(model_.graph, v).type.kind;
    if ((name == "int" && k == TypeKind::int_) || (name == "float" && k == TypeKind::float_) ||
        (name == "bool" && k == TypeKind::bool_))
      return v;
    const std::string op = name == "int" ? "aten::Int" : name == "float" ? "aten::Float" : "aten::Bool";
    return emit_op(op, {v}, {}, e.loc);
  }
  if (name == "annotate" || name == "unchecked_cast") {
    if (argc != 2 || arg(0).kind != ts::ExprKind::type || !arg(0).type) fail(e.loc, name + "(T, value) expected");
    const Type t = arg(0).type->name == "number" ? Type::make_float() : type_from_expr(*arg(0).type);
    if (name == "annotate") {
      if (arg(0).type->name == "number") {
        const ValueId v = emit_value(arg(1), env);
        if (ir::value(model_.graph, v).type.kind == TypeKind::tensor) return emit_op("aten::ScalarImplicit", {v}, {}, e.loc);
        return v;
      }
      if (arg(1).kind == ts::ExprKind::list) return emit_list(arg(1), env, t.kind == TypeKind::list ? std::optional(t.elems[0]) : std::nullopt);
      return emit_expr(arg(1), env);
    }
    const ValueId v = emit_value(arg(1), env);
    const ir::NodeId n = add_node("prim::unchecked_cast", {v}, {t}, e.loc);
    return ir::node(model_.graph, n).outputs[0];
  }
  if (name == "uninitialized") {
    if (argc != 1 || arg(0).kind != ts::ExprKind::type || !arg(0).type) fail(e.loc, "uninitialized(T) expected");
    const ir::NodeId n = add_node("prim::Uninitialized", {}, {type_from_expr(*arg(0).type)}, e.loc);
    return ir::node(model_.graph, n).outputs[0];
  }
  if (name == "getattr") {
    if (argc != 2 || arg(1).kind != ts::ExprKind::string) fail(e.loc, "getattr(module, \"name\") expected");
    Sugared base = emit_expr(arg(0), env);
    const ModuleRef* m = std::get_if<ModuleRef>(&base);
    if (!m) fail(e.loc, "getattr() of something that is not a module");
    return module_attribute(*m, arg(1).text, e.loc);
  }
  if (name == "len") {
    if (argc != 1) fail(e.loc, "len() takes one argument");
    return emit_op("aten::len", {emit_value(arg(0), env)}, {}, e.loc);
  }
  fail(e.loc, "unsupported function " + name + "()");
}

Sugared Importer::emit_call(const ts::Expr& e, Env& env) {
  const ts::Expr& callee = e.children.at(0);
  const std::size_t nkw = e.keywords.size();
  const std::size_t npos = e.children.size() - 1 - nkw;
  if (callee.kind == ts::ExprKind::name && !env.count(callee.text) && functions_.find(callee.text) == functions_.end()) {
    static const std::set<std::string> kBuiltins{"int", "float", "bool", "annotate", "unchecked_cast", "uninitialized", "getattr", "len"};
    if (kBuiltins.count(callee.text)) return emit_builtin(callee.text, e, env);
  }
  Sugared f = emit_expr(callee, env);
  if (const Namespace* ns = std::get_if<Namespace>(&f)) {
    std::string op;
    if (ns->name.rfind("torch.", 0) == 0 && ns->name.find('.', 6) == std::string::npos) {
      op = "aten::" + ns->name.substr(6);
      if (op == "aten::device" && npos == 1 && nkw == 0 && e.children[1].kind == ts::ExprKind::string)
        return constant(e.children[1].text, Type::make_device());
    } else if (ns->name.rfind("ops.", 0) == 0) {
      const std::string rest = ns->name.substr(4);
      const std::size_t dot = rest.find('.');
      if (dot == std::string::npos || rest.find('.', dot + 1) != std::string::npos) fail(e.loc, "unknown callee " + ns->name);
      op = rest.substr(0, dot) + "::" + rest.substr(dot + 1);
    } else {
      fail(e.loc, "unsupported call of " + ns->name + " (not in kiln's op allowlist)");
    }
    if (find_overloads(op).empty())
      fail(callee.loc, "unsupported op " + op + " (not in kiln's op allowlist; docs/ops.md lists what is)");
    std::vector<ValueId> args;
    for (std::size_t i = 0; i < npos; ++i) {
      const ts::Expr& a = e.children[1 + i];
      args.push_back(a.kind == ts::ExprKind::list ? emit_list(a, env, Type::make_int()) : emit_value(a, env));
    }
    std::vector<std::pair<std::string, ValueId>> kwargs;
    for (std::size_t i = 0; i < nkw; ++i) {
      const ts::Expr& a = e.children[1 + npos + i];
      kwargs.emplace_back(e.keywords[i], a.kind == ts::ExprKind::list ? emit_list(a, env, Type::make_int()) : emit_value(a, env));
    }
    return emit_op(op, std::move(args), std::move(kwargs), e.loc);
  }
  std::vector<Sugared> args;
  for (std::size_t i = 0; i < npos; ++i) args.push_back(emit_expr(e.children[1 + i], env));
  std::vector<std::pair<std::string, Sugared>> kwargs;
  for (std::size_t i = 0; i < nkw; ++i) kwargs.emplace_back(e.keywords[i], emit_expr(e.children[1 + npos + i], env));
  if (const MethodRef* m = std::get_if<MethodRef>(&f)) {
    const ts::Def* def = nullptr;
    for (const ts::Def& d : m->module.cls->cls->methods)
      if (d.name == m->name) def = &d;
    return call_function(*def, m->module.cls->file, std::move(args), kwargs, e.loc, m->module);
  }
  if (const FunctionRef* fn = std::get_if<FunctionRef>(&f))
    return call_function(*fn->fn->def, fn->fn->file, std::move(args), kwargs, e.loc, std::nullopt);
  fail(e.loc, "call of something that is not a function: " + ts::to_source(callee));
}

Sugared Importer::emit_expr(const ts::Expr& e, Env& env) {
  switch (e.kind) {
    case ts::ExprKind::name: {
      const auto it = env.find(e.text);
      if (it != env.end()) return it->second;
      if (e.text == "torch" || e.text == "ops" || e.text == "CONSTANTS" || e.text == "__torch__") return Namespace{e.text};
      if (e.text == "inf") return constant(std::numeric_limits<double>::infinity(), Type::make_float());
      if (e.text == "nan") return constant(std::numeric_limits<double>::quiet_NaN(), Type::make_float());
      fail(e.loc, "undefined name '" + e.text + "'");
    }
    case ts::ExprKind::attribute: {
      // A qualified function name (`__torch__.torch.nn.functional.layer_norm`).
      const std::string text = ts::to_source(e);
      if (text.rfind("__torch__.", 0) == 0) {
        const auto fit = functions_.find(text);
        if (fit != functions_.end()) return FunctionRef{&fit->second};
        fail(e.loc, "unknown function or class " + text);
      }
      return emit_attribute(e, env);
    }
    case ts::ExprKind::call: return emit_call(e, env);
    case ts::ExprKind::integer:
    case ts::ExprKind::floating:
    case ts::ExprKind::string:
    case ts::ExprKind::true_:
    case ts::ExprKind::false_:
    case ts::ExprKind::none: return literal(e);
    case ts::ExprKind::list: return emit_list(e, env, std::nullopt);
    case ts::ExprKind::tuple: {
      std::vector<ValueId> items;
      std::vector<Type> types;
      for (const ts::Expr& c : e.children) {
        items.push_back(emit_value(c, env));
        types.push_back(ir::value(model_.graph, items.back()).type);
      }
      const ir::NodeId n = add_node("prim::TupleConstruct", std::move(items), {Type::make_tuple(std::move(types))}, e.loc);
      return ir::node(model_.graph, n).outputs[0];
    }
    case ts::ExprKind::subscript: {
      const ValueId base = emit_value(e.children.at(0), env);
      if (e.children.size() != 2 || e.children[1].kind == ts::ExprKind::slice) fail(e.loc, "only x[i] subscripts are supported");
      const Type& bt = ir::value(model_.graph, base).type;
      if (bt.kind == TypeKind::tuple) {
        if (e.children[1].kind != ts::ExprKind::integer) fail(e.loc, "a tuple index must be an integer literal");
        std::int64_t i = e.children[1].int_value;
        const auto n = static_cast<std::int64_t>(bt.elems.size());
        if (i < 0) i += n;
        if (i < 0 || i >= n) fail(e.loc, "tuple index " + std::to_string(e.children[1].int_value) + " out of range");
        const Type et = bt.elems[static_cast<std::size_t>(i)];
        const ValueId idx = constant(i, Type::make_int());
        const ir::NodeId node = add_node("prim::TupleIndex", {base, idx}, {et}, e.loc);
        return ir::node(model_.graph, node).outputs[0];
      }
      if (bt.kind == TypeKind::list) return emit_op("aten::__getitem__", {base, emit_value(e.children[1], env)}, {}, e.loc);
      fail(e.loc, "subscript of a " + ir::type_str(bt) + " is not supported");
    }
    case ts::ExprKind::unary: {
      // Negative literals are constants, not aten::neg calls.
      const ts::Expr& operand = e.children.at(0);
      if (e.op == ts::Op::neg && operand.kind == ts::ExprKind::integer && operand.int_value != std::numeric_limits<std::int64_t>::min())
        return constant(-operand.int_value, Type::make_int());
      if (e.op == ts::Op::neg && operand.kind == ts::ExprKind::floating) return constant(-operand.float_value, Type::make_float());
      if (e.op == ts::Op::neg && operand.kind == ts::ExprKind::name && operand.text == "inf" && !env.count("inf"))
        return constant(-std::numeric_limits<double>::infinity(), Type::make_float());
      const ValueId v = emit_value(e.children.at(0), env);
      switch (e.op) {
        case ts::Op::neg: return emit_op("aten::neg", {v}, {}, e.loc);
        case ts::Op::pos: return v;
        case ts::Op::not_:
          if (ir::value(model_.graph, v).type.kind != TypeKind::bool_) fail(e.loc, "`not` needs a bool");
          return emit_op("aten::__not__", {v}, {}, e.loc);
        default: fail(e.loc, "operator is not supported: " + ts::to_source(e));
      }
    }
    case ts::ExprKind::binary: return emit_binary(e, env);
    case ts::ExprKind::ternary: {
      const ValueId c = emit_value(e.children[0], env);
      if (ir::value(model_.graph, c).type.kind != TypeKind::bool_) fail(e.loc, "a conditional expression needs a bool");
      const ir::NodeId n = add_node("prim::If", {c}, {Type::make_none()}, e.loc);
      const BlockId then_b = ir::add_block(model_.graph, n);
      const BlockId else_b = ir::add_block(model_.graph, n);
      const BlockId saved = block_;
      block_ = then_b;
      const ValueId a = emit_value(e.children[1], env);
      ir::block(model_.graph, then_b).returns.push_back(a);
      block_ = else_b;
      const ValueId b = emit_value(e.children[2], env);
      ir::block(model_.graph, else_b).returns.push_back(b);
      block_ = saved;
      const ValueId out = ir::node(model_.graph, n).outputs[0];
      merge_branch_types(out, ir::value(model_.graph, a).type, ir::value(model_.graph, b).type);
      return out;
    }
    case ts::ExprKind::dict: fail(e.loc, "dict literals are not supported");
    case ts::ExprKind::slice:
    case ts::ExprKind::omitted:
    case ts::ExprKind::type: fail(e.loc, "unexpected expression: " + ts::to_source(e));
  }
  fail(e.loc, "unexpected expression");
}

// ---------------------------------------------------------------------------------------

std::vector<std::vector<std::int64_t>> traced_shapes(const format::Archive& archive, const std::string& method) {
  std::vector<std::vector<std::int64_t>> shapes;
  if (!archive.has_traced_inputs()) return shapes;
  const std::string record = archive.record_name("traced_inputs.pkl");
  const format::ZipEntry* entry = archive.zip().find(record);
  if (!entry) return shapes;
  const std::vector<std::byte> bytes = archive.zip().read(*entry);
  const PickleRef root = format::unpickle(bytes, archive.source(), record);
  // {"forward": (tensor, ...)}; only the sizes matter (the storages are empty).
  if (root->kind != PickleValue::Kind::dict) return shapes;
  for (const auto& [k, v] : root->entries) {
    if (k->kind != PickleValue::Kind::string || k->text != method) continue;
    if (v->kind != PickleValue::Kind::tuple && v->kind != PickleValue::Kind::list) break;
    for (const PickleRef& t : v->items) {
      if (t->kind != PickleValue::Kind::tensor) return {};
      shapes.push_back(t->tensor.sizes);
    }
  }
  return shapes;
}

ImportedModel Importer::run() {
  parse_sources();
  model_.archive_version = archive_.version();
  const PickleRef& root = archive_.data();
  const ClassInfo* cls = class_of(root, "");
  const ts::Def* def = nullptr;
  for (const ts::Def& d : cls->cls->methods)
    if (d.name == options_.method) def = &d;
  if (!def) fail_here("the root module (" + cls->qualified + ") has no method '" + options_.method + "'");
  ctx_.file = cls->file;
  if (def->params.empty()) fail(def->loc, options_.method + " has no self parameter");
  Env env;
  env[def->params[0].name] = ModuleRef{root, "", cls};
  for (std::size_t i = 1; i < def->params.size(); ++i) {
    const ts::Param& p = def->params[i];
    if (!p.type) fail(p.loc, "parameter '" + p.name + "' has no type");
    const ValueId v = ir::add_input(model_.graph, type_from_expr(*p.type), unique_name(p.name));
    env[p.name] = v;
    model_.input_names.push_back(p.name);
  }
  ++depth_;
  std::optional<Sugared> ret = emit_block(def->body, env);
  --depth_;
  if (!ret) fail(def->loc, options_.method + " does not end in a return");
  ir::add_output(model_.graph, value_of(*ret, def->loc));
  model_.traced_input_shapes = traced_shapes(archive_, options_.method);
  return std::move(model_);
}

}  // namespace

ImportedModel import_model(const format::Archive& archive, const ImportOptions& options) {
  return Importer(archive, options).run();
}

}  // namespace kiln::import
