// `kiln inspect MODEL [--json] [--verify]`: what a TorchScript archive holds, read safely.
#include "tools/kiln/inspect.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <tuple>
#include <string>

#include "engine/exec/program.hpp"
#include "engine/exec/provider.hpp"
#include "engine/import/importer.hpp"
#include "kernels/cpu/isa.hpp"
#include "engine/ir/print.hpp"
#include "engine/passes/pipeline.hpp"
#include "engine/ir/verify.hpp"
#include "format/archive.hpp"
#include "format/module_tree.hpp"
#include "kiln/error.hpp"
#include "tools/kiln/json_writer.hpp"

namespace kiln::cli {

namespace {

using format::Archive;
using format::ModuleTensor;
using format::ModuleTree;
using format::PickleValue;

const char* const kInspectUsage =
    "usage: kiln inspect MODEL [--json] [--verify] [--graph | --graph=raw | --placement]\n"
    "\n"
    "Reads a TorchScript archive (torch.jit.save output) without running anything in it and\n"
    "prints its root folder, format version, byte order, module tree, parameters by dtype,\n"
    "the forward signature, code files and constants, the program's size and the sizes\n"
    "its trace fixed, with a warning for anything kiln will not be able to run.\n"
    "\n"
    "  --json     one JSON object instead of text (schema in docs/inspect.md)\n"
    "  --verify   also check every record's CRC-32\n"
    "  --graph    print the program as kiln runs it: kiln's IR after its passes, with\n"
    "             inferred dtypes and shapes and the shape report (docs/ir.md)\n"
    "  --graph=raw  the IR as imported, before any pass\n"
    "  --placement  which provider runs which ops, and the CPU's instruction set\n";

// What a file format version says about the archive (PyTorch's caffe2/serialize/versions.h).
std::string version_meaning(int v) {
  switch (v) {
    case 1: return "initial format; files may start with op_version_set";
    case 2: return "op_version_set removed";
    case 3: return "container type tags; integer aten::div truncates (kiln upgrades it)";
    case 4: return "aten::div is true division";
    case 5: return "aten::full infers its dtype";
    case 6: return "torch.package era; version kept in .data/version";
    case 7: return "upgrader-based op versioning (torch >= 1.11)";
    case 8:
    case 9: return "linspace/logspace need steps";
    case 10: return "aten::gelu has the approximate argument (torch >= 1.12)";
    default: return "";
  }
}

struct DtypeTotals {
  std::int64_t count = 0;   // names
  std::int64_t shared = 0;  // names that view a tensor already counted
  std::int64_t elements = 0;
  std::map<std::string, std::int64_t> bytes_by_dtype;
  std::int64_t bytes = 0;
};

std::string dtype_label(const format::TensorData& d) {
  return d.dtype ? std::string(dtype_name(*d.dtype)) : d.storage_type;
}

std::string shape_text(const std::vector<std::int64_t>& sizes) {
  std::string s = "[";
  for (size_t i = 0; i < sizes.size(); ++i) s += (i ? ", " : "") + std::to_string(sizes[i]);
  return s + "]";
}

std::string short_class(const std::string& qualified) {
  const size_t dot = qualified.rfind('.');
  return dot == std::string::npos ? qualified : qualified.substr(dot + 1);
}

std::string constant_summary(const Archive& a, const format::PickleRef& c) {
  switch (c->kind) {
    case PickleValue::Kind::tensor: {
      const format::TensorData d = a.tensor(c->tensor, true);
      return "tensor " + dtype_label(d) + shape_text(d.sizes);
    }
    case PickleValue::Kind::integer: return "int " + std::to_string(c->integer);
    case PickleValue::Kind::floating: return "float " + std::to_string(c->floating);
    case PickleValue::Kind::string: return "str (" + std::to_string(c->text.size()) + " bytes)";
    case PickleValue::Kind::boolean: return c->boolean ? "bool True" : "bool False";
    case PickleValue::Kind::none: return "None";
    case PickleValue::Kind::object: return "object " + c->text;
    default: return "other";
  }
}

struct Report {
  DtypeTotals parameters, buffers, other;
  std::vector<std::string> warnings;
  // The program as kiln would run it: importable or why not, and the shape report.
  bool importable = false;
  std::string import_error;
  std::size_t nodes = 0;
  std::vector<std::string> fixed, limits;
};

// Imports and optimizes the program as Model::load would; a program kiln cannot run is a
// warning here, not an error: inspect describes any archive it can read.
void analyse_program(const Archive& a, Report& r) {
  try {
    import::ImportedModel model = import::import_model(a);
    const passes::OptimizeResult result = passes::optimize(model);
    r.importable = true;
    ir::walk(model.graph, [&](ir::NodeId) { ++r.nodes; });
    passes::ShapeReport fixed = result.shapes, limits = result.shapes;
    std::erase_if(fixed.findings, [](const passes::ShapeFinding& f) { return f.kind == passes::ShapeFinding::Kind::limit; });
    std::erase_if(limits.findings, [](const passes::ShapeFinding& f) { return f.kind != passes::ShapeFinding::Kind::limit; });
    r.fixed = fixed.lines();
    r.limits = limits.lines();
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::internal) throw;
    r.import_error = e.where().empty() ? e.message() : e.where() + ": " + e.message();
    r.warnings.push_back("kiln cannot run this program: " + r.import_error);
  }
}

Report analyse(const Archive& a, const ModuleTree& tree) {
  Report r;
  // Tied weights (a MaskedLM decoder sharing the word embeddings) are one tensor under two
  // names: count their bytes once.
  std::set<std::tuple<std::string, std::int64_t, std::vector<std::int64_t>>> seen;
  for (const ModuleTensor& t : tree.tensors) {
    DtypeTotals& totals = t.kind == ModuleTensor::Kind::parameter ? r.parameters
                          : t.kind == ModuleTensor::Kind::buffer  ? r.buffers
                                                                  : r.other;
    totals.count += 1;
    if (!seen.emplace(t.data.record, t.data.storage_offset, t.data.sizes).second) {
      totals.shared += 1;
      continue;
    }
    const std::int64_t bytes = t.data.numel() * static_cast<std::int64_t>(t.data.element_size);
    totals.elements += t.data.numel();
    totals.bytes += bytes;
    totals.bytes_by_dtype[dtype_label(t.data)] += bytes;
  }
  if (!tree.quantized.empty()) {
    r.warnings.push_back(std::to_string(tree.quantized.size()) +
                         " quantized tensors (e.g. " + tree.quantized.front() +
                         "): kiln recognises them but cannot run quantized models yet");
  }
  for (const auto& m : tree.modules) {
    if (m.custom_class) {
      r.warnings.push_back("custom class " + m.class_name + " at '" + m.path +
                           "': its state is kept as raw bytes and kiln cannot run it");
    }
  }
  for (const auto& [dtype, bytes] : r.parameters.bytes_by_dtype) {
    if (dtype != "float32" && bytes > 0) {
      r.warnings.push_back(dtype + " parameters: kiln's kernels compute in float32");
    }
  }
  if (a.is_mobile()) r.warnings.push_back("mobile (lite) archive: bytecode.pkl is ignored, the TorchScript code is used");
  if (!tree.root_class.has_forward) r.warnings.push_back("the root module has no forward method");
  analyse_program(a, r);
  return r;
}

void print_text(const Archive& a, const ModuleTree& tree, const Report& r, bool verified) {
  std::printf("archive: %s\n", a.source().c_str());
  std::printf("root folder: %s/\n", a.root().c_str());
  std::printf("format version: %d (%s; %s)\n", a.version(), a.version_record().c_str(),
              version_meaning(a.version()).c_str());
  std::printf("byte order: %s%s\n", a.byteorder().c_str(),
              a.has_byteorder_record() ? "" : " (no byteorder record: saved by torch < 2.1)");
  std::printf("records: %zu%s%s%s%s\n", a.zip().entries().size(), a.has_debug_pkl() ? ", debug symbols" : "",
              a.has_traced_inputs() ? ", traced_inputs.pkl" : "",
              a.has_serialization_id() ? ", serialization_id" : "", verified ? ", CRC-32 verified" : "");
  std::printf("module: %s\n", tree.root_class.qualified_name.empty() ? a.data()->text.c_str()
                                                                      : tree.root_class.qualified_name.c_str());
  if (tree.root_class.has_forward) {
    std::printf("forward(");
    for (size_t i = 0; i < tree.root_class.forward_args.size(); ++i) {
      const auto& arg = tree.root_class.forward_args[i];
      std::printf("%s%s: %s", i ? ", " : "", arg.name.c_str(), arg.type.c_str());
    }
    std::printf(")%s%s\n", tree.root_class.forward_returns.empty() ? "" : " -> ",
                tree.root_class.forward_returns.c_str());
  }
  auto totals = [](const char* what, const DtypeTotals& t) {
    std::printf("%s: %lld tensors", what, static_cast<long long>(t.count));
    if (t.shared) std::printf(" (%lld tied to another)", static_cast<long long>(t.shared));
    std::printf(", %lld elements, %lld bytes", static_cast<long long>(t.elements), static_cast<long long>(t.bytes));
    for (const auto& [dtype, bytes] : t.bytes_by_dtype) {
      std::printf(" | %s %lld B", dtype.c_str(), static_cast<long long>(bytes));
    }
    std::printf("\n");
  };
  totals("parameters", r.parameters);
  totals("buffers", r.buffers);
  if (r.other.count) totals("other tensors", r.other);

  std::printf("\nmodule tree:\n");
  for (const auto& m : tree.modules) {
    const size_t depth = m.path.empty() ? 0 : 1 + static_cast<size_t>(std::count(m.path.begin(), m.path.end(), '.'));
    const std::string leaf = m.path.empty() ? "<root>" : m.path.substr(m.path.rfind('.') + 1);
    std::printf("  %*s%s: %s\n", static_cast<int>(2 * depth), "", leaf.c_str(), short_class(m.class_name).c_str());
    for (const ModuleTensor& t : tree.tensors) {
      const size_t dot = t.name.rfind('.');
      const std::string owner = dot == std::string::npos ? "" : t.name.substr(0, dot);
      if (owner != m.path) continue;
      const char* kind = t.kind == ModuleTensor::Kind::parameter ? "param "
                         : t.kind == ModuleTensor::Kind::buffer  ? "buffer"
                                                                 : "tensor";
      std::printf("  %*s  %s %s %s%s\n", static_cast<int>(2 * depth), "", kind, t.name.substr(dot + 1).c_str(),
                  dtype_label(t.data).c_str(), shape_text(t.data.sizes).c_str());
    }
  }

  std::printf("\ncode files: %zu\n", a.code().size());
  for (const auto& [qualifier, source] : a.code()) {
    std::printf("  %s (%zu bytes)\n", qualifier.c_str(), source.size());
  }
  std::printf("constants: %zu\n", a.constants().size());
  for (size_t i = 0; i < a.constants().size(); ++i) {
    std::printf("  c%zu: %s\n", i, constant_summary(a, a.constants()[i]).c_str());
  }
  if (r.importable) {
    std::printf("program: %zu nodes after optimization (kiln inspect --graph prints them)\n", r.nodes);
    std::printf("sizes the trace fixed: %zu\n", r.fixed.size());
    for (const auto& f : r.fixed) std::printf("  fixed: %s\n", f.c_str());
    std::printf("size limits: %zu\n", r.limits.size());
    for (const auto& l : r.limits) std::printf("  limit: %s\n", l.c_str());
  }
  std::printf("warnings: %zu\n", r.warnings.size());
  for (const auto& w : r.warnings) std::printf("  warning: %s\n", w.c_str());
}

void print_json(const Archive& a, const ModuleTree& tree, const Report& r, bool verified) {
  JsonWriter j;
  j.begin_object();
  j.field("file", a.source());
  j.field("root", a.root());
  j.field("format_version", a.version());
  j.field("version_record", a.version_record());
  j.field("byteorder", a.byteorder());
  j.field("byteorder_record", a.has_byteorder_record());
  j.field("records", static_cast<std::uint64_t>(a.zip().entries().size()));
  j.field("crc_verified", verified);
  j.field("mobile", a.is_mobile());
  j.field("traced_inputs", a.has_traced_inputs());
  j.field("serialization_id", a.has_serialization_id());
  j.field("debug_symbols", a.has_debug_pkl());
  j.field("module", a.data()->text);
  j.key("forward");
  if (tree.root_class.has_forward) {
    j.begin_object().key("args").begin_array();
    for (const auto& arg : tree.root_class.forward_args) {
      j.begin_object().field("name", arg.name).field("type", arg.type).end_object();
    }
    j.end_array().field("returns", tree.root_class.forward_returns).end_object();
  } else {
    j.null();
  }
  auto totals = [&](const char* what, const DtypeTotals& t) {
    j.key(what).begin_object();
    j.field("count", t.count).field("tied", t.shared).field("elements", t.elements).field("bytes", t.bytes);
    j.key("bytes_by_dtype").begin_object();
    for (const auto& [dtype, bytes] : t.bytes_by_dtype) j.field(dtype, bytes);
    j.end_object().end_object();
  };
  totals("parameters", r.parameters);
  totals("buffers", r.buffers);
  j.key("modules").begin_array();
  for (const auto& m : tree.modules) {
    j.begin_object().field("path", m.path).field("class", m.class_name).field("custom_class", m.custom_class).end_object();
  }
  j.end_array();
  j.key("tensors").begin_array();
  for (const ModuleTensor& t : tree.tensors) {
    j.begin_object();
    j.field("name", t.name);
    j.field("kind", t.kind == ModuleTensor::Kind::parameter ? "parameter"
                    : t.kind == ModuleTensor::Kind::buffer  ? "buffer"
                                                            : "other");
    j.field("dtype", dtype_label(t.data));
    j.key("shape").begin_array();
    for (std::int64_t s : t.data.sizes) j.value(s);
    j.end_array();
    j.key("strides").begin_array();
    for (std::int64_t s : t.data.strides) j.value(s);
    j.end_array();
    j.field("storage_offset", t.data.storage_offset);
    j.field("record", t.data.record);
    j.field("quantized", t.data.quantized);
    j.end_object();
  }
  j.end_array();
  j.key("code_files").begin_array();
  for (const auto& [qualifier, source] : a.code()) j.value(qualifier);
  j.end_array();
  j.key("constants").begin_array();
  for (const auto& c : a.constants()) j.value(constant_summary(a, c));
  j.end_array();
  j.key("program").begin_object();
  j.key("importable").value(r.importable);
  j.key("error");
  if (r.importable) {
    j.null();
  } else {
    j.value(r.import_error);
  }
  j.key("nodes").value(static_cast<std::int64_t>(r.nodes));
  j.key("fixed_sizes").begin_array();
  for (const auto& f : r.fixed) j.value(f);
  j.end_array();
  j.key("size_limits").begin_array();
  for (const auto& l : r.limits) j.value(l);
  j.end_array();
  j.end_object();
  j.key("warnings").begin_array();
  for (const auto& w : r.warnings) j.value(w);
  j.end_array();
  j.end_object();
  std::printf("%s\n", j.str().c_str());
}

// Which provider runs what: node kinds counted per provider, copies between memory spaces.
int print_placement(const Archive& archive) {
  const auto program = exec::load_program(archive);
  std::map<std::string, std::map<std::string, int>> counts;
  ir::walk(program->graph, [&](ir::NodeId n) {
    const exec::Provider* p = program->placement.at(ir::idx(n));
    if (!p) return;
    ++counts[std::string(p->name) + " (" + p->memory_space + ")"][std::string(ir::kind_str(program->graph, n))];
  });
  std::printf("providers: %zu (tried in order)\n", program->providers.size());
  for (const auto& [provider, kinds] : counts) {
    int total = 0;
    for (const auto& [kind, count] : kinds) total += count;
    std::printf("%s: %d nodes\n", provider.c_str(), total);
    for (const auto& [kind, count] : kinds) std::printf("  %-40s %d\n", kind.c_str(), count);
  }
  std::printf("cpu kernels: %s (fast linear, softmax, layer_norm, gelu; reference kernels for the rest)\n",
              kernels::cpu::isa_name(kernels::cpu::active_isa()));
  return 0;
}

int print_graph(const Archive& archive, bool raw) {
  import::ImportedModel model = import::import_model(archive);
  if (raw) {
    ir::verify(model.graph);
    std::fputs(ir::print(model.graph).c_str(), stdout);
    return 0;
  }
  const passes::OptimizeResult result = passes::optimize(model);
  std::fputs(ir::print(model.graph).c_str(), stdout);
  for (const std::string& line : result.shapes.lines()) std::printf("# shape: %s\n", line.c_str());
  return 0;
}

}  // namespace

