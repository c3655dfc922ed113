// Preparing a program (engine/exec/prepare.hpp) on real fixtures: which weights are packed
// (every linear weight, but not one tied to the word embeddings), that the mapped originals
// leave this process's memory and runs no longer read them, that the traced shape is warmed,
// and that it all works, doing less, without oneDNN.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "engine/exec/prepare.hpp"
#include "engine/exec/program.hpp"
#include "format/archive.hpp"
#include "kernels/cpu/onednn_matmul.hpp"
#include "kernels/tensor.hpp"
#include "tests/support/fixtures.hpp"

namespace exec = kiln::exec;
namespace ir = kiln::ir;
namespace onednn = kiln::kernels::onednn;
using kiln::kernels::Tensor;

namespace {

std::string archive(const std::string& generation, const std::string& name) {
  return kiln::testing::fixture_cases(generation, name).archive;
}

std::vector<Tensor> inputs_of(const std::string& generation, const std::string& name) {
  const kiln::testing::FixtureCases f = kiln::testing::fixture_cases(generation, name);
  std::vector<Tensor> out;
  for (const auto& a : f.cases.at(0)) {
    Tensor t = Tensor::empty(a.dtype, a.shape);
    std::memcpy(t.bytes(), a.data.data(), a.data.size());
    out.push_back(std::move(t));
  }
  return out;
}

// Whether oneDNN packs weights on this machine at all (it keeps the plain layout where its
// blocked GEMM does not run).
bool packing_here() {
  Tensor w = Tensor::empty(kiln::DType::float32, {64, 64});
  return onednn::pack_weight(w, 16) != nullptr;
}

// The distinct weights the GEMM nodes (linear, and linear + GELU when fused) read.
std::vector<ir::ValueId> gemm_weights(const exec::Program& p) {
  std::set<std::uint32_t> seen;
  std::vector<ir::ValueId> out;
  ir::walk(p.graph, [&](ir::NodeId n) {
    const std::string_view kind = ir::kind_str(p.graph, n);
    if (kind != "aten::linear" && kind != "kiln::linear_gelu") return;
    const ir::ValueId w = ir::node(p.graph, n).inputs[1];
    if (seen.insert(ir::idx(w)).second) out.push_back(w);
  });
  return out;
}

// Whether the page holding `address` is mapped in this process now (/proc/self/pagemap,
// bit 63: present), whatever the page cache holds.
bool resident(const void* address) {
  const long page = sysconf(_SC_PAGESIZE);
  const int fd = open("/proc/self/pagemap", O_RDONLY);
  REQUIRE(fd >= 0);
  std::uint64_t entry = 0;
  const std::uintptr_t index = reinterpret_cast<std::uintptr_t>(address) / static_cast<std::uintptr_t>(page);
  const off_t at = static_cast<off_t>(index * sizeof(std::uint64_t));
  const bool read = pread(fd, &entry, sizeof entry, at) == static_cast<ssize_t>(sizeof entry);
  close(fd);
  REQUIRE(read);
  return (entry >> 63) & 1;
}

// An address in the middle of a tensor's bytes, a whole page away from either end.
const void* middle_of(const Tensor& t) {
  return t.bytes() + t.numel() * static_cast<std::int64_t>(sizeof(float)) / 2;
}

void check_close(const std::vector<Tensor>& got, const std::vector<Tensor>& want) {
  REQUIRE(got.size() == want.size());
  for (std::size_t k = 0; k < got.size(); ++k) {
    REQUIRE(got[k].sizes == want[k].sizes);
    if (got[k].dtype != kiln::DType::float32) continue;
    std::int64_t bad = 0;
    for (std::int64_t i = 0; i < got[k].numel(); ++i) {
      const float g = got[k].data<const float>()[i], w = want[k].data<const float>()[i];
      if (std::fabs(g - w) > 1e-5 * std::max(1.0f, std::fabs(w))) ++bad;
    }
    CHECK_MESSAGE(bad == 0, "output " << k << ": " << bad << " elements differ");
  }
}

}  // namespace

