// Tests of the TorchScript source lexer and parser (format/ts_parser): every code file of
// every fixture archive, checked against class_outline, the archive's constants and the
// manifest; each construct on small sources; and errors with their exact messages and
// line:column.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "format/archive.hpp"
#include "format/class_outline.hpp"
#include "format/ts_lexer.hpp"
#include "format/ts_parser.hpp"
#include "kiln/error.hpp"
#include "tests/support/fixtures.hpp"

namespace ts = kiln::format::ts;
using kiln::format::Archive;

namespace {

ts::Module parse(const std::string& text) { return ts::parse_module_source(text, "m.pt", "m/code/__torch__/a.py"); }

// The error's "where" and message, as "m/code/__torch__/a.py:L:C: message".
std::string error_of(const std::string& text) {
  try {
    parse(text);
  } catch (const kiln::Error& e) {
    CHECK(e.kind() == kiln::ErrorKind::bad_input);
    CHECK(e.file() == "m.pt");
    return e.where() + ": " + e.message();
  }
  return "no error";
}

// Statements of a one-function file, for construct tests.
std::vector<ts::Stmt> body_of(const std::string& text) {
  ts::Module m = parse(text);
  REQUIRE(m.functions.size() == 1);
  return std::move(m.functions[0].body);
}

// The single expression of `def f():\n  return <expr>\n`.
ts::Expr expr_of(const std::string& expr) {
  std::vector<ts::Stmt> body = body_of("def f():\n  return " + expr + "\n");
  REQUIRE(body.size() == 1);
  REQUIRE(body[0].value);
  return std::move(*body[0].value);
}

// Canonical reprint of an expression source.
std::string canon(const std::string& expr) { return ts::to_source(expr_of(expr)); }

void walk_expr(const ts::Expr& e, const std::function<void(const ts::Expr&)>& f) {
  f(e);
  for (const ts::Expr& c : e.children) walk_expr(c, f);
}

void walk_stmts(const std::vector<ts::Stmt>& body, const std::function<void(const ts::Expr&)>& f,
                const std::function<void(const ts::Stmt&)>& g = {}) {
  for (const ts::Stmt& s : body) {
    if (g) g(s);
    for (const ts::Expr& t : s.targets) walk_expr(t, f);
    if (s.value) walk_expr(*s.value, f);
    if (s.test) walk_expr(*s.test, f);
    if (s.message) walk_expr(*s.message, f);
    walk_stmts(s.body, f, g);
    walk_stmts(s.orelse, f, g);
  }
}

// `a`, `a.b.c`: what the importer resolves a callee from.
bool is_name_chain(const ts::Expr& e) {
  if (e.kind == ts::ExprKind::name) return true;
  return e.kind == ts::ExprKind::attribute && is_name_chain(e.children[0]);
}

std::string code_record(const Archive& a, const std::string& qualifier) {
  std::string path = qualifier;
  std::replace(path.begin(), path.end(), '.', '/');
  return a.record_name("code/" + path + ".py");
}

}  // namespace

// --- the fixtures ------------------------------------------------------------------------

