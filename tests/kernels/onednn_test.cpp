// oneDNN's linear and matmul (kernels/cpu/onednn_matmul.hpp) against the reference
// kernels, on odd sizes, on transposed, permuted and expanded views (read in place), with
// broadcast batch dims, and from several threads at once. Skipped when kiln was built
// without oneDNN (the sanitizer builds).
//
// Tolerance: the float dot-product bound fast_test.cpp uses (Higham 3.1): |got - exact| <=
// gamma_(k+2) * (|a| @ |b| + |bias|) + u |ref| per element, u = 2^-24, whatever order and
// blocking oneDNN sums in, as long as it sums in float32 (a bf16 or tf32 product would
// exceed it: their u is 2^-8 or 2^-11).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "kernels/cpu/onednn_matmul.hpp"
#include "kernels/reference/reference.hpp"
#include "kernels/tensor.hpp"
#include "tests/kernels/kernel_checks.hpp"

namespace onednn = kiln::kernels::onednn;
namespace ref = kiln::kernels::ref;
using kiln::DType;
using kiln::kernels::Tensor;
using Sizes = std::vector<std::int64_t>;

using kiln::testing::abs_of;
using kiln::testing::random_f32;

namespace {

const auto check_bound = kiln::testing::check_dot_bound;

void check_linear(const Tensor& x, const Tensor& w, const Tensor* b) {
  Tensor out;
  const std::string label = "linear x " + kiln::kernels::shape_string(x.sizes) + " w " +
                            kiln::kernels::shape_string(w.sizes) + (b ? " with bias" : "");
  INFO(label);
  REQUIRE(onednn::linear(x, w, b, out));
  const Tensor abs_b = b ? abs_of(*b) : Tensor{};
  check_bound(out, ref::linear(x, w, b), ref::linear(abs_of(x), abs_of(w), b ? &abs_b : nullptr), x.sizes.back(),
              label);
}

void check_matmul(const Tensor& a, const Tensor& b, const std::string& what) {
  Tensor out;
  const std::string label =
      what + ": " + kiln::kernels::shape_string(a.sizes) + " @ " + kiln::kernels::shape_string(b.sizes);
  INFO(label);
  REQUIRE(onednn::matmul(a, b, out));
  check_bound(out, ref::matmul(a, b), ref::matmul(abs_of(a), abs_of(b)), a.sizes.back(), label);
}

bool bitwise_equal(const Tensor& x, const Tensor& y) {
  return x.sizes == y.sizes &&
         std::memcmp(x.data<const float>(), y.data<const float>(), static_cast<std::size_t>(x.numel()) * 4) == 0;
}

}  // namespace

TEST_CASE("onednn: linear against the reference on odd shapes") {
  if (!onednn::available()) {
    MESSAGE("built without oneDNN: skipped");
    return;
  }
  const Sizes sizes = {1, 3, 17, 64, 129};
  std::uint64_t seed = 1;
  for (const std::int64_t m : sizes) {
    for (const std::int64_t n : sizes) {
      for (const std::int64_t k : sizes) {
        const Tensor x = random_f32({m, k}, ++seed), w = random_f32({n, k}, ++seed), b = random_f32({n}, ++seed);
        check_linear(x, w, nullptr);
        check_linear(x, w, &b);
      }
    }
  }
}

TEST_CASE("onednn: linear with leading dims, views and a broadcast bias") {
  if (!onednn::available()) {
    MESSAGE("built without oneDNN: skipped");
    return;
  }
  const Tensor w = random_f32({33, 17}, 1), b = random_f32({33}, 2), b1 = random_f32({1}, 3);
  check_linear(random_f32({2, 7, 17}, 4), w, &b);     // 3-D x
  check_linear(random_f32({2, 1, 3, 17}, 5), w, &b);  // 4-D with a size-1 dim
  check_linear(random_f32({17}, 6), w, &b);           // 1-D x gives [n]
  check_linear(random_f32({5, 17}, 7), w, &b1);       // a 1-element bias broadcasts
  // A weight stored [k, n] and transposed (a view); x's last dim strided (sliced).
  check_linear(random_f32({4, 17}, 8), ref::transpose(random_f32({17, 33}, 9), 0, 1), &b);
  check_linear(ref::slice(random_f32({4, 34}, 10), 1, 0, std::nullopt, 2), w, nullptr);
  // Leading dims that fold into one though x is not contiguous: rows padded to 34 floats.
  check_linear(ref::slice(random_f32({3, 8, 34}, 11), 2, 0, 17, 1), w, &b);
  // BERT-base's feed-forward sizes at a short sequence.
  check_linear(random_f32({2, 8, 384}, 12, -3, 5), random_f32({1536, 384}, 13, -0.1, 0.1), nullptr);
  const Tensor big_b = random_f32({1536}, 14);
  check_linear(random_f32({16, 384}, 15, -3, 5), random_f32({1536, 384}, 16, -0.1, 0.1), &big_b);
}

