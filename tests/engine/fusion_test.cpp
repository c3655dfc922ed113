// The fusions (engine/passes/fusions.cpp) on the real fixtures: each fires once per layer
// where the model has the pattern (attention, Q/K/V as one GEMM, bias + GELU, two residual
// + LayerNorm, one embeddings + LayerNorm), in eager and SDPA traces, and the fused graph
// gives the outputs of the unfused one (KILN_FUSE=0) on every case PyTorch ran, to float
// rounding, prepared (Q, K and V packed side by side) or not (each its own GEMM).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "engine/import/importer.hpp"
#include "engine/passes/pipeline.hpp"
#include "format/archive.hpp"
#include "kernels/cpu/onednn_matmul.hpp"
#include "kiln/kiln.hpp"
#include "tests/support/fixtures.hpp"

namespace {

std::map<std::string, std::size_t> fusion_counts(const kiln::testing::Fixture& f) {
  const kiln::format::Archive archive =
      kiln::format::Archive::open((f.dir / f.manifest.at("archive").as_string()).string());
  kiln::import::ImportedModel m = kiln::import::import_model(archive);
  const kiln::passes::OptimizeResult r = kiln::passes::optimize(m);
  std::map<std::string, std::size_t> counts;
  for (const auto& p : r.passes) {
    if (p.pass.starts_with("fuse_") || p.pass == "sink_expands") counts[p.pass] += p.changed;
  }
  return counts;
}

// Transformer layers, from the parameter names: "encoder.layer.5.attention..." -> 6.
std::size_t layer_count(const kiln::testing::Fixture& f) {
  std::set<std::string> layers;
  for (const auto& [name, info] : f.manifest.at("tensors").as_object()) {
    (void)info;
    const std::size_t at = name.find(".layer.");
    if (at == std::string::npos) continue;
    const std::size_t end = name.find('.', at + 7);
    layers.insert(name.substr(at + 7, end - at - 7));
  }
  return layers.size();
}

// Runs every case of a fixture; outputs per case.
std::vector<std::vector<kiln::Tensor>> run_cases(const kiln::testing::Fixture& f, bool prepare = true) {
  const kiln::testing::FixtureCases c = kiln::testing::fixture_cases(f.generation, f.name);
  kiln::LoadOptions options;
  options.prepare = prepare;
  const kiln::Model model = kiln::Model::load(c.archive, options);
  std::vector<std::vector<kiln::Tensor>> out;
  for (const auto& inputs : c.cases) {
    std::vector<kiln::Tensor> views;
    for (const auto& a : inputs) views.push_back(kiln::Tensor::view(a.dtype, a.shape, a.data.data()));
    out.push_back(model.run(views));
  }
  return out;
}

}  // namespace