TEST_CASE("ts parser: every code file of every fixture parses and agrees with the archive") {
  const auto fixtures = kiln::testing::all_fixtures();
  REQUIRE(!fixtures.empty());
  std::set<std::string> generations;
  std::size_t files = 0, classes = 0, functions = 0, calls = 0;
  std::map<ts::StmtKind, std::size_t> stmt_kinds;
  for (const auto& f : fixtures) {
    INFO(f.generation << "/" << f.name);
    generations.insert(f.generation);
    const Archive a = Archive::open((f.dir / f.manifest.at("archive").as_string()).string());
    const std::string root_class = a.data()->text;  // "__torch__.transformers....BertModel"
    bool found_root = false;
    for (const auto& entry : a.code()) {
      // Named, not a structured binding: clang 14 cannot capture those in lambdas.
      const std::string& qualifier = entry.first;
      const std::string& source = entry.second;
      INFO(qualifier);
      const std::string record = code_record(a, qualifier);
      const ts::Module m = ts::parse_module_source(source, a.source(), record);
      ++files;
      classes += m.classes.size();
      functions += m.functions.size();
      CHECK((!m.classes.empty() || !m.functions.empty()));

      // The same classes, declarations and forward signatures as the header scanner saw.
      const auto outlines = kiln::format::outline_classes(source, qualifier, a.source(), record);
      REQUIRE(outlines.size() == m.classes.size());
      for (std::size_t i = 0; i < outlines.size(); ++i) {
        const auto& o = outlines[i];
        const ts::Class& c = m.classes[i];
        INFO(c.name);
        CHECK(o.qualified_name == qualifier + "." + c.name);
        CHECK(o.base == (c.base == ts::ClassBase::module ? "Module" : "?"));
        CHECK(o.parameters == c.parameters);
        CHECK(o.buffers == c.buffers);
        CHECK(c.has_parameters);
        CHECK(c.has_buffers);
        const auto fwd = std::find_if(c.methods.begin(), c.methods.end(),
                                      [](const ts::Def& d) { return d.name == "forward"; });
        CHECK(o.has_forward == (fwd != c.methods.end()));
        if (fwd != c.methods.end()) {
          REQUIRE(fwd->params.size() == o.forward_args.size() + 1);
          for (std::size_t k = 0; k < o.forward_args.size(); ++k) {
            CHECK(fwd->params[k + 1].name == o.forward_args[k].name);
            REQUIRE(fwd->params[k + 1].type);
            CHECK(ts::to_source(*fwd->params[k + 1].type) == o.forward_args[k].type);
          }
          CHECK((fwd->returns ? ts::to_source(*fwd->returns) : "") == o.forward_returns);
        }
        // Parameters and buffers are declared as attributes too; every `self.x` read in a
        // method names a declared attribute; every method's self is typed as this class.
        std::set<std::string> declared;
        for (const ts::ClassField& field : c.fields) {
          if (!field.quoted && field.type) declared.insert(field.name);
        }
        for (const std::string& p : c.parameters) CHECK(declared.count(p) == 1);
        for (const std::string& b : c.buffers) CHECK(declared.count(b) == 1);
        for (const ts::Def& d : c.methods) {
          INFO(d.name);
          CHECK(!d.body.empty());
          REQUIRE(!d.params.empty());
          CHECK(d.params[0].name == "self");
          REQUIRE(d.params[0].type);
          CHECK(d.params[0].type->name == qualifier + "." + c.name);
          walk_stmts(d.body, [&](const ts::Expr& e) {
            if (e.kind == ts::ExprKind::attribute && e.children[0].kind == ts::ExprKind::name &&
                e.children[0].text == "self") {
              CHECK(declared.count(e.text) == 1);
            }
          });
        }
        if (qualifier + "." + c.name == root_class) {
          found_root = true;
          REQUIRE(fwd != c.methods.end());
          std::vector<std::string> inputs;
          for (std::size_t k = 1; k < fwd->params.size(); ++k) inputs.push_back(fwd->params[k].name);
          std::vector<std::string> expected;
          for (const auto& n : f.manifest.at("input_names").as_array()) expected.push_back(n.as_string());
          CHECK(inputs == expected);
        }
      }

      // Every call's callee is a name chain (torch.x, ops.prim.x, (m).forward, int), and
      // every CONSTANTS.cN is in the archive's constants table.
      std::vector<const ts::Def*> defs;
      for (const ts::Class& c : m.classes) {
        for (const ts::Def& d : c.methods) defs.push_back(&d);
      }
      for (const ts::Def& d : m.functions) defs.push_back(&d);
      for (const ts::Def* d : defs) {
        walk_stmts(
            d->body,
            [&](const ts::Expr& e) {
              if (e.kind == ts::ExprKind::call) {
                ++calls;
                CHECK(is_name_chain(e.children[0]));
              }
              if (e.kind == ts::ExprKind::attribute && e.children[0].kind == ts::ExprKind::name &&
                  e.children[0].text == "CONSTANTS") {
                REQUIRE(e.text.size() > 1);
                CHECK(e.text[0] == 'c');
                CHECK(std::stoul(e.text.substr(1)) < a.constants().size());
              }
            },
            [&](const ts::Stmt& s) { ++stmt_kinds[s.kind]; });
      }

      // The canonical print parses back to the same tree.
      const std::string printed = ts::to_source(m);
      CHECK(ts::to_source(ts::parse_module_source(printed, "reprint", "reprint.py")) == printed);
    }
    CHECK(found_root);
  }
  CHECK(generations.size() >= 2);
  CHECK(files > 100);
  CHECK(classes > files / 2);
  CHECK(functions >= 1);  // torch.nn.functional.layer_norm in the scripted fixture
  CHECK(calls > 1000);
  // The scripted fixture brings control flow; traced ones are straight-line.
  CHECK(stmt_kinds[ts::StmtKind::for_] >= 1);
  CHECK(stmt_kinds[ts::StmtKind::while_] >= 1);
  CHECK(stmt_kinds[ts::StmtKind::if_] >= 1);
  CHECK(stmt_kinds[ts::StmtKind::return_] > files);
}

