// Golden tests of the whole runtime: every fixture archive of every generation, loaded with
// kiln::Model and run on every case the fixture generator ran through PyTorch, must give
// PyTorch's outputs (float32 within 1e-4, or 1e-4 * max(1, max|reference|) for real
// weights; integers exactly), and must refuse the cases PyTorch refused. The worst
// difference per fixture is printed.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "format/npy.hpp"
#include "kernels/tensor.hpp"
#include "kiln/kiln.hpp"
#include "tests/support/fixtures.hpp"

namespace {

kiln::Tensor read_tensor(const std::filesystem::path& path) {
  const kiln::format::NpyArray a = kiln::format::read_npy(path.string());
  return kiln::Tensor::from_bytes(a.dtype, a.shape, a.data.data());
}

// Element i of a contiguous public tensor, as double.
double element(const kiln::Tensor& t, std::int64_t i) {
  kiln::kernels::Tensor k;
  k.dtype = t.dtype();
  k.sizes = {t.numel()};
  k.strides = {1};
  k.buffer = kiln::kernels::Buffer::borrow(static_cast<const std::byte*>(t.data()), t.nbytes(), nullptr);
  return kiln::kernels::load_double(k, i);
}

bool is_float(kiln::DType d) {
  return d == kiln::DType::float32 || d == kiln::DType::float64 || d == kiln::DType::float16 || d == kiln::DType::bfloat16;
}

}  // namespace

TEST_CASE("golden: every fixture runs like PyTorch on every case") {
  for (const auto& f : kiln::testing::all_fixtures()) {
    if (f.name == "bert_base") continue;  // on demand only, for release benchmarks
    const std::string label = f.generation + "/" + f.name;
    INFO(label);
    const std::string path = (f.dir / f.manifest.at("archive").as_string()).string();
    kiln::Model model;
    try {
      // KILN_GOLDEN_PROVIDER=cpu-reference checks the oracle itself against PyTorch.
      kiln::LoadOptions options;
      if (const char* p = std::getenv("KILN_GOLDEN_PROVIDER")) options.providers = {p};
      model = kiln::Model::load(path, options);
    } catch (const kiln::Error& e) {
      FAIL_CHECK(e.what());
      continue;
    }
    const bool real_weights = f.name.rfind("minilm", 0) == 0;
    double worst = 0;
    for (const auto& c : f.manifest.at("cases").as_array()) {
      const std::string case_name = c.at("case").as_string();
      INFO(case_name);
      std::vector<kiln::Tensor> inputs;
      for (const auto& i : c.at("inputs").as_array()) inputs.push_back(read_tensor(f.dir / i.at("file").as_string()));
      if (c.find("error")) {
        // PyTorch refused these inputs; kiln must refuse them too, as bad input.
        bool refused = false;
        try {
          model.run(inputs);
        } catch (const kiln::Error& e) {
          refused = e.kind() == kiln::ErrorKind::bad_input;
          INFO(e.what());
        }
        CHECK_MESSAGE(refused, "PyTorch said: " << c.at("error").as_string());
        continue;
      }
      std::vector<kiln::Tensor> outputs;
      kiln::RunStats stats;
      kiln::RunOptions options;
      options.stats = &stats;
      try {
        outputs = model.run(inputs, options);
        // The memory plan's lifetimes held: no planned intermediate found its slice busy.
        CHECK(stats.spilled_values == 0);
      } catch (const kiln::Error& e) {
        FAIL_CHECK(e.what());
        continue;
      }
      const auto& want = c.at("outputs").as_array();
      CHECK(outputs.size() == want.size());
      if (outputs.size() != want.size()) continue;
      for (std::size_t k = 0; k < want.size(); ++k) {
        INFO("output " << k);
        const kiln::Tensor expected = read_tensor(f.dir / want[k].at("file").as_string());
        CHECK(std::string(kiln::dtype_name(outputs[k].dtype())) == std::string(kiln::dtype_name(expected.dtype())));
        CHECK(outputs[k].shape() == expected.shape());
        if (outputs[k].shape() != expected.shape()) continue;
        double max_ref = 0, max_diff = 0;
        bool exact = true;
        for (std::int64_t i = 0; i < expected.numel(); ++i) {
          const double r = element(expected, i), g = element(outputs[k], i);
          max_ref = std::max(max_ref, std::fabs(r));
          const double d = r == g || (std::isnan(r) && std::isnan(g)) ? 0 : std::fabs(r - g);
          max_diff = std::max(max_diff, std::isnan(d) ? INFINITY : d);
          exact = exact && (r == g || (std::isnan(r) && std::isnan(g)));
        }
        if (is_float(expected.dtype())) {
          const double tolerance = real_weights ? 1e-4 * std::max(1.0, max_ref) : 1e-4;
          CHECK_MESSAGE(max_diff <= tolerance, "max abs diff " << max_diff << " > " << tolerance);
          worst = std::max(worst, max_diff);
        } else {
          CHECK(exact);
        }
      }
    }
    std::printf("golden: %-36s worst abs diff %.3g\n", label.c_str(), worst);
    std::fflush(stdout);
  }
}

TEST_CASE("golden: one loaded model runs from several threads at once") {
  // A Model is immutable; every run has its own frame. Same inputs give the same bytes.
  const auto all = kiln::testing::all_fixtures();
  const auto f = std::find_if(all.begin(), all.end(), [](const auto& x) { return x.generation == "t1" && x.name == "bert_tiny_3in"; });
  REQUIRE(f != all.end());
  const kiln::Model model = kiln::Model::load((f->dir / f->manifest.at("archive").as_string()).string());
  std::vector<std::vector<kiln::Tensor>> cases;
  for (const auto& c : f->manifest.at("cases").as_array()) {
    std::vector<kiln::Tensor> inputs;
    for (const auto& i : c.at("inputs").as_array()) inputs.push_back(read_tensor(f->dir / i.at("file").as_string()));
    cases.push_back(std::move(inputs));
  }
  std::vector<std::vector<kiln::Tensor>> expected;
  for (const auto& inputs : cases) expected.push_back(model.run(inputs));
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < 3; ++r) {
        const std::size_t c = static_cast<std::size_t>(t + r) % cases.size();
        const std::vector<kiln::Tensor> got = model.run(cases[c]);
        for (std::size_t k = 0; k < got.size(); ++k)
          if (got[k].nbytes() != expected[c][k].nbytes() || std::memcmp(got[k].data(), expected[c][k].data(), got[k].nbytes()) != 0)
            ++mismatches;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(mismatches == 0);
}
