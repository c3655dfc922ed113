// The fast elementwise kernels (kernels/cpu/elementwise.hpp) against the reference kernels,
// at every instruction-set level this machine has:
// - add, sub, mul, div (alpha 1), binary_scalar and embedding: bitwise the reference's
//   result (which is PyTorch's: one IEEE float operation per element), NaN matching NaN;
//   add and sub with alpha != 1: bitwise fma(b, +-(float)alpha, a), PyTorch's vectorized
//   CPU result, and within 1 ulp of the reference (which rounds twice, through double).
// - gelu: within 4 ulp of ref::unary or 1e-7 absolute (ref::unary's own 1 + erf cancels
//   below about -5.5), and within 1 ulp of an oracle that keeps the negative tail
//   (x erfc(-x / sqrt 2) / 2 and x / (1 + e^-2u)), on a dense grid over [-10, 10], a
//   stride through all 2^32 bit patterns, and special values.
// - every kernel: the same bits with 1 and with 3 threads, on tensors big enough to split.
#include <doctest/doctest.h>

#include <bit>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <numbers>
#include <string>
#include <vector>

#include "kernels/cpu/elementwise.hpp"
#include "kernels/cpu/isa.hpp"
#include "kernels/cpu/parallel.hpp"
#include "kernels/reference/reference.hpp"
#include "kernels/tensor.hpp"
#include "tests/kernels/kernel_checks.hpp"

namespace cpu = kiln::kernels::cpu;
namespace fast = kiln::kernels::fast;
namespace ref = kiln::kernels::ref;
using cpu::Isa;
using kiln::DType;
using kiln::kernels::Tensor;
using Sizes = std::vector<std::int64_t>;

using kiln::testing::abs_of;
using kiln::testing::random_f32;

namespace {

Tensor from_values(const std::vector<float>& values) {
  Tensor t = Tensor::empty(DType::float32, {static_cast<std::int64_t>(values.size())});
  std::memcpy(t.data<float>(), values.data(), values.size() * sizeof(float));
  return t;
}

std::string label(const std::string& what, Isa isa, const Sizes& a, const Sizes& b) {
  return what + " at " + cpu::isa_name(isa) + " on " + kiln::kernels::shape_string(a) + " and " +
         kiln::kernels::shape_string(b);
}

bool same_bits(float x, float y) {
  return (std::isnan(x) && std::isnan(y)) || std::bit_cast<std::uint32_t>(x) == std::bit_cast<std::uint32_t>(y);
}

// Every element bitwise equal (NaN matching any NaN); one CHECK per tensor.
void check_bitwise(const Tensor& got, const Tensor& expected, const std::string& what) {
  INFO(what);
  REQUIRE(got.dtype == DType::float32);
  REQUIRE(got.sizes == expected.sizes);
  REQUIRE(got.is_contiguous());
  const float* g = got.data<const float>();
  const float* e = expected.data<const float>();
  std::int64_t bad = 0, first = -1;
  for (std::int64_t i = 0; i < got.numel(); ++i) {
    if (!same_bits(g[i], e[i]) && bad++ == 0) first = i;
  }
  INFO("first bad element ", first, ": got ", first >= 0 ? g[first] : 0.0f, ", expected ",
       first >= 0 ? e[first] : 0.0f);
  CHECK(bad == 0);
}

// Every element within one float spacing (at the expected value) of the expected one.
void check_within_ulp(const Tensor& got, const Tensor& expected, const std::string& what) {
  INFO(what);
  REQUIRE(got.sizes == expected.sizes);
  const float* g = got.data<const float>();
  const float* e = expected.data<const float>();
  std::int64_t bad = 0;
  for (std::int64_t i = 0; i < got.numel(); ++i) {
    if (!same_bits(g[i], e[i]) && !(std::fabs(g[i] - e[i]) <= std::fabs(std::nextafter(e[i], INFINITY) - e[i]))) ++bad;
  }
  CHECK(bad == 0);
}

ref::BinaryOp ref_op(fast::BinaryOp op) {
  switch (op) {
    case fast::BinaryOp::add: return ref::BinaryOp::add;
    case fast::BinaryOp::sub: return ref::BinaryOp::sub;
    case fast::BinaryOp::mul: return ref::BinaryOp::mul;
    case fast::BinaryOp::div: return ref::BinaryOp::div;
  }
  return ref::BinaryOp::add;
}

const char* op_name(fast::BinaryOp op) {
  switch (op) {
    case fast::BinaryOp::add: return "add";
    case fast::BinaryOp::sub: return "sub";
    case fast::BinaryOp::mul: return "mul";
    case fast::BinaryOp::div: return "div";
  }
  return "?";
}

constexpr fast::BinaryOp kOps[] = {fast::BinaryOp::add, fast::BinaryOp::sub, fast::BinaryOp::mul,
                                   fast::BinaryOp::div};

void check_binary(Isa isa, const Tensor& a, const Tensor& b) {
  for (const fast::BinaryOp op : kOps) {
    Tensor out;
    const std::string what = label(op_name(op), isa, a.sizes, b.sizes);
    INFO(what);
    REQUIRE(fast::binary(op, a, b, 1.0, out, isa));
    check_bitwise(out, ref::binary(ref_op(op), a, b, DType::float32, DType::float32), what);
  }
}

// Odd values for the elementwise ops: zeros of both signs, infinities, NaN, subnormals,
// the extremes, and ordinary numbers; 31 of them (not a multiple of any vector width).
std::vector<float> special_values() {
  return {0.0f,    -0.0f,     1.0f,     -1.0f,      INFINITY, -INFINITY, NAN,      FLT_MAX,
          -FLT_MAX, FLT_MIN,  -FLT_MIN, 1e-45f,     -1e-45f,  3e-39f,    0.1f,     -0.3f,
          1e30f,   -1e30f,    1e-30f,   123456.7f,  -7.5f,    2.0f,      0.5f,     3.0f,
          -3.0f,   1e-20f,    65504.0f, -65504.0f,  1e20f,    5e-40f,    -2.5e-39f};
}

}  // namespace

