// The importer and the pass pipeline against every fixture archive: the imported graph has
// PyTorch's ops (the manifest's graph_ops_canonical, dumped by the fixture generator from
// PyTorch's inlined graph of the same archive after the same canonical rewrite), optimizing
// keeps it verified and only removes, the shape report finds exactly the baked sizes, and
// archives with unknown ops or broken source are refused with exact messages.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "engine/import/importer.hpp"
#include "engine/import/op_schema.hpp"
#include "engine/ir/print.hpp"
#include "engine/ir/sym_int.hpp"
#include "engine/ir/verify.hpp"
#include "engine/passes/passes.hpp"
#include "engine/passes/pipeline.hpp"
#include "format/archive.hpp"
#include "kiln/error.hpp"
#include "tests/support/bytes.hpp"
#include "tests/support/fixtures.hpp"

namespace ir = kiln::ir;
using kiln::format::Archive;

namespace {

std::string archive_path(const kiln::testing::Fixture& f) { return (f.dir / f.manifest.at("archive").as_string()).string(); }

std::map<std::string, long> op_counts(const ir::Graph& g) {
  std::map<std::string, long> counts;
  ir::walk(g, [&](ir::NodeId n) {
    const std::string kind(ir::kind_str(g, n));
    if (kind != "prim::Constant") ++counts[kind];
  });
  return counts;
}

std::map<std::string, long> manifest_counts(const kiln::testing::Fixture& f, const char* key) {
  std::map<std::string, long> counts;
  for (const auto& [kind, n] : f.manifest.at(key).as_object()) {
    if (kind == "prim::Constant" || kind == "prim::GetAttr") continue;  // kiln resolves these at import
    counts[kind] = static_cast<long>(n.as_int());
  }
  return counts;
}

std::string diff(const std::map<std::string, long>& want, const std::map<std::string, long>& got) {
  std::string out;
  std::map<std::string, long> all = want;
  for (const auto& [k, v] : got) all.emplace(k, 0);
  for (const auto& [k, v] : all) {
    const long w = want.count(k) ? want.at(k) : 0, g = got.count(k) ? got.at(k) : 0;
    if (w != g) out += k + ": PyTorch " + std::to_string(w) + ", kiln " + std::to_string(g) + "; ";
  }
  return out;
}

// The message of the kiln::Error `fn` throws, "" if none.
template <class Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const kiln::Error& e) {
    return e.what();
  }
  return "";
}

const kiln::testing::Fixture& fixture(const std::string& generation, const std::string& name) {
  static const std::vector<kiln::testing::Fixture> all = kiln::testing::all_fixtures();
  for (const auto& f : all)
    if (f.generation == generation && f.name == name) return f;
  FAIL("no fixture " << generation << "/" << name);
  return all.front();
}

}  // namespace

TEST_CASE("import: every fixture's graph has PyTorch's ops") {
  for (const auto& f : kiln::testing::all_fixtures()) {
    INFO(f.generation << "/" << f.name);
    const Archive archive = Archive::open(archive_path(f));
    kiln::import::ImportedModel m = kiln::import::import_model(archive);
    ir::verify(m.graph);
    CHECK(m.input_names.size() == f.manifest.at("input_names").as_array().size());
    // The canonical rewrite both sides get: Int(NumToTensor(x)) -> x, then dead code.
    kiln::passes::fold_int_round_trips(m.graph);
    kiln::passes::eliminate_dead_code(m.graph);
    const auto want = manifest_counts(f, "graph_ops_canonical");
    const auto got = op_counts(m.graph);
    CHECK_MESSAGE(want == got, diff(want, got));
  }
}