TEST_CASE("prepare: every linear weight is packed once, a tied one is not, Q/K/V together") {
  // The masked-LM fixture with its decoder's weight tied to the word-embedding table, as
  // Hugging Face ties them (the fixtures' tracer saved them apart): one storage, two readers.
  auto p = std::make_shared<exec::Program>(*exec::load_program(archive("t2", "bert_tiny_mlm")));
  p->preparation = std::make_shared<exec::Preparation>();  // not the loaded program's
  const std::vector<ir::ValueId> weights = gemm_weights(*p);
  REQUIRE(weights.size() > 2);
  const Tensor* table = nullptr;
  Tensor* decoder = nullptr;
  ir::walk(p->graph, [&](ir::NodeId n) {
    const ir::Node& node = ir::node(p->graph, n);
    if (!ir::is_kind(p->graph, n, "prim::Constant") || node.attrs.empty()) return;
    const auto* ref = std::get_if<ir::TensorRef>(&node.attrs[0].value);
    if (!ref) return;
    Tensor& t = p->constant_values[ir::idx(node.outputs[0])].t;
    if (ref->name.ends_with("word_embeddings.weight")) table = &t;
    if (ref->name.ends_with("decoder.weight")) decoder = &t;
  });
  REQUIRE(table != nullptr);
  REQUIRE(decoder != nullptr);
  REQUIRE(decoder->sizes == table->sizes);
  *decoder = *table;
  const std::vector<Tensor> inputs = inputs_of("t2", "bert_tiny_mlm");
  const std::vector<Tensor> before = exec::run(*p, inputs);

  const exec::PrepareStats stats = exec::prepare(*p);
  CHECK(p->preparation->done());
  if (!onednn::available() || !packing_here()) {
    CHECK(stats.packed_weights == 0);
    CHECK(stats.released_bytes == 0);
    MESSAGE("no packing on this build or machine");
    return;
  }
  std::int64_t groups = 0;  // Q/K/V, each packed as one copy
  ir::walk(p->graph, [&](ir::NodeId n) { groups += ir::is_kind(p->graph, n, "kiln::linear_concat"); });
  CHECK(groups == 2);
  CHECK(stats.packed_weights == static_cast<std::int64_t>(weights.size()) - 1 + groups);
  for (ir::ValueId w : weights) {
    const Tensor& t = p->constant_values[ir::idx(w)].t;
    const Tensor x = Tensor::empty(kiln::DType::float32, {3, t.sizes[1]});
    CHECK(onednn::describe_linear(x, t, nullptr).packed == (t.bytes() != table->bytes()));
  }
  check_close(exec::run(*p, inputs), before);
  // Idempotent: a second call finds the work done and reports it again.
  const exec::PrepareStats again = exec::prepare(*p);
  CHECK(again.packed_weights == stats.packed_weights);
  CHECK(again.packed_bytes == stats.packed_bytes);
}

TEST_CASE("prepare: the mapped originals leave memory, and runs no longer read them") {
  const auto p = exec::load_program(archive("t2", "minilm_l6"));
  const std::vector<Tensor> inputs = inputs_of("t2", "minilm_l6");
  const std::vector<Tensor> before = exec::run(*p, inputs);  // reads every weight in place
  // The biggest weight: 1536 x 384 floats, whole pages inside it.
  const Tensor* big = nullptr;
  for (ir::ValueId w : gemm_weights(*p)) {
    const Tensor& t = p->constant_values[ir::idx(w)].t;
    if (!big || t.numel() > big->numel()) big = &t;
  }
  REQUIRE(big != nullptr);
  REQUIRE(big->numel() >= 1536 * 384);
  CHECK(resident(middle_of(*big)));
  const exec::PrepareStats stats = exec::prepare(*p);
  if (!onednn::available() || !packing_here()) {
    CHECK(stats.released_bytes == 0);
    CHECK(resident(middle_of(*big)));
    check_close(exec::run(*p, inputs), before);
    MESSAGE("no packing on this build or machine: weights stay in place");
    return;
  }
  // One copy per weight, and one per Q/K/V group (its weights side by side).
  std::int64_t groups = 0;
  ir::walk(p->graph, [&](ir::NodeId n) { groups += ir::is_kind(p->graph, n, "kiln::linear_concat"); });
  CHECK(groups == 6);
  CHECK(stats.packed_weights == static_cast<std::int64_t>(gemm_weights(*p).size()) + groups);
  CHECK(stats.packed_bytes >= 6 * (4 * 384 * 384 + 2 * 1536 * 384) * 4);  // 6 layers' weights, at least
  // Nearly all of each weight's bytes: all but the partial pages at its ends.
  CHECK(stats.released_bytes > stats.packed_bytes * 9 / 10);
  // Each original went right after its copy was made, so copies and originals were never
  // held together for more than about one Q/K/V group (3 x 384 x 384 floats; releasing the
  // groups' originals only at the end held all six layers' at once).
  CHECK(stats.most_held_twice > 0);
  CHECK(stats.most_held_twice <= 2 * 3 * 384 * 384 * 4);
  CHECK_FALSE(resident(middle_of(*big)));
  check_close(exec::run(*p, inputs), before);
  CHECK_FALSE(resident(middle_of(*big)));  // the run read the packed copies only
}