TEST_CASE("fusions: each fires once per layer on BERT-family fixtures, eager and SDPA") {
  // Fixture name prefix -> fusions per transformer layer (attention, Q/K/V, bias + GELU,
  // residual + LayerNorm) and per model (embeddings + LayerNorm).
  struct Expect {
    const char* prefix;
    std::size_t attention_per_layer, qkv_per_layer, gelu_per_layer, add_norm_per_layer, embedding_norm;
  };
  const Expect expected[] = {
      {"bert_", 1, 1, 1, 2, 1},   {"minilm_l6", 1, 1, 1, 2, 1}, {"text_", 1, 1, 1, 2, 1},
      {"roberta_", 1, 1, 1, 2, 1}, {"xlm_roberta_", 1, 1, 1, 2, 1}, {"electra_", 1, 1, 1, 2, 1},
      // DistilBERT scales q before q @ k^T and masks with masked_fill: no attention fusion.
      {"distilbert_", 0, 1, 1, 2, 1}, {"distilbert_tiny_sdpa", 1, 1, 1, 2, 1},
  };
  int checked = 0;
  for (const auto& f : kiln::testing::all_fixtures()) {
    const Expect* e = nullptr;
    for (const Expect& x : expected) {
      if (f.name.rfind(x.prefix, 0) == 0) e = &x;
    }
    if (!e) continue;
    INFO(f.generation << "/" << f.name);
    const std::size_t layers = layer_count(f);
    REQUIRE(layers >= 2);
    const auto counts = fusion_counts(f);
    const auto count = [&](const char* k) { return counts.count(k) ? counts.at(k) : std::size_t{0}; };
    CHECK(count("fuse_attention") == e->attention_per_layer * layers);
    CHECK(count("fuse_linear_concat") == e->qkv_per_layer * layers);
    // A masked-LM head's transform is one more dense + GELU.
    const std::size_t head_gelu = f.name.find("mlm") != std::string::npos ? 1 : 0;
    CHECK(count("fuse_linear_gelu") == e->gelu_per_layer * layers + head_gelu);
    CHECK(count("fuse_add_layer_norm") == e->add_norm_per_layer * layers);
    CHECK(count("fuse_embedding_layer_norm") == e->embedding_norm);
    // SDPA traces build the mask [batch, 1, seq, seq] by expand, to float, 1 - it, to bool,
    // masked_fill: the four ops run before the expand (three when the model makes the mask
    // itself, as float ones, for lack of an attention_mask input). Eager traces expand none.
    const bool sdpa = f.name.size() > 5 && f.name.compare(f.name.size() - 5, 5, "_sdpa") == 0;
    bool mask_input = false;
    for (const auto& name : f.manifest.at("input_names").as_array()) mask_input |= name.as_string() == "attention_mask";
    CHECK(count("sink_expands") == (sdpa ? (mask_input ? 4u : 3u) : 0u));
    ++checked;
  }
  CHECK(checked >= 20);
}

TEST_CASE("fusions: the fused graph gives the unfused graph's outputs on every case") {
  int compared = 0;
  for (const auto& f : kiln::testing::all_fixtures()) {
    if (!f.manifest.at("transformers").is_string() || f.name == "minilm_l6" || f.name == "minilm_l6_sdpa") continue;
    INFO(f.generation << "/" << f.name);
    ::setenv("KILN_FUSE", "0", 1);
    std::vector<std::vector<kiln::Tensor>> plain;
    try {
      plain = run_cases(f);
    } catch (...) {
      ::unsetenv("KILN_FUSE");
      throw;
    }
    ::unsetenv("KILN_FUSE");
    for (const bool prepare : {true, false}) {
      INFO((prepare ? "prepared" : "not prepared"));
      const std::vector<std::vector<kiln::Tensor>> fused = run_cases(f, prepare);
      REQUIRE(plain.size() == fused.size());
      for (std::size_t c = 0; c < plain.size(); ++c) {
        REQUIRE(plain[c].size() == fused[c].size());
        for (std::size_t o = 0; o < plain[c].size(); ++o) {
          const kiln::Tensor &a = plain[c][o], &b = fused[c][o];
          REQUIRE(a.dtype() == b.dtype());
          REQUIRE(a.shape() == b.shape());
          if (a.dtype() != kiln::DType::float32) {
            CHECK(std::memcmp(a.data(), b.data(), a.nbytes()) == 0);
            continue;
          }
          // The fused kernels make the unfused kernels' float operations in the same order,
          // except GELU, which the GEMM applies in its epilogue (oneDNN's erf, or kiln's on
          // each block): a few ulps, carried through the layers.
          const float* x = static_cast<const float*>(a.data());
          const float* y = static_cast<const float*>(b.data());
          float worst = 0;  // relative to the value where it is above 1 (masked-LM logits reach 50)
          for (std::int64_t i = 0; i < a.numel(); ++i) {
            worst = std::max(worst, std::fabs(x[i] - y[i]) / std::max(1.0f, std::fabs(x[i])));
          }
          INFO("largest difference " << worst);
          // (1.4e-5 on the text_* fixtures, whose weights are drawn wide; the golden tests
          // hold every fixture to PyTorch's numbers with the fusions on.)
          CHECK(worst <= 1e-4f);
        }
      }
    }
    ++compared;
  }
  CHECK(compared >= 20);
}
