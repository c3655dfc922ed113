// The public C++ API on real fixtures: loading from memory, what a model takes and
// returns, zero-copy input views, the thread-safety contract (one model, many concurrent
// runs, every output bitwise equal to the single-threaded one), and preparing a model
// after loading it.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "format/npy.hpp"
#include "kiln/kiln.hpp"
#include "tests/support/fixtures.hpp"

namespace {

using Found = kiln::testing::FixtureCases;

Found find(const std::string& generation, const std::string& name) { return kiln::testing::fixture_cases(generation, name); }

std::vector<kiln::Tensor> copies(const std::vector<kiln::format::NpyArray>& arrays) {
  std::vector<kiln::Tensor> out;
  for (const auto& a : arrays) out.push_back(kiln::Tensor::from_bytes(a.dtype, a.shape, a.data.data()));
  return out;
}

bool same_bytes(const kiln::Tensor& a, const kiln::Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.nbytes()) == 0;
}

}  // namespace

TEST_CASE("api: a model loaded from memory runs like one loaded from its file") {
  const Found f = find("t2", "bert_tiny_3in");
  std::ifstream in(f.archive, std::ios::binary);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(!bytes.empty());
  const kiln::Model from_file = kiln::Model::load(f.archive);
  const kiln::Model from_memory = kiln::Model::load_from_memory(bytes.data(), bytes.size(), {}, "bert.pt");
  const auto inputs = copies(f.cases.at(0));
  const auto a = from_file.run(inputs), b = from_memory.run(inputs);
  REQUIRE(a.size() == b.size());
  for (std::size_t k = 0; k < a.size(); ++k) CHECK(same_bytes(a[k], b[k]));
  // Bad bytes name the caller's name for the file.
  const std::vector<char> junk(100, 'x');
  try {
    kiln::Model::load_from_memory(junk.data(), junk.size(), {}, "junk.pt");
    FAIL("junk loaded");
  } catch (const kiln::Error& e) {
    CHECK(e.kind() == kiln::ErrorKind::bad_input);
    CHECK(e.file() == "junk.pt");
  }
  CHECK_THROWS_AS(kiln::Model::load_from_memory(nullptr, 10), kiln::Error);
}

TEST_CASE("api: inputs and outputs describe names, dtypes and symbolic shapes") {
  const kiln::Model m = kiln::Model::load(find("t2", "bert_tiny_3in").archive);
  const auto ins = m.inputs();
  REQUIRE(ins.size() == 3);
  CHECK(ins[0].name == "input_ids");
  CHECK(ins[1].name == "attention_mask");
  CHECK(ins[2].name == "token_type_ids");
  for (const auto& i : ins) {
    INFO(i.name);
    REQUIRE(i.dtype);
    CHECK(*i.dtype == kiln::DType::int64);
    REQUIRE(i.shape);
    REQUIRE(i.shape->size() == 2);
    CHECK((*i.shape)[0].symbol == "batch");
    CHECK((*i.shape)[1].symbol == "seq");
  }
  const auto outs = m.outputs();
  REQUIRE(outs.size() == 2);  // last_hidden_state, pooler_output
  CHECK(outs[0].name == "output_0");
  REQUIRE(outs[0].dtype);
  CHECK(*outs[0].dtype == kiln::DType::float32);
  REQUIRE(outs[0].shape);
  REQUIRE(outs[0].shape->size() == 3);
  CHECK((*outs[0].shape)[0].symbol == "batch");
  CHECK((*outs[0].shape)[1].symbol == "seq");
  CHECK((*outs[0].shape)[2].size > 0);  // hidden size, fixed
  REQUIRE(outs[1].shape);
  CHECK(outs[1].shape->size() == 2);
  // The outputs' sizes are what a run returns.
  const Found f = find("t2", "bert_tiny_3in");
  const auto got = m.run(copies(f.cases.at(0)));
  CHECK(got[0].shape()[2] == (*outs[0].shape)[2].size);
}

TEST_CASE("api: tensor views use caller memory without copying") {
  const Found f = find("t2", "bert_tiny_2in");
  const kiln::Model m = kiln::Model::load(f.archive);
  const auto& arrays = f.cases.at(0);
  std::vector<kiln::Tensor> views;
  for (const auto& a : arrays) views.push_back(kiln::Tensor::view(a.dtype, a.shape, a.data.data()));
  CHECK(views[0].data() == static_cast<const void*>(arrays[0].data.data()));
  const auto a = m.run(views), b = m.run(copies(arrays));
  for (std::size_t k = 0; k < a.size(); ++k) CHECK(same_bytes(a[k], b[k]));
  CHECK_THROWS_AS(kiln::Tensor::view(kiln::DType::int64, {2, 3}, nullptr), kiln::Error);
  CHECK_NOTHROW(kiln::Tensor::view(kiln::DType::int64, {0, 3}, nullptr));
}