TEST_CASE("onednn: batched matmul on contiguous, transposed and permuted operands") {
  if (!onednn::available()) {
    MESSAGE("built without oneDNN: skipped");
    return;
  }
  const Sizes sizes = {1, 3, 17, 64, 129};
  std::uint64_t seed = 100;
  for (const std::int64_t m : sizes) {
    for (const std::int64_t n : {std::int64_t{1}, std::int64_t{17}, std::int64_t{129}}) {
      for (const std::int64_t k : {std::int64_t{3}, std::int64_t{64}}) {
        seed += 10;
        check_matmul(random_f32({m, k}, seed + 1), random_f32({k, n}, seed + 2), "2-D");
        const Tensor a = random_f32({2, 3, m, k}, seed + 3);
        check_matmul(a, random_f32({2, 3, k, n}, seed + 4), "4-D contiguous");
        // b^T as a view of a [.., n, k] tensor, as in q @ k.transpose(-1, -2).
        const Tensor bt = ref::transpose(random_f32({2, 3, n, k}, seed + 5), -1, -2);
        check_matmul(a, bt, "4-D with a transposed b");
        // a as the heads view of [batch, seq, heads, head_dim], as BERT's q.
        const Tensor ap = ref::permute(random_f32({2, m, 3, k}, seed + 6), {0, 2, 1, 3});
        check_matmul(ap, bt, "4-D with a permuted a and a transposed b");
        check_matmul(ap, ref::permute(random_f32({2, k, 3, n}, seed + 7), {0, 2, 1, 3}), "4-D, both permuted");
      }
    }
  }
}

TEST_CASE("onednn: BERT's attention products read their views in place") {
  if (!onednn::available()) {
    MESSAGE("built without oneDNN: skipped");
    return;
  }
  // [batch, seq, heads, head_dim] -> [batch, heads, seq, head_dim], as BERT's transpose_for_scores.
  const std::int64_t batch = 2, seq = 33, heads = 4, dim = 16;
  const Tensor q = ref::permute(random_f32({batch, seq, heads, dim}, 1), {0, 2, 1, 3});
  const Tensor k = ref::permute(random_f32({batch, seq, heads, dim}, 2), {0, 2, 1, 3});
  const Tensor v = ref::permute(random_f32({batch, seq, heads, dim}, 3), {0, 2, 1, 3});
  const Tensor kt = ref::transpose(k, -1, -2);
  const Tensor probs = random_f32({batch, heads, seq, seq}, 4, 0, 1);
  check_matmul(q, kt, "scores");
  check_matmul(probs, v, "context");
  for (const auto& [a, b] : {std::pair{q, kt}, std::pair{probs, v}}) {
    const std::string impl = onednn::matmul_implementation(a, b);
    MESSAGE("oneDNN runs ", kiln::kernels::shape_string(a.sizes), " @ ", kiln::kernels::shape_string(b.sizes),
            " with ", impl);
    CHECK(!impl.empty());
    CHECK(impl.rfind("ref", 0) != 0);  // not oneDNN's slow reference code
  }
}

