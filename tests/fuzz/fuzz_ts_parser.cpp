// libFuzzer target: the TorchScript source lexer and parser over arbitrary bytes.
//
// parse_module_source must answer every input with a tree or a bad_input error. A tree must
// respect the depth limits the parser promises (later walks rely on them), and its canonical
// print must parse back to a tree that prints the same (so the printer and parser agree).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "format/ts_ast.hpp"
#include "format/ts_parser.hpp"
#include "tests/fuzz/fuzz_common.hpp"

namespace ts = kiln::format::ts;

namespace {

void check_type(const ts::TypeExpr& t, std::uint32_t depth) {
  if (depth > ts::kMaxExprDepth) kiln::fuzz::finding("type deeper than kMaxExprDepth");
  for (const ts::TypeExpr& a : t.args) check_type(a, depth + 1);
}

// Returns the real height, checking the stored one and the limit.
std::uint32_t check_expr(const ts::Expr& e) {
  std::uint32_t h = 0;
  for (const ts::Expr& c : e.children) {
    const std::uint32_t ch = check_expr(c);
    if (ch > h) h = ch;
  }
  if (e.height != h + 1) kiln::fuzz::finding("Expr::height is wrong");
  if (e.height > ts::kMaxExprDepth) kiln::fuzz::finding("expression taller than kMaxExprDepth");
  if (e.kind == ts::ExprKind::type) {
    if (!e.type) kiln::fuzz::finding("type expression without a type");
    check_type(*e.type, 1);
  }
  if (e.kind == ts::ExprKind::call && e.keywords.size() >= e.children.size()) {
    kiln::fuzz::finding("call with more keywords than arguments");
  }
  return h + 1;
}

void check_block(const std::vector<ts::Stmt>& body, std::uint32_t depth) {
  if (depth > ts::kMaxBlockDepth + 1) kiln::fuzz::finding("blocks deeper than kMaxBlockDepth");
  for (const ts::Stmt& s : body) {
    for (const ts::Expr& t : s.targets) check_expr(t);
    if (s.value) check_expr(*s.value);
    if (s.test) check_expr(*s.test);
    if (s.message) check_expr(*s.message);
    if (s.annotation) check_type(*s.annotation, 1);
    check_block(s.body, depth + 1);
    check_block(s.orelse, depth + 1);
  }
}

void check_def(const ts::Def& d, std::uint32_t depth) {
  for (const ts::Param& p : d.params) {
    if (p.type) check_type(*p.type, 1);
    if (p.default_value) check_expr(*p.default_value);
  }
  if (d.returns) check_type(*d.returns, 1);
  check_block(d.body, depth + 1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::optional<ts::Module> module;
  kiln::fuzz::expect_bad_input_only(
      [&] { module.emplace(ts::parse_module_source(text, "fuzz.pt", "fuzz/code/__torch__.py")); });
  if (!module) return 0;
  for (const ts::Class& c : module->classes) {
    for (const ts::ClassField& f : c.fields) {
      if (f.type) check_type(*f.type, 1);
      if (f.value) check_expr(*f.value);
    }
    for (const ts::Def& d : c.methods) check_def(d, 1);
  }
  for (const ts::Def& d : module->functions) check_def(d, 0);

  const std::string printed = ts::to_source(*module);
  std::string reprinted;
  try {
    reprinted = ts::to_source(ts::parse_module_source(printed, "fuzz.pt", "reprint"));
  } catch (const kiln::Error& e) {
    std::fprintf(stderr, "reprint failed: %s\n--- printed:\n%s\n", e.what(), printed.c_str());
    kiln::fuzz::finding("the canonical print does not parse");
  }
  if (reprinted != printed) {
    std::fprintf(stderr, "--- printed:\n%s\n--- reprinted:\n%s\n", printed.c_str(), reprinted.c_str());
    kiln::fuzz::finding("the canonical print does not parse back to the same tree");
  }
  return 0;
}