TEST_CASE("elementwise: binary ops against the reference, same shapes") {
  for (const Isa isa : cpu::available_isas()) {
    const std::uint64_t seed = 100;
    for (const std::int64_t n : {1, 3, 7, 15, 16, 17, 31, 33, 64, 65, 127, 384, 1000}) {
      check_binary(isa, random_f32({n}, seed + 1), random_f32({n}, seed + 2));
      check_binary(isa, random_f32({3, n}, seed + 3), random_f32({3, n}, seed + 4));
    }
    check_binary(isa, random_f32({2, 3, 5, 7}, seed + 5), random_f32({2, 3, 5, 7}, seed + 6));
    // Special values against each other (every pair: 31 x 31).
    const std::vector<float> values = special_values();
    const auto m = static_cast<std::int64_t>(values.size());
    const Tensor column = ref::expand(ref::view(from_values(values), {m, 1}), {m, m});
    const Tensor row = ref::expand(ref::view(from_values(values), {1, m}), {m, m});
    check_binary(isa, ref::contiguous(column), ref::contiguous(row));
    check_binary(isa, column, row);
  }
}

TEST_CASE("elementwise: binary ops with broadcasting and strided views") {
  for (const Isa isa : cpu::available_isas()) {
    const std::uint64_t seed = 200;
    // BERT's attention mask onto the scores, and the other broadcast shapes.
    check_binary(isa, random_f32({2, 3, 5, 7}, seed + 7), random_f32({2, 1, 1, 7}, seed + 8));
    check_binary(isa, random_f32({2, 1, 1, 7}, seed + 9), random_f32({2, 3, 5, 7}, seed + 10));
    check_binary(isa, random_f32({3, 12, 17, 17}, seed + 11), random_f32({3, 1, 1, 17}, seed + 12));
    check_binary(isa, random_f32({3, 1, 5}, seed + 13), random_f32({4, 1}, seed + 14));
    check_binary(isa, random_f32({5}, seed + 15), random_f32({3, 5}, seed + 16));
    check_binary(isa, random_f32({7, 1}, seed + 17), random_f32({1, 9}, seed + 18));
    check_binary(isa, random_f32({4, 33, 1}, seed + 19), random_f32({33, 19}, seed + 20));
    check_binary(isa, random_f32({6, 1, 3}, seed + 21), random_f32({6, 2, 1}, seed + 22));
    // 0-dim operands: float32 on either side, both, and float64 (rounded to float first).
    const Tensor scores = random_f32({2, 3, 17, 17}, seed + 23);
    check_binary(isa, scores, Tensor::scalar(DType::float32, 8.0));
    check_binary(isa, scores, Tensor::scalar(DType::float32, 0.3));
    check_binary(isa, Tensor::scalar(DType::float32, -1.7), scores);
    check_binary(isa, Tensor::scalar(DType::float32, 1.25), Tensor::scalar(DType::float32, 3.0));
    check_binary(isa, scores, Tensor::scalar(DType::float64, 5.656854249492381));  // sqrt(32)
    check_binary(isa, scores, Tensor::scalar(DType::float64, 0.1));
    check_binary(isa, Tensor::scalar(DType::float64, -10000.0), scores);
    check_binary(isa, random_f32({1}, seed + 24), scores);
    // Non-contiguous: transposed, permuted, sliced with a step, expanded.
    const Tensor base = random_f32({6, 10, 9}, seed + 25);
    const Tensor permuted = ref::permute(base, {2, 0, 1});  // [9, 6, 10]
    check_binary(isa, permuted, random_f32({9, 6, 10}, seed + 26));
    check_binary(isa, random_f32({9, 6, 10}, seed + 27), permuted);
    check_binary(isa, permuted, ref::permute(random_f32({10, 9, 6}, seed + 28), {1, 2, 0}));
    check_binary(isa, ref::transpose(random_f32({13, 17}, seed + 29), 0, 1), random_f32({17, 1}, seed + 30));
    check_binary(isa, ref::slice(base, 1, 1, 9, 2), random_f32({6, 4, 9}, seed + 31));
    check_binary(isa, ref::slice(base, 2, 0, 9, 3), ref::slice(base, 2, 1, 9, 3));
    check_binary(isa, ref::expand(random_f32({1, 10, 1}, seed + 32), {6, 10, 9}), base);
    check_binary(isa, ref::select(base, 2, 4), random_f32({10}, seed + 33));
    // Empty results.
    check_binary(isa, random_f32({0, 3}, seed + 34), random_f32({3}, seed + 35));
    check_binary(isa, random_f32({2, 0, 3}, seed + 36), random_f32({1, 1, 3}, seed + 37));
  }
}