TEST_CASE("onednn: matmul broadcasts batch dims") {
  if (!onednn::available()) {
    MESSAGE("built without oneDNN: skipped");
    return;
  }
  check_matmul(random_f32({2, 1, 5, 7}, 1), random_f32({3, 7, 4}, 2), "[2, 1] with [3]");
  check_matmul(random_f32({5, 7}, 3), random_f32({4, 2, 7, 9}, 4), "2-D a against 4-D b");
  check_matmul(random_f32({4, 2, 5, 7}, 5), random_f32({7, 9}, 6), "4-D a against 2-D b");
  check_matmul(random_f32({3, 1, 5, 7}, 7), random_f32({1, 2, 7, 9}, 8), "[3, 1] with [1, 2]");
  // Expanded views (stride 0): the same values as a size-1 dim, given to oneDNN as one.
  const Tensor ae = ref::expand(random_f32({1, 1, 5, 7}, 9), {2, 3, 5, 7});
  check_matmul(ae, random_f32({2, 3, 7, 4}, 10), "expanded a");
  check_matmul(random_f32({2, 3, 5, 7}, 11), ref::expand(random_f32({2, 1, 7, 4}, 12), {2, 3, 7, 4}), "expanded b");
  check_matmul(ae, ref::expand(random_f32({7, 4}, 13), {2, 3, 7, 4}), "both expanded");
  // An expanded dim against a size-1 one stays a zero stride: oneDNN may run it or refuse it.
  Tensor out;
  const Tensor b1 = random_f32({1, 1, 7, 4}, 14);
  if (onednn::matmul(ae, b1, out)) {
    check_bound(out, ref::matmul(ae, b1), ref::matmul(abs_of(ae), abs_of(b1)), 7, "expanded a against size 1");
  }
}

TEST_CASE("onednn: what linear and matmul refuse") {
  const Tensor x = random_f32({4, 8}, 1), w = random_f32({5, 8}, 2), b = random_f32({5}, 3);
  Tensor out;
  CHECK_FALSE(onednn::linear(ref::cast(x, DType::float64), ref::cast(w, DType::float64), nullptr, out));
  CHECK_FALSE(onednn::linear(x, random_f32({5, 7}, 4), nullptr, out));  // k mismatch
  const Tensor wrong_bias = random_f32({4}, 5), bias_2d = random_f32({1, 5}, 6);
  CHECK_FALSE(onednn::linear(x, w, &wrong_bias, out));
  CHECK_FALSE(onednn::linear(x, w, &bias_2d, out));
  CHECK_FALSE(onednn::linear(Tensor::empty(DType::float32, {0, 8}), w, nullptr, out));
  CHECK_FALSE(onednn::linear(x, random_f32({8}, 7), nullptr, out));  // 1-D weight
  CHECK_FALSE(onednn::linear(Tensor::scalar(DType::float32, 1.0), w, nullptr, out));
  // Leading dims that do not fold into one (a permuted 3-D x).
  CHECK_FALSE(onednn::linear(ref::permute(random_f32({3, 4, 8}, 8), {1, 0, 2}), w, nullptr, out));

  const Tensor a = random_f32({2, 3, 4}, 9), m = random_f32({2, 4, 5}, 10);
  CHECK_FALSE(onednn::matmul(ref::cast(a, DType::float64), ref::cast(m, DType::float64), out));
  CHECK_FALSE(onednn::matmul(random_f32({4}, 11), m, out));  // rank 1: the caller's
  CHECK_FALSE(onednn::matmul(a, random_f32({4}, 12), out));
  CHECK_FALSE(onednn::matmul(Tensor::empty(DType::float32, {2, 0, 4}), m, out));
  CHECK_FALSE(onednn::matmul(Tensor::empty(DType::float32, {2, 3, 0}), Tensor::empty(DType::float32, {2, 0, 5}), out));
  CHECK_FALSE(onednn::matmul(a, random_f32({2, 3, 5}, 13), out));     // k mismatch
  CHECK_FALSE(onednn::matmul(a, random_f32({3, 4, 5}, 14), out));     // batch 2 against 3
  Tensor no_buffer = a;
  no_buffer.buffer = nullptr;
  CHECK_FALSE(onednn::matmul(no_buffer, m, out));
  Tensor past_end = a;  // a view reaching past its buffer
  past_end.offset = 1;
  CHECK_FALSE(onednn::matmul(past_end, m, out));
  CHECK(out.buffer == nullptr);  // untouched

  if (!onednn::available()) {
    CHECK_FALSE(onednn::linear(x, w, &b, out));
    CHECK_FALSE(onednn::matmul(a, m, out));
    CHECK(onednn::matmul_implementation(a, m).empty());
    MESSAGE("built without oneDNN: every call refused");
    return;
  }
  CHECK(onednn::linear(x, w, &b, out));
  CHECK(out.sizes == Sizes{4, 5});
  CHECK(onednn::matmul(a, m, out));
  CHECK(out.sizes == Sizes{2, 3, 5});
}