TEST_CASE("api: 8 threads x 200 runs on one model give the single-threaded bytes") {
  const Found f = find("t2", "minilm_l6");
  const kiln::Model m = kiln::Model::load(f.archive);
  // The smallest case that still takes at least a millisecond a run.
  std::vector<std::vector<kiln::Tensor>> cases;
  for (const auto& c : f.cases) cases.push_back(copies(c));
  std::vector<kiln::Tensor> inputs;
  for (const auto& c : cases) {
    kiln::RunOptions one;
    one.threads = 1;
    const auto start = std::chrono::steady_clock::now();
    m.run(c, one);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (ms >= 1.0 && (inputs.empty() || c[0].numel() < inputs[0].numel())) inputs = c;
  }
  REQUIRE(!inputs.empty());
  kiln::RunOptions options;
  options.threads = 1;
  const std::vector<kiln::Tensor> expected = m.run(inputs, options);
  constexpr int kThreads = 8, kRuns = 200;
  std::barrier start(kThreads);
  std::atomic<int> mismatches{0}, errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      start.arrive_and_wait();
      for (int r = 0; r < kRuns; ++r) {
        try {
          const auto got = m.run(inputs, options);
          for (std::size_t k = 0; k < got.size(); ++k)
            if (!same_bytes(got[k], expected[k])) ++mismatches;
        } catch (const kiln::Error&) {
          ++errors;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(errors == 0);
  CHECK(mismatches == 0);
}

namespace {

// Float outputs within 1e-5 of each other relative to their size: what the same model gives
// with its weights packed or read in place (the GEMM may block the sums differently).
void check_close(const std::vector<kiln::Tensor>& got, const std::vector<kiln::Tensor>& want) {
  REQUIRE(got.size() == want.size());
  for (std::size_t k = 0; k < got.size(); ++k) {
    REQUIRE(got[k].shape() == want[k].shape());
    REQUIRE(got[k].dtype() == kiln::DType::float32);
    const auto* g = static_cast<const float*>(got[k].data());
    const auto* w = static_cast<const float*>(want[k].data());
    std::int64_t bad = 0;
    for (std::int64_t i = 0; i < got[k].numel(); ++i)
      if (std::fabs(g[i] - w[i]) > 1e-5 * std::max(1.0f, std::fabs(w[i]))) ++bad;
    CHECK_MESSAGE(bad == 0, "output " << k << ": " << bad << " elements differ");
  }
}

}  // namespace

TEST_CASE("api: a model loaded unprepared runs, prepares later, and then runs as one prepared at load") {
  const Found f = find("t2", "minilm_l6");
  const auto inputs = copies(f.cases.at(0));
  kiln::LoadOptions lazy;
  lazy.prepare = false;
  const kiln::Model later = kiln::Model::load(f.archive, lazy);
  const kiln::Model ready = kiln::Model::load(f.archive);
  const auto prepared = ready.run(inputs);
  check_close(later.run(inputs), prepared);
  later.prepare();
  later.prepare();  // nothing left to do
  const auto after = later.run(inputs);
  REQUIRE(after.size() == prepared.size());
  for (std::size_t k = 0; k < after.size(); ++k) CHECK(same_bytes(after[k], prepared[k]));
  // A copy of a model shares its preparation.
  const kiln::Model copy = later;
  copy.prepare();
  const auto from_copy = copy.run(inputs);
  for (std::size_t k = 0; k < after.size(); ++k) CHECK(same_bytes(from_copy[k], prepared[k]));
}

TEST_CASE("api: prepare from several threads while others run the same model") {
  const Found f = find("t2", "minilm_l6");
  const auto inputs = copies(f.cases.at(0));
  const auto expected = kiln::Model::load(f.archive).run(inputs);
  kiln::LoadOptions lazy;
  lazy.prepare = false;
  const kiln::Model m = kiln::Model::load(f.archive, lazy);
  constexpr int kThreads = 6, kRuns = 10;
  std::barrier start(kThreads);
  std::vector<std::vector<std::vector<kiln::Tensor>>> outputs(kThreads);
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      try {
        if (t % 2 == 0) m.prepare();  // three preparers race; the others run meanwhile
        for (int r = 0; r < kRuns; ++r) outputs[t].push_back(m.run(inputs));
      } catch (const kiln::Error&) {
        ++errors;
      }
    });
  }
  for (auto& th : threads) th.join();
  REQUIRE(errors == 0);
  // Runs read either the originals or the packed copies: the same numbers up to rounding.
  for (const auto& per_thread : outputs)
    for (const auto& got : per_thread) check_close(got, expected);
  // Once prepared, exactly what a model prepared at load gives.
  const auto after = m.run(inputs);
  for (std::size_t k = 0; k < after.size(); ++k) CHECK(same_bytes(after[k], expected[k]));
}