TEST_CASE("elementwise: add and sub with alpha are one fused multiply-add") {
  for (const Isa isa : cpu::available_isas()) {
    const std::uint64_t seed = 300;
    for (const std::int64_t n : {1, 15, 17, 100, 1001}) {
      const Tensor a = random_f32({n}, seed + 38, -1e3, 1e3), b = random_f32({n}, seed + 39, -1e3, 1e3);
      for (const double alpha : {0.1, -2.5, 3.3, 0.0, 1e-3, 1.0000001}) {
        for (const fast::BinaryOp op : {fast::BinaryOp::add, fast::BinaryOp::sub}) {
          Tensor out;
          const std::string what = label(op_name(op), isa, a.sizes, b.sizes) + " alpha " + std::to_string(alpha);
          INFO(what);
          REQUIRE(fast::binary(op, a, b, alpha, out, isa));
          const auto alpha_f = static_cast<float>(op == fast::BinaryOp::add ? alpha : -alpha);
          const float *x = a.data<const float>(), *y = b.data<const float>(), *g = out.data<const float>();
          std::int64_t not_fma = 0;
          for (std::int64_t i = 0; i < n; ++i) {
            if (!same_bits(g[i], std::fma(y[i], alpha_f, x[i]))) ++not_fma;
          }
          CHECK(not_fma == 0);
          check_within_ulp(out, ref::binary(ref_op(op), a, b, DType::float32, DType::float32, alpha), what);
        }
      }
      // With a broadcast 0-dim b, and alpha ignored by mul and div.
      const Tensor s = Tensor::scalar(DType::float32, 0.7);
      Tensor out;
      REQUIRE(fast::binary(fast::BinaryOp::add, a, s, -0.5, out, isa));
      check_bitwise(out, ref::binary(ref::BinaryOp::add, a, s, DType::float32, DType::float32, -0.5),
                    label("add alpha -0.5", isa, a.sizes, {}));
      REQUIRE(fast::binary(fast::BinaryOp::mul, a, b, 3.0, out, isa));
      check_bitwise(out, ref::binary(ref::BinaryOp::mul, a, b, DType::float32, DType::float32),
                    label("mul alpha 3", isa, a.sizes, b.sizes));
    }
  }
}