TEST_CASE("onednn: concurrent calls give bitwise-equal results") {
  if (!onednn::available()) {
    MESSAGE("built without oneDNN: skipped");
    return;
  }
  const Tensor q = ref::permute(random_f32({2, 65, 4, 32}, 1), {0, 2, 1, 3});
  const Tensor kt = ref::transpose(ref::permute(random_f32({2, 65, 4, 32}, 2), {0, 2, 1, 3}), -1, -2);
  const Tensor x = random_f32({65, 128}, 3), w = random_f32({96, 128}, 4), b = random_f32({96}, 5);
  constexpr int kThreads = 4, kRounds = 20;
  std::vector<Tensor> scores(kThreads * kRounds), projected(kThreads * kRounds);
  std::vector<int> failures(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Every thread starts with the same OpenMP settings, so each builds (or finds) the same
      // primitives; what is checked is that running them at once changes no bit.
      for (int r = 0; r < kRounds; ++r) {
        const int i = t * kRounds + r;
        if (!onednn::matmul(q, kt, scores[i]) || !onednn::linear(x, w, &b, projected[i])) ++failures[t];
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) REQUIRE(failures[t] == 0);
  for (int i = 1; i < kThreads * kRounds; ++i) {
    CHECK(bitwise_equal(scores[i], scores[0]));
    CHECK(bitwise_equal(projected[i], projected[0]));
  }
  check_bound(scores[0], ref::matmul(q, kt), ref::matmul(abs_of(q), abs_of(kt)), 32, "scores");
}

TEST_CASE("onednn: a packed weight is read in place of the original, at every row count") {
  const Tensor w = random_f32({96, 64}, 1), b = random_f32({96}, 2);
  std::shared_ptr<const onednn::PackedWeight> packed = onednn::pack_weight(w, 16);
  if (!onednn::available()) {
    CHECK(packed == nullptr);
    MESSAGE("built without oneDNN: nothing is packed");
    return;
  }
  if (!packed) {
    const std::string implementation = onednn::describe_linear(random_f32({16, 64}, 3), w, &b).implementation;
    MESSAGE("oneDNN keeps the plain layout on this machine (", implementation, "): nothing to pack");
    return;
  }
  CHECK(onednn::packed_bytes(*packed) >= 96 * 64 * sizeof(float));
  CHECK(onednn::pack_weight(w, 7) == packed);  // the registered copy, shared

  Tensor original = w;  // the same bytes
  const Tensor kept = random_f32({96, 64}, 1);  // w's values, elsewhere
  for (const std::int64_t m : {1, 7, 16, 129}) {
    const Tensor x = random_f32({m, 64}, 10 + static_cast<std::uint64_t>(m));
    const onednn::LinearInfo info = onednn::describe_linear(x, w, &b);
    INFO("m ", m, ": ", info.implementation);
    CHECK(info.packed);
    check_linear(x, w, &b);
    check_linear(x, w, nullptr);
  }
  // What is read is the copy: the original's bytes no longer matter (a test may break the
  // promise to leave them unchanged, to see which is read).
  std::memset(original.data<float>(), 0, 96 * 64 * sizeof(float));
  const Tensor x = random_f32({5, 64}, 4);
  Tensor out;
  REQUIRE(onednn::linear(x, w, &b, out));
  const Tensor abs_b = abs_of(b);
  const Tensor magnitude = ref::linear(abs_of(x), abs_of(kept), &abs_b);
  check_bound(out, ref::linear(x, kept, &b), magnitude, 64, "after the original changed");

  // Another weight with the same values elsewhere is not the packed one; a released copy is
  // read no more.
  CHECK_FALSE(onednn::describe_linear(x, kept, &b).packed);
  packed.reset();
  CHECK_FALSE(onednn::describe_linear(x, w, &b).packed);
  REQUIRE(onednn::linear(x, w, &b, out));
  const Tensor bias_only = ref::linear(x, w, &b);  // w is zeros now: b in every row
  check_bound(out, bias_only, ref::linear(abs_of(x), abs_of(w), &abs_b), 64, "the original, read again");
}

TEST_CASE("onednn: packed weights of views and with an epilogue") {
  if (!onednn::available()) {
    MESSAGE("built without oneDNN: skipped");
    return;
  }
  // A weight stored [k, n] and used transposed, as a view: packed from its real strides.
  const Tensor wt = ref::transpose(random_f32({64, 80}, 1), 0, 1);
  const Tensor b = random_f32({80}, 2);
  const std::shared_ptr<const onednn::PackedWeight> packed = onednn::pack_weight(wt, 32);
  if (!packed) {
    MESSAGE("oneDNN keeps the plain layout on this machine: skipped");
    return;
  }
  const Tensor x = random_f32({3, 11, 64}, 3);
  CHECK(onednn::describe_linear(x, wt, &b).packed);
  check_linear(x, wt, &b);
  // The fused linear + GELU reads the same copy.
  CHECK(onednn::describe_linear(x, wt, &b, onednn::Epilogue::gelu_erf).packed);
  Tensor fused, plain;
  REQUIRE(onednn::linear(x, wt, &b, fused, onednn::Epilogue::gelu_erf));
  REQUIRE(onednn::linear(x, wt, &b, plain));
  const Tensor gelu = ref::unary(ref::UnaryOp::gelu_erf, plain, DType::float32);
  kiln::testing::check_close(fused, gelu, 1e-6, 1e-5, "packed linear + gelu against packed linear, then gelu");
}

TEST_CASE("onednn: weights packed and released while other threads run linear") {
  if (!onednn::available()) {
    MESSAGE("built without oneDNN: skipped");
    return;
  }
  const Tensor w = random_f32({96, 128}, 1), b = random_f32({96}, 2), x = random_f32({33, 128}, 3);
  constexpr int kThreads = 4, kRounds = 25;
  std::vector<Tensor> outputs(kThreads * kRounds);
  std::vector<int> failures(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRounds; ++r) {
        // Half the threads hold a packed copy for a while; the others only run.
        const std::shared_ptr<const onednn::PackedWeight> held = t % 2 ? onednn::pack_weight(w, 33) : nullptr;
        if (!onednn::linear(x, w, &b, outputs[t * kRounds + r])) ++failures[t];
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) REQUIRE(failures[t] == 0);
  const Tensor expected = ref::linear(x, w, &b), abs_b = abs_of(b);
  const Tensor magnitude = ref::linear(abs_of(x), abs_of(w), &abs_b);
  for (const Tensor& out : outputs) check_bound(out, expected, magnitude, 128, "linear beside packing");
}

TEST_CASE("onednn: weights packed side by side give the concatenated linears (Q, K, V)") {
  // Parts whose columns start on the packed layout's blocks (3 x 128), and parts that do
  // not (40, 24, 72: packed from a plain concatenation instead); a part without a bias.
  struct Case {
    std::vector<std::int64_t> widths;
    bool middle_bias;
  };
  for (const Case& c : {Case{{128, 128, 128}, true}, Case{{40, 24, 72}, false}}) {
    std::vector<Tensor> ws, bs;
    std::uint64_t seed = 700;
    for (const std::int64_t n : c.widths) {
      ws.push_back(random_f32({n, 96}, ++seed, -0.5, 0.5));
      bs.push_back(random_f32({n}, ++seed));
    }
    std::vector<const Tensor*> weights, biases;
    for (std::size_t i = 0; i < ws.size(); ++i) {
      weights.push_back(&ws[i]);
      biases.push_back(i == 1 && !c.middle_bias ? nullptr : &bs[i]);
    }
    const Tensor x = random_f32({2, 9, 96}, 750);
    Tensor out;
    const std::shared_ptr<const onednn::PackedWeight> packed = onednn::pack_weights(weights, biases, 18);
    if (!packed) {
      CHECK_FALSE(onednn::linear_concat(x, weights, biases, out));
      MESSAGE("nothing packed (no oneDNN, or it keeps the plain layout here)");
      continue;
    }
    CHECK(onednn::pack_weights(weights, biases, 18) == packed);  // registered, shared
    REQUIRE(onednn::linear_concat(x, weights, biases, out));
    std::vector<Tensor> parts, magnitudes;
    for (std::size_t i = 0; i < ws.size(); ++i) {
      parts.push_back(ref::linear(x, ws[i], biases[i]));
      const Tensor abs_b = abs_of(bs[i]);
      magnitudes.push_back(ref::linear(abs_of(x), abs_of(ws[i]), biases[i] ? &abs_b : nullptr));
    }
    check_bound(out, ref::cat(parts, -1), ref::cat(magnitudes, -1), 96, "side by side");
    // Other biases (or the same weights in another order) are another group: not packed.
    std::vector<const Tensor*> other = biases;
    other[0] = nullptr;
    CHECK_FALSE(onednn::linear_concat(x, weights, other, out));
  }
}