TEST_CASE("ts parser: the scripted control-flow module, statement by statement") {
  const ts::Module m = parse(R"(class ControlFlowBlock(Module):
  __parameters__ = []
  __buffers__ = []
  training : bool
  _is_full_backward_hook : NoneType
  steps : int
  lin : __torch__.torch.nn.modules.linear.Linear
  def forward(self: __torch__.ControlFlowBlock,
    x: Tensor,
    mask: Tensor) -> Tensor:
    steps = self.steps
    h = x
    for _0 in range(steps):
      lin = self.lin
      _1 = torch.add(h, torch.relu((lin).forward(h, )))
      h = _1
    if bool(torch.gt(torch.sum(mask), 0)):
      _2 = torch.to(torch.unsqueeze(mask, -1), ops.prim.dtype(h))
      h0 = torch.mul(h, _2)
    else:
      h0 = torch.neg(h)
    n = 0
    _3 = True
    while _3:
      n0 = torch.add(n, 1)
      _3, h0, n = torch.lt(n0, 2), h0, n0
    return h0
)");
  REQUIRE(m.classes.size() == 1);
  const ts::Class& c = m.classes[0];
  CHECK(c.name == "ControlFlowBlock");
  CHECK(c.base == ts::ClassBase::module);
  CHECK(c.loc.line == 1);
  CHECK(c.loc.column == 1);
  REQUIRE(c.fields.size() == 4);
  CHECK(c.fields[3].name == "lin");
  CHECK(ts::to_source(*c.fields[3].type) == "__torch__.torch.nn.modules.linear.Linear");
  CHECK(c.fields[3].loc.line == 7);
  CHECK(c.fields[3].loc.column == 3);
  REQUIRE(c.methods.size() == 1);
  const ts::Def& d = c.methods[0];
  REQUIRE(d.params.size() == 3);
  CHECK(d.params[2].name == "mask");
  CHECK(d.params[2].loc.line == 10);
  CHECK(d.params[2].loc.column == 5);
  REQUIRE(d.body.size() == 8);
  const ts::Stmt& loop = d.body[2];
  CHECK(loop.kind == ts::StmtKind::for_);
  CHECK(loop.loc.line == 13);
  CHECK(loop.loc.column == 5);
  CHECK(ts::to_source(loop.targets[0]) == "_0");
  CHECK(ts::to_source(*loop.value) == "range(steps)");
  REQUIRE(loop.body.size() == 3);
  CHECK(ts::to_source(*loop.body[1].value) == "torch.add(h, torch.relu(lin.forward(h)))");
  const ts::Stmt& branch = d.body[3];
  CHECK(branch.kind == ts::StmtKind::if_);
  CHECK(branch.body.size() == 2);
  CHECK(branch.orelse.size() == 1);
  CHECK(ts::to_source(*branch.body[0].value) == "torch.to(torch.unsqueeze(mask, -1), ops.prim.dtype(h))");
  const ts::Stmt& w = d.body[6];
  CHECK(w.kind == ts::StmtKind::while_);
  REQUIRE(w.body.size() == 2);
  const ts::Stmt& unpack = w.body[1];
  CHECK(unpack.kind == ts::StmtKind::assign);
  REQUIRE(unpack.targets.size() == 1);
  CHECK(unpack.targets[0].kind == ts::ExprKind::tuple);
  CHECK(unpack.targets[0].children.size() == 3);
  CHECK(unpack.value->kind == ts::ExprKind::tuple);
  CHECK(unpack.value->children.size() == 3);
  CHECK(unpack.loc.line == 26);
  CHECK(unpack.loc.column == 7);
}

// --- constructs ----------------------------------------------------------------------------

TEST_CASE("ts parser: class declarations") {
  const ts::Module m = parse(R"(op_version_set = 10
import torch
from typing import List
class ModuleList(Module):
  __parameters__ = ["weight", "bias", ]
  __buffers__ = ["running_mean", ]
  __forward_pre_hooks__ = ["pre", ]
  __forward_hooks__ = ["post"]
  __annotations__ = []
  __annotations__["0"] = __torch__.a.___torch_mangle_3.Layer
  training : bool
  eps : Final[float] = 1.0000000000000001e-05
  normalized_shape : Final[Tuple[int]] = (16,)
  d : Dict[str, List[Optional[Tensor]]]
  e : Tuple[()]
class Point(NamedTuple):
  x : int
  y : int = 3
class Color(Enum):
  RED = 1
  GREEN = "g"
class Plain:
  pass
class I(Interface):
  def forward(self, x: Tensor) -> Tensor:
    pass
)");
  CHECK(m.op_version_set == 10);
  REQUIRE(m.classes.size() == 5);
  const ts::Class& c = m.classes[0];
  CHECK(c.parameters == std::vector<std::string>{"weight", "bias"});
  CHECK(c.buffers == std::vector<std::string>{"running_mean"});
  CHECK(c.forward_pre_hooks == std::vector<std::string>{"pre"});
  CHECK(c.forward_hooks == std::vector<std::string>{"post"});
  CHECK(c.has_annotations);
  REQUIRE(c.fields.size() == 6);
  CHECK(c.fields[0].quoted);
  CHECK(c.fields[0].name == "0");
  CHECK(c.fields[0].type->name == "__torch__.a.___torch_mangle_3.Layer");
  CHECK(c.fields[2].type->name == "Final");
  CHECK(c.fields[2].value->kind == ts::ExprKind::floating);
  CHECK(c.fields[2].value->float_value == 1.0000000000000001e-05);
  CHECK(ts::to_source(*c.fields[3].value) == "(16,)");
  CHECK(ts::to_source(*c.fields[4].type) == "Dict[str, List[Optional[Tensor]]]");
  CHECK(c.fields[5].type->subscripted);
  CHECK(c.fields[5].type->args.empty());
  CHECK(ts::to_source(*c.fields[5].type) == "Tuple[()]");
  CHECK(m.classes[1].base == ts::ClassBase::named_tuple);
  CHECK(m.classes[1].fields[1].value->int_value == 3);
  CHECK(m.classes[2].base == ts::ClassBase::enum_);
  CHECK(!m.classes[2].fields[0].type);
  CHECK(m.classes[2].fields[1].value->text == "g");
  CHECK(m.classes[3].base == ts::ClassBase::none);
  CHECK(m.classes[3].fields.empty());
  CHECK(m.classes[4].base == ts::ClassBase::interface);
  CHECK(m.classes[4].methods[0].body[0].kind == ts::StmtKind::pass);
}