TEST_CASE("elementwise: binary_scalar against the reference") {
  for (const Isa isa : cpu::available_isas()) {
    const std::uint64_t seed = 400;
    const Tensor contiguous = random_f32({3, 5, 33}, seed + 40, -100, 100);
    const Tensor permuted = ref::permute(contiguous, {2, 0, 1});
    const Tensor zero_dim = Tensor::scalar(DType::float32, -2.75);
    for (const Tensor* a : {&contiguous, &permuted, &zero_dim}) {
      for (const fast::BinaryOp op : kOps) {
        for (const ref::Scalar s : {ref::Scalar::of_double(0.1), ref::Scalar::of_double(-3.0),
                                    ref::Scalar::of_double(1e-40), ref::Scalar::of_int(7),
                                    ref::Scalar::of_int(16777217), ref::Scalar::of_bool(true)}) {
          for (const double alpha : {1.0, 0.5}) {
            Tensor out;
            const std::string what = label(op_name(op), isa, a->sizes, {}) + " scalar " +
                                     std::to_string(s.as_double()) + " alpha " + std::to_string(alpha);
            INFO(what);
            REQUIRE(fast::binary_scalar(op, *a, s.as_double(), alpha, out, isa));
            const Tensor expected =
                ref::binary_scalar(ref_op(op), *a, s, DType::float32, DType::float32, alpha);
            if (alpha == 1 || op == fast::BinaryOp::mul || op == fast::BinaryOp::div) {
              check_bitwise(out, expected, what);
            } else {
              check_within_ulp(out, expected, what);
            }
          }
        }
      }
    }
  }
}

TEST_CASE("elementwise: binary refuses what it does not handle") {
  const Tensor f32 = random_f32({3, 4}, 1);
  const Tensor f64 = ref::cast(f32, DType::float64);
  const Tensor i64 = ref::cast(f32, DType::int64);
  Tensor out;
  for (const fast::BinaryOp op : kOps) {
    CHECK_FALSE(fast::binary(op, f64, f64, 1.0, out));
    CHECK_FALSE(fast::binary(op, i64, i64, 1.0, out));
    CHECK_FALSE(fast::binary(op, f32, i64, 1.0, out));
    CHECK_FALSE(fast::binary(op, f32, f64, 1.0, out));  // float64 with dims: the result is float64
    CHECK_FALSE(fast::binary(op, f64, f32, 1.0, out));
    CHECK_FALSE(fast::binary(op, ref::cast(f32, DType::float16), f32, 1.0, out));
    CHECK_FALSE(fast::binary(op, f32, Tensor::scalar_int(DType::int64, 2), 1.0, out));
    // Both 0-dim: float32 with float64 gives float64.
    CHECK_FALSE(fast::binary(op, Tensor::scalar(DType::float32, 1), Tensor::scalar(DType::float64, 2), 1.0, out));
    CHECK_FALSE(fast::binary(op, f32, random_f32({3}, 2), 1.0, out));  // does not broadcast: the reference says so
    CHECK_FALSE(fast::binary(op, f32, Tensor{}, 1.0, out));
    CHECK_FALSE(fast::binary_scalar(op, f64, 2.0, 1.0, out));
    CHECK_FALSE(fast::binary_scalar(op, i64, 2.0, 1.0, out));
  }
  CHECK(out.buffer == nullptr);  // untouched
}