int run_inspect(const std::vector<std::string_view>& args) {
  std::string path;
  bool json = false, verify = false;
  std::string graph;  // "", "optimized" or "raw"
  for (std::string_view arg : args) {
    if (arg == "--graph") {
      graph = "optimized";
    } else if (arg == "--graph=raw") {
      graph = "raw";
    } else if (arg == "--placement") {
      graph = "placement";
    } else if (arg == "--json") {
      json = true;
    } else if (arg == "--verify") {
      verify = true;
    } else if (arg == "--help" || arg == "-h") {
      std::fputs(kInspectUsage, stdout);
      return 0;
    } else if (!arg.empty() && arg[0] == '-') {
      throw Error(ErrorKind::usage, "", "", "inspect: unknown option '" + std::string(arg) + "'");
    } else if (path.empty()) {
      path = std::string(arg);
    } else {
      throw Error(ErrorKind::usage, "", "", "inspect: more than one MODEL given");
    }
  }
  if (path.empty()) throw Error(ErrorKind::usage, "", "", "inspect: no MODEL given (see 'kiln inspect --help')");

  format::ArchiveOptions options;
  options.verify_crc = verify;
  const Archive archive = Archive::open(path, options);
  if (graph == "placement") return print_placement(archive);
  if (!graph.empty()) return print_graph(archive, graph == "raw");
  const ModuleTree tree = format::module_tree(archive);
  const Report report = analyse(archive, tree);
  if (json) {
    print_json(archive, tree, report, verify);
  } else {
    print_text(archive, tree, report, verify);
  }
  return 0;
}

}  // namespace kiln::cli