TEST_CASE("import: optimizing keeps a verified graph and only removes ops") {
  for (const auto& f : kiln::testing::all_fixtures()) {
    INFO(f.generation << "/" << f.name);
    const Archive archive = Archive::open(archive_path(f));
    kiln::import::ImportedModel m = kiln::import::import_model(archive);
    const kiln::passes::OptimizeResult r = kiln::passes::optimize(m);
    ir::verify(m.graph);
    const auto before = manifest_counts(f, "graph_ops_canonical");
    for (const auto& entry : op_counts(m.graph)) {
      const std::string& kind = entry.first;
      const long n = entry.second;
      INFO(kind);
      if (kind.starts_with("kiln::")) continue;  // fusions of ops counted here (fusion_test.cpp)
      // functionalize turns add_ into add; a view of a removed contiguous becomes a reshape;
      // Q, K and V as one GEMM each become a slice of it.
      auto count = [&](const char* k) { return before.count(k) ? before.at(k) : 0L; };
      const long allowed = count(kind.c_str()) + (kind == "aten::add" ? count("aten::add_") : 0) +
                           (kind == "aten::reshape" ? count("aten::view") : 0) +
                           (kind == "aten::slice" ? count("aten::linear") : 0);
      CHECK(n <= allowed);
    }
    const auto after = op_counts(m.graph);
    CHECK(after.count("aten::dropout") == 0);
    CHECK(after.count("aten::detach") == 0);
    CHECK(after.count("aten::add_") == 0);
    // Every tensor of a transformers model has a dtype and a shape after inference.
    if (f.manifest.at("transformers").is_string()) {
      for (const ir::Value& v : m.graph.values) {
        if (v.erased || v.type.kind != ir::TypeKind::tensor) continue;
        INFO(v.name);
        CHECK(v.type.tensor.dtype.has_value());
        CHECK(v.type.tensor.shape.has_value());
      }
    }
  }
}

namespace {

// The report's lines about sizes the trace fixed (refuses and silent), or its limits.
std::vector<std::string> report_lines(const kiln::passes::ShapeReport& r, bool limits) {
  kiln::passes::ShapeReport only = r;
  only.findings.clear();
  for (const auto& f : r.findings)
    if ((f.kind == kiln::passes::ShapeFinding::Kind::limit) == limits) only.findings.push_back(f);
  return only.lines();
}

}  // namespace

TEST_CASE("shape report: only the really baked sizes are reported") {
  for (const auto& f : kiln::testing::all_fixtures()) {
    INFO(f.generation << "/" << f.name);
    const Archive archive = Archive::open(archive_path(f));
    kiln::import::ImportedModel m = kiln::import::import_model(archive);
    const kiln::passes::OptimizeResult r = kiln::passes::optimize(m);
    if (f.name != "baked_size") {
      // Includes batch-1 traces (bert_tiny_1in, _2in) and a hidden size equal to the traced
      // sequence length (bert_seq_eq_hidden): literals equal to traced sizes are not findings.
      CHECK(report_lines(r.shapes, false) == std::vector<std::string>{});
      continue;
    }
    const std::string traced = f.generation == "t1" ? "" : " (traced with 7)";
    CHECK(report_lines(r.shapes, false) ==
          std::vector<std::string>{
              "baked_size/code/__torch__.py:14:11: aten::reshape: the trace fixed a size: element count: needs "
              "batch*seq*8 == batch*56; works only with seq = 7" + traced,
              "baked_size/code/__torch__.py:14:45: aten::slice: the trace fixed a size: slice end: cuts batch to at "
              "most 2; larger inputs give the traced size, as in PyTorch"});
  }
}

TEST_CASE("shape report: position tables limit the sequence length") {
  for (const auto& f : kiln::testing::all_fixtures()) {
    const std::string& family = f.manifest.at("model_class").as_string();
    if (!f.manifest.at("transformers").is_string()) continue;
    INFO(f.generation << "/" << f.name);
    const Archive archive = Archive::open(archive_path(f));
    kiln::import::ImportedModel m = kiln::import::import_model(archive);
    const kiln::passes::OptimizeResult r = kiln::passes::optimize(m);
    // Every position table here has 512 usable rows: BERT-style models slice a 512-entry
    // position_ids buffer; RoBERTa-style ones index a 514-row table from padding_idx + 1.
    bool limited = false;
    for (const auto& finding : r.shapes.findings) {
      if (finding.kind != kiln::passes::ShapeFinding::Kind::limit || !finding.symbol) continue;
      CHECK(r.shapes.symbol_name(*finding.symbol) == "seq");
      CHECK(finding.value == 512);
      limited = true;
    }
    CHECK_MESSAGE(limited, family);
  }
}

// Archives with unknown ops, bad constants or broken source are in tests/cli/run_test.py,
// which rewrites fixture archives with Python's zipfile (their code records are deflated).
TEST_CASE("import: a program larger than the node limit is refused") {
  const Archive a = Archive::open(archive_path(fixture("t1", "bert_tiny_2in")));
  kiln::import::ImportOptions o;
  o.max_nodes = 100;
  CHECK(error_of([&] { kiln::import::import_model(a, o); }).ends_with(
      "the program has more than 100 nodes after inlining; kiln refuses programs this large"));
}