namespace {

double ulp_of(double v) {
  const double a = std::fabs(v);
  if (a < FLT_MIN) return 0x1p-149;
  int e = 0;
  std::frexp(static_cast<float>(a) == INFINITY ? FLT_MAX : a, &e);
  return std::ldexp(1.0, e - 24);
}

// The exact GELU in double, without the cancellation of 1 + erf in the negative tail.
double exact_gelu(double x, bool tanh_approx) {
  if (tanh_approx) {
    const double u = std::numbers::sqrt2 * std::numbers::inv_sqrtpi * (x + 0.044715 * x * x * x);
    return x / (1 + std::exp(-2 * u));
  }
  return 0.5 * x * std::erfc(-x * (std::numbers::sqrt2 / 2));
}

void check_gelu_values(Isa isa, const Tensor& x, const Tensor& reference, bool tanh_approx, const std::string& what) {
  Tensor out;
  REQUIRE(fast::gelu(x, tanh_approx, out, isa));
  REQUIRE(out.sizes == x.sizes);
  const float *in = x.data<const float>(), *g = out.data<const float>(), *r = reference.data<const float>();
  std::int64_t bad_ref = 0, bad_exact = 0, first_ref = -1, first_exact = -1;
  double worst = 0;
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    if (!std::isfinite(in[i])) continue;  // checked exactly below
    const double diff = std::fabs(static_cast<double>(g[i]) - r[i]);
    if (diff > 4 * ulp_of(r[i]) && diff > 1e-7 && bad_ref++ == 0) first_ref = i;
    const double exact = exact_gelu(in[i], tanh_approx);
    const double ulps = std::fabs(g[i] - exact) / ulp_of(exact);
    worst = std::max(worst, ulps);
    if (ulps > 1 && bad_exact++ == 0) first_exact = i;
  }
  const std::string where = what + " at " + cpu::isa_name(isa) + (tanh_approx ? " (tanh)" : " (erf)");
  INFO(where, "; worst ", worst, " ulp");
  INFO("first bad against the reference: x = ", first_ref >= 0 ? in[first_ref] : 0.0f, " got ",
       first_ref >= 0 ? g[first_ref] : 0.0f, " expected ", first_ref >= 0 ? r[first_ref] : 0.0f);
  INFO("first bad against the exact value: x = ", first_exact >= 0 ? in[first_exact] : 0.0f, " got ",
       first_exact >= 0 ? g[first_exact] : 0.0f, " expected ",
       first_exact >= 0 ? exact_gelu(in[first_exact], tanh_approx) : 0.0);
  CHECK(bad_ref == 0);
  CHECK(bad_exact == 0);
}

}  // namespace

TEST_CASE("elementwise: gelu on a dense grid, a stride through every float, and special values") {
  // Every 1e-5 over [-10, 10] (2,000,001 values), then every 65521st bit pattern.
  constexpr std::int64_t kGrid = 2000001;
  Tensor grid = Tensor::empty(DType::float32, {kGrid});
  for (std::int64_t i = 0; i < kGrid; ++i) grid.data<float>()[i] = static_cast<float>(-10 + 1e-5 * i);
  std::vector<float> strided;
  for (std::uint64_t bits = 12345; bits < (std::uint64_t{1} << 32); bits += 65521) {
    strided.push_back(std::bit_cast<float>(static_cast<std::uint32_t>(bits)));
  }
  const Tensor spread = from_values(strided);
  for (const bool tanh_approx : {false, true}) {
    const ref::UnaryOp op = tanh_approx ? ref::UnaryOp::gelu_tanh : ref::UnaryOp::gelu_erf;
    const Tensor grid_ref = ref::unary(op, grid, DType::float32);
    const Tensor spread_ref = ref::unary(op, spread, DType::float32);
    for (const Isa isa : cpu::available_isas()) {
      check_gelu_values(isa, grid, grid_ref, tanh_approx, "grid [-10, 10]");
      check_gelu_values(isa, spread, spread_ref, tanh_approx, "every 65521st float");
    }
  }
  // Special values, exactly: gelu(+-0) = +-0, gelu(inf) = inf, gelu(-inf) = gelu(NaN) = NaN,
  // x itself from about 5.9 (erf) up, -0 far below zero; then a tail of 17 finite values
  // (one more than a vector) through the vector loop and its remainder.
  const std::vector<float> values = {0.0f,      -0.0f,   INFINITY, -INFINITY, NAN,    FLT_MAX, -FLT_MAX, 1e30f,
                                     -1e30f,    20.0f,   -20.0f,   16.0f,     -16.0f, 15.0f,   -15.0f,   1e-45f,
                                     -1e-45f,   FLT_MIN, -FLT_MIN, 1e-20f,    -1e-20f};
  const Tensor special = from_values(values);
  for (const Isa isa : cpu::available_isas()) {
    for (const bool tanh_approx : {false, true}) {
      const std::string where = std::string(cpu::isa_name(isa)) + (tanh_approx ? " tanh" : " erf");
      INFO(where);
      Tensor out;
      REQUIRE(fast::gelu(special, tanh_approx, out, isa));
      const float* g = out.data<const float>();
      CHECK(same_bits(g[0], 0.0f));
      CHECK(same_bits(g[1], -0.0f));
      CHECK(g[2] == INFINITY);
      CHECK(std::isnan(g[3]));
      CHECK(std::isnan(g[4]));
      CHECK(g[5] == FLT_MAX);
      CHECK(same_bits(g[6], -0.0f));
      CHECK(g[7] == 1e30f);
      CHECK(same_bits(g[8], -0.0f));
      CHECK(g[9] == 20.0f);
      CHECK(same_bits(g[10], -0.0f));
      CHECK(g[11] == 16.0f);
      CHECK(g[13] == 15.0f);
      const Tensor reference =
          ref::unary(tanh_approx ? ref::UnaryOp::gelu_tanh : ref::UnaryOp::gelu_erf, special, DType::float32);
      for (std::size_t i = 12; i < values.size(); ++i) {
        INFO("x = ", values[i]);
        CHECK(std::fabs(g[i] - reference.data<const float>()[i]) <= 1e-7);
        const double exact = exact_gelu(values[i], tanh_approx);
        CHECK(std::fabs(g[i] - exact) <= ulp_of(exact));
      }
    }
  }
}