TEST_CASE("ts parser: function signatures") {
  const ts::Module m = parse(R"(def layer_norm(input: Tensor,
    normalized_shape: List[int],
    weight: Optional[Tensor]=None,
    eps: float=1.0000000000000001e-05,
    *,
    inplace: bool=False) -> Tensor:
  _0 = torch.layer_norm(input, normalized_shape, weight, None, eps)
  return _0
def g(x, y, ) -> None: return None
)");
  REQUIRE(m.functions.size() == 2);
  const ts::Def& d = m.functions[0];
  CHECK(d.name == "layer_norm");
  REQUIRE(d.params.size() == 5);
  CHECK(ts::to_source(*d.params[1].type) == "List[int]");
  CHECK(d.params[2].default_value->kind == ts::ExprKind::none);
  CHECK(!d.params[3].keyword_only);
  CHECK(d.params[4].keyword_only);
  CHECK(d.params[4].default_value->kind == ts::ExprKind::false_);
  CHECK(d.returns->name == "Tensor");
  const ts::Def& g = m.functions[1];
  CHECK(g.params.size() == 2);
  CHECK(!g.params[0].type);
  CHECK(g.returns->name == "None");
  REQUIRE(g.body.size() == 1);
  CHECK(g.body[0].kind == ts::StmtKind::return_);
  CHECK(ts::to_source(m) ==
        "def layer_norm(input: Tensor, normalized_shape: List[int], weight: Optional[Tensor]=None, "
        "eps: float=1.0000000000000001e-05, *, inplace: bool=False) -> Tensor:\n"
        "  _0 = torch.layer_norm(input, normalized_shape, weight, None, eps)\n"
        "  return _0\n"
        "def g(x, y) -> None:\n"
        "  return None\n");
}

TEST_CASE("ts parser: statements") {
  const auto body = body_of(R"(def f(self, x: Tensor):
  a, b, = x
  _3, h1, n = x, y, z
  a = b = 1
  x += 1
  self.w[0] //= 2
  y : int = 3
  torch.add_(x, 1)
  ops.prim.RaiseException("boom", "builtins.RuntimeError")
  raise Exception("x")
  assert x, "message"
  assert bool(x)
  for i, j in zip(a, b):
    if i:
      continue
    elif j:
      break
    elif not j:
      pass
    else:
      return
  while i < 3: i = i + 1
  return x, y
)");
  REQUIRE(body.size() == 14);
  using K = ts::StmtKind;
  const K kinds[] = {K::assign, K::assign, K::assign, K::aug_assign, K::aug_assign, K::assign, K::expr,
                     K::expr,   K::raise,  K::assert_, K::assert_,   K::for_,       K::while_, K::return_};
  for (std::size_t i = 0; i < body.size(); ++i) {
    INFO(i);
    CHECK(body[i].kind == kinds[i]);
    CHECK(body[i].loc.line == (i < 12 ? i + 2 : i + 10));  // the for loop spans 9 lines
    CHECK(body[i].loc.column == 3);
  }
  CHECK(body[0].targets[0].children.size() == 2);
  CHECK(body[2].targets.size() == 2);
  CHECK(body[3].op == ts::Op::add);
  CHECK(body[4].op == ts::Op::floordiv);
  CHECK(ts::to_source(body[4].targets[0]) == "self.w[0]");
  CHECK(body[5].annotation->name == "int");
  CHECK(body[9].message->text == "message");
  CHECK(!body[10].message);
  const ts::Stmt& loop = body[11];
  CHECK(loop.targets[0].kind == ts::ExprKind::tuple);
  const ts::Stmt& chain = loop.body[0];
  REQUIRE(chain.orelse.size() == 1);
  CHECK(chain.orelse[0].is_elif);
  REQUIRE(chain.orelse[0].orelse.size() == 1);
  CHECK(chain.orelse[0].orelse[0].is_elif);
  CHECK(chain.orelse[0].orelse[0].orelse[0].kind == K::return_);
  CHECK(!chain.orelse[0].orelse[0].orelse[0].value);
  CHECK(body[12].body.size() == 1);
  CHECK(body[13].value->kind == ts::ExprKind::tuple);
}

TEST_CASE("ts parser: the canonical printer") {
  const std::string source =
      "class A(Module):\n"
      "  __parameters__ = [\"w\", ]\n"
      "  __buffers__ = []\n"
      "  __annotations__[\"0\"] = __torch__.B\n"
      "  w : Tensor\n"
      "  k : Final[int] = 3\n"
      "  def forward(self: __torch__.A, x: Tensor, *, y: int=1) -> Tuple[Tensor, Tensor]:\n"
      "    a, b = torch.split(x, 1, -1)\n"
      "    if a is None:\n"
      "      pass\n"
      "    elif a is not b:\n"
      "      a = -a\n"
      "    else:\n"
      "      for i in range(3):\n"
      "        continue\n"
      "    return a, b\n"
      "def f(x: Tensor) -> Tensor:\n"
      "  while True:\n"
      "    break\n"
      "  return x\n";
  CHECK(ts::to_source(parse(source)) == source);
}

