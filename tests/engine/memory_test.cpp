// The memory plan and threads on real fixtures: intermediates live in one arena planned
// from the input sizes, the plan's figure is what max_memory compares, outputs stay
// valid while later runs reuse the arena, and thread counts agree.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "format/npy.hpp"
#include "kiln/kiln.hpp"
#include "tests/support/fixtures.hpp"

namespace {

struct Loaded {
  kiln::Model model;
  std::vector<std::vector<kiln::Tensor>> cases;  // the cases PyTorch ran without error
};

Loaded load_fixture(const std::string& generation, const std::string& name, const kiln::LoadOptions& options = {}) {
  const kiln::testing::FixtureCases f = kiln::testing::fixture_cases(generation, name);
  Loaded l{kiln::Model::load(f.archive, options), {}};
  for (const auto& c : f.cases) {
    std::vector<kiln::Tensor> inputs;
    for (const auto& a : c) inputs.push_back(kiln::Tensor::from_bytes(a.dtype, a.shape, a.data.data()));
    l.cases.push_back(std::move(inputs));
  }
  return l;
}

std::vector<std::byte> bytes_of(const kiln::Tensor& t) {
  const auto* p = static_cast<const std::byte*>(t.data());
  return {p, p + t.nbytes()};
}

// The case with the most input elements.
const std::vector<kiln::Tensor>& largest(const Loaded& l) {
  return *std::max_element(l.cases.begin(), l.cases.end(), [](const auto& a, const auto& b) { return a[0].numel() < b[0].numel(); });
}

}  // namespace

TEST_CASE("memory: a BERT run keeps its intermediates in the planned arena, with reuse") {
  for (const std::string gen : {"t1", "t2"}) {
    INFO(gen);
    const Loaded l = load_fixture(gen, "bert_tiny_3in");
    kiln::RunStats stats;
    kiln::RunOptions options;
    options.stats = &stats;
    const std::vector<kiln::Tensor>& inputs = largest(l);
    const auto outputs = l.model.run(inputs, options);
    std::int64_t output_bytes = 0;
    for (const auto& o : outputs) output_bytes += static_cast<std::int64_t>(o.nbytes());
    CHECK(stats.output_bytes == output_bytes);
    CHECK(stats.unplanned_values == 0);  // every size is known from the inputs
    CHECK(stats.spilled_values == 0);
    CHECK(stats.planned_values >= 20);  // 2 layers, fused: Q/K/V, attention, 2 residual norms...
    // Reuse: the arena is a fraction of the intermediates added up, but holds at least one
    // [batch, seq, hidden] float32 tensor.
    const std::int64_t batch = inputs[0].shape()[0], seq = inputs[0].shape()[1];
    const std::int64_t hidden_bytes = outputs[0].shape().back() * batch * seq * 4;
    CHECK(stats.arena_bytes >= hidden_bytes);
    // (A third: the fusions leave fewer, larger intermediates to share the arena.)
    CHECK(stats.arena_bytes * 3 < stats.planned_bytes);
    MESSAGE(gen << ": arena " << stats.arena_bytes << " bytes for " << stats.planned_values << " intermediates of "
                << stats.planned_bytes << " bytes");
    // Larger inputs, larger plan.
    kiln::RunStats small;
    options.stats = &small;
    const auto& smallest = *std::min_element(l.cases.begin(), l.cases.end(), [](const auto& a, const auto& b) { return a[0].numel() < b[0].numel(); });
    l.model.run(smallest, options);
    CHECK(small.arena_bytes < stats.arena_bytes);
  }
}