TEST_CASE("elementwise: gelu shapes and refusals") {
  for (const Isa isa : cpu::available_isas()) {
    const std::uint64_t seed = 500;
    for (const std::int64_t n : {1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 100}) {
      const Tensor x = random_f32({3, n}, seed + 41, -8, 8);
      for (const bool tanh_approx : {false, true}) {
        check_gelu_values(isa, x, ref::unary(tanh_approx ? ref::UnaryOp::gelu_tanh : ref::UnaryOp::gelu_erf, x,
                                             DType::float32),
                          tanh_approx, "random [3, " + std::to_string(n) + "]");
      }
    }
    Tensor out;
    REQUIRE(fast::gelu(Tensor::scalar(DType::float32, -1.5), false, out, isa));
    CHECK(out.dim() == 0);
    CHECK(std::fabs(out.data<const float>()[0] - exact_gelu(-1.5, false)) <= ulp_of(exact_gelu(-1.5, false)));
    REQUIRE(fast::gelu(Tensor::empty(DType::float32, {4, 0}), true, out, isa));
    CHECK(out.sizes == Sizes{4, 0});
  }
  Tensor out;
  CHECK_FALSE(fast::gelu(ref::cast(random_f32({3}, 1), DType::float64), false, out));
  CHECK_FALSE(fast::gelu(ref::transpose(random_f32({3, 4}, 1), 0, 1), false, out));
  CHECK_FALSE(fast::gelu(Tensor{}, false, out));
}

TEST_CASE("elementwise: embedding against the reference") {
  const Tensor weight = random_f32({50, 7}, 600);
  auto ids = [](Sizes sizes, std::uint64_t seed, DType dtype = DType::int64) {
    Tensor t = Tensor::empty(DType::int64, std::move(sizes));
    for (std::int64_t i = 0; i < t.numel(); ++i) {
      t.data<std::int64_t>()[i] = static_cast<std::int64_t>((seed * 7919 + static_cast<std::uint64_t>(i) * 31) % 50);
    }
    return dtype == DType::int64 ? t : ref::cast(t, dtype);
  };
  const Tensor positions = ids({4, 9}, 3);
  const std::vector<Tensor> cases = {
      ids({3, 5}, 1),
      ids({1}, 2),
      ref::transpose(ids({5, 3}, 4), 0, 1),
      ref::slice(positions, 1, 2, 8, 1),
      ref::slice(positions, 1, 0, 9, 4),
      ref::select(positions, 1, 5),
      Tensor::scalar_int(DType::int64, 49),
      ids({0}, 5),
      ids({2, 0, 3}, 5),
      ids({2, 3, 4}, 6, DType::int32),
      ref::expand(ids({1, 6}, 7), {3, 6}),
  };
  for (const Tensor& index : cases) {
    Tensor out;
    const std::string what = "embedding on " + kiln::kernels::shape_string(index.sizes);
    INFO(what);
    REQUIRE(fast::embedding(weight, index, out));
    check_bitwise(out, ref::embedding(weight, index), what);
  }
  // Zero-width rows.
  const Tensor empty_rows = Tensor::empty(DType::float32, {5, 0});
  const Tensor zeros = Tensor::empty(DType::int64, {2, 2});
  Tensor out;
  REQUIRE(fast::embedding(empty_rows, zeros, out));
  CHECK(out.sizes == Sizes{2, 2, 0});
}