TEST_CASE("ts parser: expressions and precedence") {
  CHECK(canon("a + b * c") == "a + b * c");
  CHECK(canon("(a + b) * c") == "(a + b) * c");
  CHECK(canon("a - (b - c)") == "a - (b - c)");
  CHECK(canon("(a - b) - c") == "a - b - c");
  CHECK(canon("-x ** 2") == "-x ** 2");
  CHECK(canon("(-x) ** 2") == "(-x) ** 2");
  CHECK(canon("a ** b ** c") == "a ** b ** c");
  CHECK(canon("(a ** b) ** c") == "(a ** b) ** c");
  CHECK(canon("2 ** -1") == "2 ** -1");
  CHECK(canon("2 ** (-1)") == "2 ** -1");
  CHECK(canon("not a == b and c or d") == "not a == b and c or d");
  CHECK(canon("not (a and b)") == "not (a and b)");
  CHECK(canon("a if b else c if d else e") == "a if b else c if d else e");
  CHECK(canon("(a if b else c) if d else e") == "(a if b else c) if d else e");
  CHECK(canon("x not in y") == "x not in y");
  CHECK(canon("a < b < c") == "a < b < c");
  CHECK(canon("(a < b) < c") == "a < b < c");
  CHECK(canon("a < (b < c)") == "a < (b < c)");
  CHECK(expr_of("a < b < c").children[0].op == ts::Op::lt);
  CHECK(canon("a // b % c @ d") == "a // b % c @ d");
  CHECK(canon("a | b ^ c & d << e >> f") == "a | b ^ c & d << e >> f");
  CHECK(canon("~a") == "~a");
  CHECK(canon("+a") == "+a");

  const ts::Expr e = expr_of("a + b * c");
  CHECK(e.kind == ts::ExprKind::binary);
  CHECK(e.op == ts::Op::add);
  CHECK(e.children[1].op == ts::Op::mul);
  CHECK(e.children[1].loc.column == 14);  // "  return a + b * c": b is column 14
  CHECK(e.height == 3);
  const ts::Expr t = expr_of("a if c else b");
  CHECK(t.kind == ts::ExprKind::ternary);
  CHECK(t.children[0].text == "c");
  CHECK(t.children[1].text == "a");
  CHECK(t.children[2].text == "b");
  CHECK(expr_of("a is not b").op == ts::Op::is_not);
  CHECK(expr_of("a not in b").op == ts::Op::not_in);
}

TEST_CASE("ts parser: calls, subscripts, attributes and builtins") {
  CHECK(canon("(lin).forward(h, )") == "lin.forward(h)");
  CHECK(canon("torch.ones([_0, _7], dtype=None, layout=None, device=torch.device(\"cpu\"), pin_memory=False)") ==
        "torch.ones([_0, _7], dtype=None, layout=None, device=torch.device(\"cpu\"), pin_memory=False)");
  CHECK(canon("(t)[1]") == "t[1]");
  CHECK(canon("x[1:2]") == "x[1:2]");
  CHECK(canon("x[:, ::2]") == "x[:, ::2]");
  CHECK(canon("x[a:]") == "x[a:]");
  CHECK(canon("x[(a, b)]") == "x[(a, b)]");
  CHECK(canon("getattr(self.layer, \"0\")") == "getattr(self.layer, \"0\")");
  CHECK(canon("__torch__.a.___torch_mangle_3.Point(1, 2)") == "__torch__.a.___torch_mangle_3.Point(1, 2)");
  CHECK(canon("(1).bit_length()") == "(1).bit_length()");

  const ts::Expr call = expr_of("torch.scaled_dot_product_attention(q, k, v, None, 0., False, scale=0.125)");
  REQUIRE(call.kind == ts::ExprKind::call);
  CHECK(call.children.size() == 8);
  CHECK(call.keywords == std::vector<std::string>{"scale"});
  CHECK(call.children[5].float_value == 0.0);
  CHECK(call.children[5].text == "0.");
  CHECK(call.children[7].float_value == 0.125);
  const ts::Expr& callee = call.children[0];
  CHECK(callee.kind == ts::ExprKind::attribute);
  CHECK(callee.text == "scaled_dot_product_attention");
  CHECK(callee.children[0].text == "torch");

  const ts::Expr a = expr_of("annotate(List[int], [])");
  REQUIRE(a.children.size() == 3);
  CHECK(a.children[1].kind == ts::ExprKind::type);
  CHECK(ts::to_source(*a.children[1].type) == "List[int]");
  CHECK(a.children[2].kind == ts::ExprKind::list);
  CHECK(expr_of("unchecked_cast(Dict[str, Tensor], x)").children[1].type->args.size() == 2);
  CHECK(expr_of("uninitialized(Tensor)").children[1].kind == ts::ExprKind::type);
  CHECK(canon("annotate(Optional[Tuple[int, int]], None)") == "annotate(Optional[Tuple[int, int]], None)");
  CHECK(canon("int(x) + float(y) * bool(z)") == "int(x) + float(y) * bool(z)");
  const ts::Expr s = expr_of("x[0:-1:2]");
  REQUIRE(s.kind == ts::ExprKind::subscript);
  REQUIRE(s.children[1].kind == ts::ExprKind::slice);
  CHECK(s.children[1].children[1].kind == ts::ExprKind::unary);
  CHECK(expr_of("x[:]").children[1].children[0].kind == ts::ExprKind::omitted);
}