TEST_CASE("import: version upgraders") {
  SUBCASE("aten::div on version 10 archives is true division") {
    const Archive a = Archive::open(archive_path(fixture("t1", "bert_tiny_2in")));
    const kiln::import::ImportedModel m = kiln::import::import_model(a);
    CHECK(op_counts(m.graph).at("aten::div") == 2);
  }
  SUBCASE("aten::gelu without the approximate argument (before version 10) means 'none'") {
    const Archive a = Archive::open(archive_path(fixture("t1", "bert_tiny_2in")));
    const kiln::import::ImportedModel m = kiln::import::import_model(a);
    int gelus = 0;
    ir::walk(m.graph, [&](ir::NodeId n) {
      if (!ir::is_kind(m.graph, n, "aten::gelu")) return;
      ++gelus;
      const ir::NodeId c = ir::value(m.graph, ir::node(m.graph, n).inputs.at(1)).node;
      REQUIRE(ir::is_kind(m.graph, c, "prim::Constant"));
      CHECK(std::get<std::string>(ir::node(m.graph, c).attrs.at(0).value) == "none");
    });
    CHECK(gelus == 2);
  }
}

TEST_CASE("op schema: every schema parses and names its overload") {
  for (const kiln::import::OpSchema& s : kiln::import::all_schemas()) {
    INFO(s.text);
    CHECK(s.name.find("::") != std::string::npos);
    CHECK(kiln::import::find_schema(s.name, s.overload) == &s);
  }
  CHECK(kiln::import::find_overloads("aten::save").empty());
  CHECK(kiln::import::find_overloads("aten::from_file").empty());
  CHECK(kiln::import::find_overloads("aten::wait").empty());
  const kiln::import::OpSchema s =
      kiln::import::parse_schema("aten::sum.dim_IntList(Tensor self, int[1]? dim, bool keepdim=False, *, ScalarType? dtype=None) -> Tensor");
  REQUIRE(s.args.size() == 4);
  CHECK(kiln::import::type_spec_str(s.args[1].type) == "int[1]?");
  CHECK(s.args[3].keyword_only);
  CHECK(std::get<bool>(*s.args[2].default_value) == false);
}

TEST_CASE("sym_int: arithmetic, exact division, solving and printing") {
  using ir::SymInt;
  const SymInt b = SymInt::symbol(0), s = SymInt::symbol(1);
  auto name = [](std::int64_t id) { return id == 0 ? std::string("batch") : std::string("seq"); };
  const SymInt bs8 = *ir::mul(*ir::mul(b, s), SymInt::of(8));
  const SymInt b56 = *ir::mul(b, SymInt::of(56));
  CHECK(ir::to_string(bs8, name) == "batch*seq*8");
  CHECK(ir::to_string(*ir::add(s, SymInt::of(1)), name) == "seq + 1");
  CHECK(ir::to_string(*ir::sub(SymInt::of(1), s), name) == "-seq + 1");
  CHECK(*ir::exact_div(bs8, b) == *ir::mul(s, SymInt::of(8)));
  CHECK_FALSE(ir::exact_div(bs8, SymInt::of(3)).has_value());
  const auto solved = ir::solve_equal(bs8, b56);
  REQUIRE(solved.has_value());
  CHECK(solved->first == 1);
  CHECK(solved->second == 7);
  CHECK_FALSE(ir::solve_equal(*ir::mul(s, s), SymInt::of(4)).has_value());
  CHECK(*ir::sub(s, s) == SymInt::of(0));
  CHECK_FALSE(ir::mul(SymInt::of(INT64_MAX), SymInt::of(2)).has_value());
  CHECK(ir::evaluate(bs8, [](std::int64_t id) { return std::optional<std::int64_t>(id == 0 ? 2 : 7); }) == 112);
}

TEST_CASE("op schema: docs/ops.md lists every schema") {
  const std::vector<std::byte> bytes = kiln::testing::read_file_bytes(std::filesystem::path(KILN_SOURCE_ROOT) / "docs/ops.md");
  const std::string doc(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  for (const kiln::import::OpSchema& s : kiln::import::all_schemas()) {
    INFO(s.text);
    CHECK(doc.find("    " + s.text) != std::string::npos);
  }
}