TEST_CASE("prepare: caller memory is never handed back or changed") {
  std::ifstream in(archive("t2", "minilm_l6"), std::ios::binary);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::vector<char> copy = bytes;
  const kiln::format::Archive a = kiln::format::Archive::from_buffer(
      std::span<const std::byte>(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()), "minilm.pt");
  const auto p = exec::load_program(a);
  CHECK(p->mapped_file.empty());
  const std::vector<Tensor> inputs = inputs_of("t2", "minilm_l6");
  const std::vector<Tensor> before = exec::run(*p, inputs);
  const exec::PrepareStats stats = exec::prepare(*p);
  CHECK(stats.released_bytes == 0);
  CHECK(bytes == copy);
  check_close(exec::run(*p, inputs), before);
}

TEST_CASE("prepare: the traced shape's plan is made and its GEMMs run once, with oneDNN or without") {
  const auto p = exec::load_program(archive("t2", "bert_tiny_3in"));
  REQUIRE(!p->shapes.traced.empty());  // torch 2's archives record the traced inputs
  const exec::PrepareStats stats = exec::prepare(*p);
  CHECK(stats.planned);
  // The attention projections, the intermediate and output layers and the pooler: at least
  // three distinct GEMM shapes.
  CHECK(stats.warmed_nodes >= 3);
  // Torch 1.13's archives do not record the traced shape: nothing to warm, the rest done.
  const auto old = exec::load_program(archive("t1", "bert_tiny_3in"));
  const exec::PrepareStats old_stats = exec::prepare(*old);
  CHECK_FALSE(old_stats.planned);
  CHECK(old_stats.warmed_nodes == 0);
  CHECK(old->preparation->done());
}

TEST_CASE("prepare: a Q/K/V group every layer shares (ALBERT) is packed once and read by all") {
  const auto p = exec::load_program(archive("t1", "albert_tiny"));
  const std::vector<Tensor> inputs = inputs_of("t1", "albert_tiny");
  const std::vector<Tensor> before = exec::run(*p, inputs);
  std::vector<ir::NodeId> groups;
  ir::walk(p->graph, [&](ir::NodeId n) {
    if (ir::is_kind(p->graph, n, "kiln::linear_concat")) groups.push_back(n);
  });
  REQUIRE(groups.size() >= 2);  // one per layer, all on the same weights
  const exec::PrepareStats stats = exec::prepare(*p);
  check_close(exec::run(*p, inputs), before);
  if (!onednn::available() || !packing_here()) return;
  for (ir::NodeId n : groups) {
    const ir::Node& node = ir::node(p->graph, n);
    std::vector<const Tensor*> weights, biases;
    for (std::size_t i = 1; i + 1 < node.inputs.size(); i += 2) {
      weights.push_back(&p->constant_values[ir::idx(node.inputs[i])].t);
      const exec::RtValue& b = p->constant_values[ir::idx(node.inputs[i + 1])];
      biases.push_back(b.kind == exec::RtValue::Kind::tensor ? &b.t : nullptr);
    }
    const Tensor x = Tensor::empty(kiln::DType::float32, {2, weights[0]->sizes[1]});
    Tensor out;
    CHECK(onednn::linear_concat(x, weights, biases, out));  // the one shared copy
  }
  // The ungrouped weights once each, and the group once.
  CHECK(stats.packed_weights == static_cast<std::int64_t>(gemm_weights(*p).size()) + 1);
}