TEST_CASE("ts parser: literals") {
  const ts::Expr big = expr_of("9223372036854775807");
  CHECK(big.kind == ts::ExprKind::integer);
  CHECK(big.int_value == INT64_MAX);
  const ts::Expr neg = expr_of("-1");
  CHECK(neg.kind == ts::ExprKind::unary);
  CHECK(neg.children[0].int_value == 1);
  const ts::Expr min = expr_of("-9223372036854775808");
  CHECK(min.kind == ts::ExprKind::integer);
  CHECK(min.int_value == INT64_MIN);
  CHECK(canon("-9223372036854775808") == "-9223372036854775808");
  CHECK(canon("(-9223372036854775808) ** 2") == "(-9223372036854775808) ** 2");
  CHECK(expr_of("1.0000000000000001e-05").float_value == 1.0000000000000001e-05);
  CHECK(expr_of("-3.4028234663852886e+38").children[0].float_value == 3.4028234663852886e+38);
  CHECK(expr_of("1.").float_value == 1.0);
  CHECK(expr_of(".5").float_value == 0.5);
  CHECK(expr_of("1e3").float_value == 1000.0);
  CHECK(expr_of("4.9406564584124654e-324").float_value > 0);
  CHECK(expr_of("inf").kind == ts::ExprKind::name);
  CHECK(expr_of("True").kind == ts::ExprKind::true_);
  CHECK(expr_of("False").kind == ts::ExprKind::false_);
  CHECK(expr_of("None").kind == ts::ExprKind::none);
  CHECK(expr_of("()").kind == ts::ExprKind::tuple);
  CHECK(expr_of("()").children.empty());
  CHECK(expr_of("(x,)").children.size() == 1);
  CHECK(expr_of("(x)").kind == ts::ExprKind::name);
  CHECK(expr_of("[1, 2, ]").children.size() == 2);
  const ts::Expr d = expr_of("{\"a\": 1, \"b\": [2]}");
  CHECK(d.kind == ts::ExprKind::dict);
  CHECK(d.children.size() == 4);
  CHECK(canon("{}") == "{}");
  CHECK(canon("{\"a\": 1, }") == "{\"a\": 1}");

  CHECK(expr_of(R"("a\"b\\c\n\t\r\a\b\f\v\'")").text == "a\"b\\c\n\t\r\a\b\f\v'");
  CHECK(expr_of(R"('it\'s "x"')").text == "it's \"x\"");
  CHECK(expr_of(R"("\303\251\x41\000")").text == std::string("\xc3\xa9" "A\0", 4));
  CHECK(expr_of("\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"").text == "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  CHECK(expr_of(R"("a" 'b')").text == "ab");
  CHECK(canon(R"("q\"\\\n\001\303\251")") == R"("q\"\\\n\001\303\251")");
  CHECK(canon("\"\xc3\xa9\"") == R"("\303\251")");
}

TEST_CASE("ts parser: layout") {
  // Blank lines, comments, CRLF, continuation lines and brackets spanning lines.
  const ts::Module m = parse(
      "# a comment\r\n"
      "\r\n"
      "def f(x: Tensor,\r\n"
      "      y: Tensor) -> Tensor:\r\n"
      "    # indented comment\r\n"
      "\r\n"
      "    z = torch.add(x,\r\n"
      "  y)  # trailing\r\n"
      "    w = z + \\\r\n"
      "        1\r\n"
      "    return w");
  REQUIRE(m.functions.size() == 1);
  const ts::Def& d = m.functions[0];
  CHECK(d.loc.line == 3);
  REQUIRE(d.body.size() == 3);
  CHECK(d.body[0].loc.line == 7);
  CHECK(d.body[0].loc.column == 5);
  CHECK(d.body[1].loc.line == 9);
  CHECK(d.body[2].loc.line == 11);
  CHECK(ts::to_source(*d.body[1].value) == "z + 1");
  CHECK(parse("").classes.empty());
  CHECK(parse("\n\n# only a comment\n").functions.empty());
}

// --- errors --------------------------------------------------------------------------------

TEST_CASE("ts parser: errors name the record, line and column") {
  CHECK(error_of("def f(:):\n  pass\n") == "m/code/__torch__/a.py:1:7: expected a parameter name, found ':'");
  CHECK(error_of("def f():\n  x = )\n") == "m/code/__torch__/a.py:2:7: unmatched ')'");
  CHECK(error_of("def f():\n  x = (1]\n") ==
        "m/code/__torch__/a.py:2:9: ']' does not match '(' opened at 2:7");
  CHECK(error_of("def f():\n  x = 1 2\n") == "m/code/__torch__/a.py:2:9: expected end of line, found number 2");
  CHECK(error_of("def f():\n  return torch.add(x, \n") == "m/code/__torch__/a.py:2:19: '(' was never closed");
  CHECK(error_of("def f():\n  x = [1,\n  2,\n") == "m/code/__torch__/a.py:2:7: '[' was never closed");
  CHECK(error_of("def f():\n  x = \"abc\n") == "m/code/__torch__/a.py:2:7: unterminated string literal");
  CHECK(error_of("def f():\n  x = 'abc") == "m/code/__torch__/a.py:2:7: unterminated string literal");
  CHECK(error_of("def f():\n  x = \"ab\xc3(\"\n") == "m/code/__torch__/a.py:2:10: invalid UTF-8 in string literal");
  CHECK(error_of("def f():\n  x = \"\xed\xa0\x80\"\n") == "m/code/__torch__/a.py:2:8: invalid UTF-8 in string literal");
  CHECK(error_of("def f():\n  x = \"\xc0\xaf\"\n") == "m/code/__torch__/a.py:2:8: invalid UTF-8 in string literal");
  CHECK(error_of("def f():\n  x = \"\\q\"\n") == "m/code/__torch__/a.py:2:8: unsupported escape '\\q' in string literal");
  CHECK(error_of("def f():\n  x = \"\\12\"\n") ==
        "m/code/__torch__/a.py:2:8: octal escape must be three digits from \\000 to \\377");
  CHECK(error_of("def f():\n  x = \"\"\"doc\"\"\"\n") == "m/code/__torch__/a.py:2:7: triple-quoted strings are not supported");
  CHECK(error_of("def f():\n  x = a \xc3\xa9\n") == "m/code/__torch__/a.py:2:9: unexpected character '\\xc3'");
  CHECK(error_of("def f():\n  x = 1$\n") == "m/code/__torch__/a.py:2:8: unexpected character '$'");
  CHECK(error_of("x = 1\n") == "m/code/__torch__/a.py:1:1: expected 'class' or 'def' at top level, found name 'x'");
  CHECK(error_of("  def f():\n    pass\n") == "m/code/__torch__/a.py:1:3: unexpected indent");
  CHECK(error_of("def f():\n  x = 1\n    y = 2\n") == "m/code/__torch__/a.py:3:5: unexpected indent");
  CHECK(error_of("def f():\n    x = 1\n  y = 2\n") ==
        "m/code/__torch__/a.py:3:3: unindent does not match any outer indentation level");
  CHECK(error_of("def f():\nx = 1\n") == "m/code/__torch__/a.py:2:1: expected an indented block, found name 'x'");
  CHECK(error_of("def f():\n\tx = 1\n") ==
        "m/code/__torch__/a.py:2:1: tab in indentation (serialized code indents with spaces)");
  CHECK(error_of("class A(Base):\n  pass\n") ==
        "m/code/__torch__/a.py:1:9: class base must be Module, NamedTuple, Interface, ModuleInterface or Enum, "
        "found name 'Base'");
  CHECK(error_of("class A(Module):\n  __parameters__ = [w]\n") ==
        "m/code/__torch__/a.py:2:21: __parameters__ must be a list of strings, found name 'w'");
  CHECK(error_of("class A(Module):\n  x = \n") == "m/code/__torch__/a.py:2:7: expected an expression, found end of line");
  CHECK(error_of("class A(Module):\n  return 1\n") ==
        "m/code/__torch__/a.py:2:3: expected a declaration or 'def' in a class body, found 'return'");
  CHECK(error_of("def f():\n  f(a=1, 2)\n") == "m/code/__torch__/a.py:2:10: positional argument follows keyword argument");
  CHECK(error_of("def f():\n  f(x) = 1\n") == "m/code/__torch__/a.py:2:3: cannot assign to a function call");
  CHECK(error_of("def f():\n  1, a = t\n") == "m/code/__torch__/a.py:2:3: cannot assign to a literal");
  CHECK(error_of("def f():\n  else:\n") == "m/code/__torch__/a.py:2:3: unexpected 'else'");
  CHECK(error_of("def f():\n  x = 9223372036854775808\n") ==
        "m/code/__torch__/a.py:2:7: integer literal out of range: 9223372036854775808");
  CHECK(error_of("def f():\n  x = 99999999999999999999\n") ==
        "m/code/__torch__/a.py:2:7: integer literal out of range: 99999999999999999999");
  CHECK(error_of("def f():\n  x = 0x10\n") == "m/code/__torch__/a.py:2:7: malformed number '0x10'");
  CHECK(error_of("def f():\n  x = 1e\n") == "m/code/__torch__/a.py:2:7: malformed number (exponent has no digits)");
  CHECK(error_of("def f():\n  x = 1e999\n") == "m/code/__torch__/a.py:2:7: float literal out of range: 1e999");
  CHECK(error_of("def f():\n  g(a=1, b=2, a=3)\n") == "m/code/__torch__/a.py:2:15: keyword argument 'a' repeated");
  CHECK(error_of("def f(x, x):\n  pass\n") == "m/code/__torch__/a.py:1:10: duplicate parameter 'x'");
  CHECK(error_of("def f():\n  def g():\n    pass\n") == "m/code/__torch__/a.py:2:3: 'def' is not supported here");
  CHECK(error_of("def f()\n  pass\n") == "m/code/__torch__/a.py:1:8: expected ':', found end of line");
  CHECK(error_of("def f() -> List[:]:\n  pass\n") == "m/code/__torch__/a.py:1:17: expected a type, found ':'");

  // The whole what(): "<file>:<record>:<line>:<column>: <message>".
  try {
    ts::parse_module_source("def f(:):\n", "model.pt", "model/code/__torch__.py");
    FAIL("no error");
  } catch (const kiln::Error& e) {
    CHECK(std::string(e.what()) == "model.pt:model/code/__torch__.py:1:7: expected a parameter name, found ':'");
  }
}

TEST_CASE("ts parser: depth limits") {
  const auto nested = [](const std::string& open, const std::string& leaf, const std::string& close, int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += open;
    s += leaf;
    for (int i = 0; i < n; ++i) s += close;
    return s;
  };
  // Within the limits: 200 brackets, a chain of 200 additions, 99 nested blocks.
  CHECK(canon(nested("(", "x", ")", 200)) == "x");
  CHECK(expr_of(nested("[", "x", "]", 200)).height == 201);
  std::string sum = "x";
  for (int i = 0; i < 200; ++i) sum += " + x";
  CHECK(expr_of(sum).height == 201);

  // Past them: recursion (brackets, unary chains, ** chains, types, blocks) and tree height
  // (left-nested chains that the parser builds in a loop).
  CHECK(error_of("def f():\n  return " + nested("(", "x", ")", 300) + "\n") ==
        "m/code/__torch__/a.py:2:266: expression nested too deeply (limit 256)");
  CHECK(error_of("def f():\n  return " + nested("-", "x", "", 300) + "\n") ==
        "m/code/__torch__/a.py:2:265: expression nested too deeply (limit 256)");
  CHECK(error_of("def f():\n  return " + nested("not ", "x", "", 300) + "\n") ==
        "m/code/__torch__/a.py:2:1030: expression nested too deeply (limit 256)");
  std::string power = "x";
  for (int i = 0; i < 300; ++i) power += " ** x";
  CHECK(error_of("def f():\n  return " + power + "\n").find("expression nested too deeply (limit 256)") !=
        std::string::npos);
  std::string chain = "x";
  for (int i = 0; i < 300; ++i) chain += " + x";
  CHECK(error_of("def f():\n  return " + chain + "\n") ==
        "m/code/__torch__/a.py:2:10: expression nested too deeply (limit 256)");
  CHECK(error_of("def f():\n  return x" + nested("", "", "[0]", 300) + "\n") ==
        "m/code/__torch__/a.py:2:10: expression nested too deeply (limit 256)");
  CHECK(error_of("def f():\n  return x" + nested("", "", ".a", 300) + "\n") ==
        "m/code/__torch__/a.py:2:10: expression nested too deeply (limit 256)");
  CHECK(error_of("def f(x: " + nested("List[", "int", "]", 300) + "):\n  pass\n") ==
        "m/code/__torch__/a.py:1:1290: type nested too deeply (limit 256)");

  std::string deep = "def f():\n";
  for (int i = 1; i < 120; ++i) deep += std::string(static_cast<std::size_t>(i) * 2, ' ') + "if x:\n";
  deep += std::string(240, ' ') + "pass\n";
  CHECK(error_of(deep) == "m/code/__torch__/a.py:102:203: blocks nested too deeply (limit 100)");
  std::string ok = "def f():\n";
  for (int i = 1; i < 99; ++i) ok += std::string(static_cast<std::size_t>(i) * 2, ' ') + "if x:\n";
  ok += std::string(198, ' ') + "pass\n";
  CHECK(parse(ok).functions.size() == 1);
  std::string elifs = "def f():\n  if a:\n    pass\n";
  for (int i = 0; i < 150; ++i) elifs += "  elif a:\n    pass\n";
  CHECK(error_of(elifs).find("blocks nested too deeply (limit 100)") != std::string::npos);
}

TEST_CASE("ts parser: tokens") {
  const ts::SourceName src{"m.pt", "r.py"};
  const auto toks = ts::tokenize("def f(a):\n  return a->b != c // d\n", src);
  std::vector<std::string> texts;
  for (const auto& t : toks) texts.push_back(t.text);
  CHECK(texts == std::vector<std::string>{"def", "f", "(", "a", ")", ":", "", "", "return", "a", "->", "b", "!=",
                                          "c", "//", "d", "", "", ""});
  CHECK(toks[0].kind == ts::TokenKind::keyword);
  CHECK(toks[1].kind == ts::TokenKind::name);
  CHECK(toks[6].kind == ts::TokenKind::newline);
  CHECK(toks[7].kind == ts::TokenKind::indent);
  CHECK(toks[16].kind == ts::TokenKind::newline);
  CHECK(toks[17].kind == ts::TokenKind::dedent);
  CHECK(toks[18].kind == ts::TokenKind::end);
  CHECK(toks[10].loc.line == 2);
  CHECK(toks[10].loc.column == 11);
}