TEST_CASE("memory: max_memory refuses a run over the plan, before running, with the figure") {
  const Loaded l = load_fixture("t2", "bert_tiny_2in");
  const std::vector<kiln::Tensor>& inputs = largest(l);
  kiln::RunStats stats;
  kiln::RunOptions options;
  options.stats = &stats;
  const auto expected = l.model.run(inputs, options);
  const std::int64_t need = stats.arena_bytes + stats.output_bytes;
  REQUIRE(need > 0);

  options.max_memory = need - 1;
  stats = {};
  try {
    l.model.run(inputs, options);
    FAIL("a run over max_memory ran");
  } catch (const kiln::Error& e) {
    CHECK(e.kind() == kiln::ErrorKind::bad_input);
    const std::string what = e.what();
    CHECK(what.find("needs " + std::to_string(need) + " bytes") != std::string::npos);
    CHECK(what.find("max_memory = " + std::to_string(need - 1)) != std::string::npos);
    CHECK(what.find("seq = ") != std::string::npos);
    CHECK(stats.arena_bytes == 0);  // refused before the run: no stats written
  }
  options.max_memory = need;
  const auto at_limit = l.model.run(inputs, options);
  CHECK(bytes_of(at_limit[0]) == bytes_of(expected[0]));

  // The model's default applies unless the run overrides it; 0 lifts the limit.
  kiln::LoadOptions tight;
  tight.max_memory = need - 1;
  const Loaded limited = load_fixture("t2", "bert_tiny_2in", tight);
  CHECK_THROWS_AS(limited.model.run(inputs), kiln::Error);
  kiln::RunOptions unlimited;
  unlimited.max_memory = 0;
  CHECK(bytes_of(limited.model.run(inputs, unlimited)[0]) == bytes_of(expected[0]));
}

TEST_CASE("memory: outputs stay intact while later runs reuse the arena") {
  const Loaded l = load_fixture("t2", "bert_tiny_seqcls");
  REQUIRE(l.cases.size() >= 2);
  std::vector<std::vector<std::vector<std::byte>>> first;
  std::vector<std::vector<kiln::Tensor>> kept;
  for (const auto& c : l.cases) {
    kept.push_back(l.model.run(c));
    first.emplace_back();
    for (const auto& o : kept.back()) first.back().push_back(bytes_of(o));
  }
  for (int round = 0; round < 3; ++round)
    for (const auto& c : l.cases) l.model.run(c);
  for (std::size_t i = 0; i < kept.size(); ++i)
    for (std::size_t k = 0; k < kept[i].size(); ++k) CHECK(bytes_of(kept[i][k]) == first[i][k]);
}

TEST_CASE("threads: 1, 2 and 3 kernel threads agree on a real model") {
  const Loaded l = load_fixture("t2", "minilm_l6");
  const std::vector<kiln::Tensor>& inputs = largest(l);
  kiln::RunOptions one;
  one.threads = 1;
  const auto base = l.model.run(inputs, one);
  for (int t : {2, 3}) {
    INFO(t << " threads");
    kiln::RunOptions options;
    kiln::RunStats stats;
    options.threads = t;
    options.stats = &stats;
    const auto got = l.model.run(inputs, options);
    CHECK(stats.threads == t);
    REQUIRE(got.size() == base.size());
    for (std::size_t k = 0; k < got.size(); ++k) {
      REQUIRE(got[k].shape() == base[k].shape());
      const auto* a = static_cast<const float*>(base[k].data());
      const auto* b = static_cast<const float*>(got[k].data());
      double worst = 0, scale = 1;
      for (std::int64_t i = 0; i < got[k].numel(); ++i) {
        worst = std::max(worst, static_cast<double>(std::fabs(a[i] - b[i])));
        scale = std::max(scale, static_cast<double>(std::fabs(a[i])));
      }
      CHECK(worst <= 1e-5 * scale);
    }
  }
}

TEST_CASE("options: bad thread counts and limits are usage errors") {
  const Loaded l = load_fixture("t2", "bert_tiny_1in");
  kiln::RunOptions bad;
  bad.threads = -2;
  CHECK_THROWS_AS(l.model.run(l.cases[0], bad), kiln::Error);
  bad = {};
  bad.max_memory = -5;
  CHECK_THROWS_AS(l.model.run(l.cases[0], bad), kiln::Error);
  kiln::LoadOptions load;
  load.threads = -1;
  CHECK_THROWS_AS(load_fixture("t2", "bert_tiny_1in", load), kiln::Error);
}