TEST_CASE("elementwise: embedding refuses what it does not handle") {
  const Tensor weight = random_f32({10, 4}, 700);
  Tensor bad = Tensor::empty(DType::int64, {3});
  Tensor out;
  for (const std::int64_t id : {-1, 10, 1000000}) {
    bad.data<std::int64_t>()[1] = id;
    CHECK_FALSE(fast::embedding(weight, bad, out));
  }
  bad.data<std::int64_t>()[1] = 9;
  CHECK(fast::embedding(weight, bad, out));
  out = Tensor{};
  CHECK_FALSE(fast::embedding(ref::cast(weight, DType::float64), bad, out));
  CHECK_FALSE(fast::embedding(ref::transpose(weight, 0, 1), bad, out));
  CHECK_FALSE(fast::embedding(random_f32({10}, 1), bad, out));
  CHECK_FALSE(fast::embedding(weight, ref::cast(bad, DType::float32), out));
  CHECK_FALSE(fast::embedding(weight, ref::cast(bad, DType::bool_), out));
  CHECK(out.buffer == nullptr);
}

namespace {

// `run` with 1 and with 3 threads: the same bits.
void check_threads(const std::string& what, const std::function<Tensor()>& run) {
  Tensor one;
  {
    const cpu::ThreadScope scope(1);
    one = run();
  }
  const cpu::ThreadScope scope(3);
  const Tensor three = run();
  INFO(what);
  REQUIRE(three.sizes == one.sizes);
  CHECK(std::memcmp(three.data<const float>(), one.data<const float>(),
                    static_cast<std::size_t>(one.numel()) * sizeof(float)) == 0);
}

}  // namespace

TEST_CASE("elementwise: the same bits for 1 and 3 threads") {
  const std::uint64_t seed = 800;
  const Tensor hidden = random_f32({3, 150, 384}, seed + 42), residual = random_f32({3, 150, 384}, seed + 43);
  const Tensor scores = random_f32({2, 12, 67, 67}, seed + 44), mask = random_f32({2, 1, 1, 67}, seed + 45);
  const Tensor transposed = ref::transpose(random_f32({384, 450}, seed + 46), 0, 1);
  const Tensor scale = Tensor::scalar(DType::float64, 8.0);
  const Tensor wide = random_f32({3, 50, 1536}, seed + 47, -6, 6);
  for (const Isa isa : cpu::available_isas()) {
    for (const fast::BinaryOp op : kOps) {
      check_threads(label(op_name(op), isa, hidden.sizes, residual.sizes), [&] {
        Tensor out;
        REQUIRE(fast::binary(op, hidden, residual, 1.0, out, isa));
        return out;
      });
    }
    check_threads(label("add (mask)", isa, scores.sizes, mask.sizes), [&] {
      Tensor out;
      REQUIRE(fast::binary(fast::BinaryOp::add, scores, mask, 1.0, out, isa));
      return out;
    });
    check_threads(label("div (0-dim float64)", isa, scores.sizes, {}), [&] {
      Tensor out;
      REQUIRE(fast::binary(fast::BinaryOp::div, scores, scale, 1.0, out, isa));
      return out;
    });
    check_threads(label("sub alpha 0.5 (transposed)", isa, transposed.sizes, {}), [&] {
      Tensor out;
      REQUIRE(fast::binary(fast::BinaryOp::sub, transposed, ref::view(hidden, {450, 384}), 0.5, out, isa));
      return out;
    });
    check_threads(label("mul scalar", isa, hidden.sizes, {}), [&] {
      Tensor out;
      REQUIRE(fast::binary_scalar(fast::BinaryOp::mul, hidden, 0.125, 1.0, out, isa));
      return out;
    });
    for (const bool tanh_approx : {false, true}) {
      check_threads(label(tanh_approx ? "gelu_tanh" : "gelu", isa, wide.sizes, {}), [&] {
        Tensor out;
        REQUIRE(fast::gelu(wide, tanh_approx, out, isa));
        return out;
      });
    }
  }
  const Tensor table = random_f32({1000, 384}, seed + 48);
  Tensor index = Tensor::empty(DType::int64, {3, 150});
  for (std::int64_t i = 0; i < index.numel(); ++i) index.data<std::int64_t>()[i] = (i * 37) % 1000;
  check_threads("embedding", [&] {
    Tensor out;
    REQUIRE(fast::embedding(table, index, out));
    return out;
  });
}
