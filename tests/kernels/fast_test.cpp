// The fast CPU kernels (kernels/cpu/fast.hpp) against the reference kernels, at every
// instruction-set level this machine has, on odd sizes that hit every vector tail and
// register-tile edge, with random data from fixed seeds.
//
// Tolerances:
// - softmax, layer_norm, gelu: 1e-6 absolute or 2e-6 relative. They compute in double
//   (layer_norm, gelu, softmax's sum) or with a ~1 ulp float exp, so they sit well inside.
// - every kernel: bitwise the same output for 1, 2, 3 and 4 threads (they split independent
//   outputs only), on sizes big enough to be split.
// - linear: the classic rounding bound for a float dot product (Higham, Accuracy and
//   Stability of Numerical Algorithms, 3.1): any order of summation, with or without FMA,
//   gives |fast - exact| <= gamma_(k+1) * (sum_p |a_ip * b_jp| + |bias_j|), gamma_n =
//   n u / (1 - n u), u = 2^-24; the reference is exact then rounded once (u |ref| more).
//   Per element, it never fails a correct kernel, whatever the blocking, yet a lost or
//   doubled term (of typical size sum/k) exceeds it for every k tested.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "kernels/cpu/elementwise.hpp"
#include "kernels/cpu/fast.hpp"
#include "kernels/cpu/isa.hpp"
#include "kernels/cpu/parallel.hpp"
#include "kernels/reference/reference.hpp"
#include "kernels/tensor.hpp"
#include "tests/kernels/kernel_checks.hpp"
#include "kiln/error.hpp"

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

const Sizes kOddSizes = {1, 3, 7, 15, 16, 17, 31, 33, 64, 65, 127, 384, 1000};

std::string shape_label(const std::string& what, Isa isa, const Sizes& sizes) {
  return std::string(what).append(" at ").append(cpu::isa_name(isa)).append(" on ").append(
      kiln::kernels::shape_string(sizes));
}

using kiln::testing::check_close;

void check_softmax(Isa isa, const Tensor& x) {
  Tensor out;
  REQUIRE(fast::softmax_lastdim(x, out, isa));
  check_close(out, ref::softmax(x, -1, DType::float32), 1e-6, 2e-6, shape_label("softmax", isa, x.sizes));
}

void check_linear(Isa isa, const Tensor& x, const Tensor& w, const Tensor* b) {
  Tensor out;
  REQUIRE(fast::linear(x, w, b, out, isa));
  const Tensor abs_b = b ? abs_of(*b) : Tensor{};
  const std::string label = shape_label("linear", isa, {x.numel() / x.sizes.back(), w.sizes[0], w.sizes[1]}) +
                            (b ? " with bias" : "");
  kiln::testing::check_dot_bound(out, ref::linear(x, w, b), ref::linear(abs_of(x), abs_of(w), b ? &abs_b : nullptr),
                                 x.sizes.back(), label);
}

}  // namespace

TEST_CASE("fast: ISA detection and KILN_ISA") {
  const std::vector<Isa> isas = cpu::available_isas();
  REQUIRE(!isas.empty());
  CHECK(isas.front() == Isa::scalar);
  CHECK(isas.back() == cpu::detected_isa());
  CHECK(cpu::active_isa() <= cpu::detected_isa());
  MESSAGE(std::string("detected ").append(cpu::isa_name(cpu::detected_isa())).append(", active ").append(
      cpu::isa_name(cpu::active_isa())));

  CHECK(cpu::parse_isa_setting(nullptr, Isa::avx2) == Isa::avx2);
  CHECK(cpu::parse_isa_setting("", Isa::avx512) == Isa::avx512);
  CHECK(cpu::parse_isa_setting("scalar", Isa::avx512) == Isa::scalar);
  CHECK(cpu::parse_isa_setting("avx2", Isa::avx512) == Isa::avx2);
  CHECK(cpu::parse_isa_setting("avx512", Isa::avx512) == Isa::avx512);
  CHECK(cpu::parse_isa_setting("avx2", Isa::avx2) == Isa::avx2);

  const auto usage_error = [](const char* value, Isa detected, const std::string& expected_message) {
    try {
      cpu::parse_isa_setting(value, detected);
      FAIL("KILN_ISA=", value, " was accepted");
    } catch (const kiln::Error& e) {
      CHECK(e.kind() == kiln::ErrorKind::usage);
      CHECK(e.message() == expected_message);
    }
  };
  usage_error("sse4", Isa::avx512, "KILN_ISA=sse4: unknown instruction set; expected scalar, avx2 or avx512");
  usage_error("AVX2", Isa::avx512, "KILN_ISA=AVX2: unknown instruction set; expected scalar, avx2 or avx512");
  usage_error("avx2 ", Isa::avx512, "KILN_ISA=avx2 : unknown instruction set; expected scalar, avx2 or avx512");
  usage_error("avx512", Isa::avx2, "KILN_ISA=avx512: this CPU supports at most avx2");
  usage_error("avx2", Isa::scalar, "KILN_ISA=avx2: this CPU supports at most scalar");

  CHECK(std::string(cpu::isa_name(Isa::scalar)) == "scalar");
  CHECK(std::string(cpu::isa_name(Isa::avx2)) == "avx2");
  CHECK(std::string(cpu::isa_name(Isa::avx512)) == "avx512");
}

TEST_CASE("fast: linear against the reference on odd shapes") {
  // Every remainder of M modulo the 6- and 8-row tiles, of N modulo the 16- and 32-column ones.
  const Sizes ms = {1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 17, 33};
  const Sizes ns = {1, 7, 15, 16, 17, 31, 33, 65}, ks = {1, 3, 17, 64, 127};
  for (const Isa isa : cpu::available_isas()) {
    std::uint64_t seed = 1;
    for (const std::int64_t m : ms) {
      for (const std::int64_t n : ns) {
        for (const std::int64_t k : ks) {
          const Tensor x = random_f32({m, k}, ++seed), w = random_f32({n, k}, ++seed), b = random_f32({n}, ++seed);
          check_linear(isa, x, w, seed % 2 ? &b : nullptr);
        }
      }
    }
  }
}

TEST_CASE("fast: linear on BERT-like and large-K shapes") {
  struct Shape {
    Sizes x;
    std::int64_t n;
  };
  // K past the 256-wide K blocks; M and N off the 6/8-row and 16/32-column tiles; leading dims.
  const std::vector<Shape> shapes = {
      {{127, 1000}, 384}, {{65, 384}, 1000}, {{2, 7, 384}, 33}, {{1, 1000}, 1}, {{16, 384}, 1536}, {{384, 3}, 65},
  };
  for (const Isa isa : cpu::available_isas()) {
    std::uint64_t seed = 100;
    for (const Shape& s : shapes) {
      const Tensor x = random_f32(s.x, ++seed, -3, 5), w = random_f32({s.n, s.x.back()}, ++seed, -0.1, 0.1);
      const Tensor b = random_f32({s.n}, ++seed);
      check_linear(isa, x, w, &b);
    }
  }
}

TEST_CASE("fast: linear refuses what it does not handle") {
  const Tensor x = random_f32({4, 8}, 1), w = random_f32({5, 8}, 2), b = random_f32({5}, 3);
  Tensor out;
  const Tensor x64 = ref::cast(x, DType::float64), w64 = ref::cast(w, DType::float64);
  CHECK_FALSE(fast::linear(x64, w64, nullptr, out));
  const Tensor transposed = ref::transpose(random_f32({8, 4}, 4), 0, 1);
  CHECK_FALSE(fast::linear(transposed, w, nullptr, out));  // not contiguous
  CHECK_FALSE(fast::linear(x, random_f32({5, 7}, 5), nullptr, out));                       // k mismatch
  const Tensor wrong_bias = random_f32({4}, 6), bias_2d = random_f32({1, 5}, 7);
  CHECK_FALSE(fast::linear(x, w, &wrong_bias, out));
  CHECK_FALSE(fast::linear(x, w, &bias_2d, out));
  CHECK_FALSE(fast::linear(Tensor::empty(DType::float32, {0, 8}), w, nullptr, out));
  CHECK_FALSE(fast::linear(x, random_f32({8}, 8), nullptr, out));  // 1-D weight
  CHECK(out.buffer == nullptr);  // untouched
  CHECK(fast::linear(x, w, &b, out));
  CHECK(out.sizes == Sizes{4, 5});
}

TEST_CASE("fast: softmax against the reference on odd sizes") {
  for (const Isa isa : cpu::available_isas()) {
    std::uint64_t seed = 1000;
    for (const std::int64_t n : kOddSizes) {
      for (const std::int64_t rows : {1, 3, 7}) check_softmax(isa, random_f32({rows, n}, ++seed, -10, 10));
      check_softmax(isa, random_f32({2, 3, n}, ++seed, -80, 80));  // many exps underflow
      check_softmax(isa, random_f32({n}, ++seed, 1000, 1001));     // only the shift keeps exp finite
    }
  }
}

TEST_CASE("fast: softmax of rows with infinities and NaN") {
  const float inf = INFINITY, nan = NAN;
  for (const Isa isa : cpu::available_isas()) {
    for (const std::int64_t n : {1, 5, 16, 17, 40}) {
      // Row 0: some -inf; row 1: all -inf (NaN); row 2: a NaN; row 3: a +inf (NaN).
      Tensor x = random_f32({4, n}, static_cast<std::uint64_t>(n));
      float* p = x.data<float>();
      for (std::int64_t i = 0; i < n; i += 2) p[i] = -inf;
      for (std::int64_t i = 0; i < n; ++i) p[n + i] = -inf;
      p[2 * n + n / 2] = nan;
      p[3 * n + n - 1] = inf;
      check_softmax(isa, x);
    }
  }
}

TEST_CASE("fast: layer_norm against the reference on odd sizes") {
  for (const Isa isa : cpu::available_isas()) {
    std::uint64_t seed = 2000;
    for (const std::int64_t n : kOddSizes) {
      const Tensor w = random_f32({n}, ++seed, 0.5, 1.5), b = random_f32({n}, ++seed);
      for (const int affine : {0, 1, 2, 3}) {
        const Tensor* wp = affine & 1 ? &w : nullptr;
        const Tensor* bp = affine & 2 ? &b : nullptr;
        // An offset far from zero tests the mean/variance arithmetic, not just the vector code.
        for (const double offset : {0.0, 300.0}) {
          const Tensor x = random_f32({5, n}, ++seed, offset - 3, offset + 3);
          for (const double eps : {1e-5, 1e-12}) {
            Tensor out;
            REQUIRE(fast::layer_norm(x, n, wp, bp, eps, out, isa));
            const Tensor expected = ref::layer_norm(x, {n}, wp, bp, eps);
            check_close(out, expected, 1e-6, 2e-6, shape_label("layer_norm", isa, x.sizes));
          }
        }
      }
    }
  }
}

TEST_CASE("fast: layer_norm over several trailing dims, and what it refuses") {
  const Tensor x = random_f32({4, 3, 5}, 1), w = random_f32({3, 5}, 2), b = random_f32({3, 5}, 3);
  for (const Isa isa : cpu::available_isas()) {
    Tensor out;
    REQUIRE(fast::layer_norm(x, 15, &w, &b, 1e-5, out, isa));
    check_close(out, ref::layer_norm(x, {3, 5}, &w, &b, 1e-5), 1e-6, 2e-6, shape_label("layer_norm", isa, x.sizes));
  }
  Tensor out;
  CHECK_FALSE(fast::layer_norm(x, 4, nullptr, nullptr, 1e-5, out));  // not a product of trailing dims
  CHECK_FALSE(fast::layer_norm(x, 0, nullptr, nullptr, 1e-5, out));
  CHECK(fast::layer_norm(x, 15, &b, &w, 1e-5, out));  // [3, 5] weight and bias are fine
  const Tensor short_w = random_f32({5}, 4);
  CHECK_FALSE(fast::layer_norm(x, 15, &short_w, nullptr, 1e-5, out));
  CHECK_FALSE(fast::layer_norm(ref::cast(x, DType::float64), 5, nullptr, nullptr, 1e-5, out));
  CHECK_FALSE(fast::layer_norm(ref::transpose(x, 0, 2), 4, nullptr, nullptr, 1e-5, out));
}

TEST_CASE("fast: gelu against the reference") {
  for (const Isa isa : cpu::available_isas()) {
    std::uint64_t seed = 3000;
    for (const std::int64_t n : kOddSizes) {
      const Tensor x = random_f32({3, n}, ++seed, -8, 8);
      for (const bool tanh_approx : {false, true}) {
        Tensor out;
        REQUIRE(fast::gelu(x, tanh_approx, out, isa));
        const Tensor expected = ref::unary(tanh_approx ? ref::UnaryOp::gelu_tanh : ref::UnaryOp::gelu_erf, x,
                                           DType::float32);
        check_close(out, expected, 1e-6, 2e-6, shape_label(tanh_approx ? "gelu_tanh" : "gelu_erf", isa, x.sizes));
      }
    }
  }
  Tensor out;
  CHECK_FALSE(fast::gelu(ref::cast(random_f32({3}, 1), DType::float64), false, out));
}

TEST_CASE("fast: softmax refuses what it does not handle") {
  Tensor out;
  CHECK_FALSE(fast::softmax_lastdim(ref::cast(random_f32({3, 4}, 1), DType::float64), out));
  CHECK_FALSE(fast::softmax_lastdim(ref::transpose(random_f32({3, 4}, 1), 0, 1), out));
  CHECK_FALSE(fast::softmax_lastdim(Tensor::empty(DType::float32, {3, 0}), out));
  CHECK_FALSE(fast::softmax_lastdim(Tensor::scalar(DType::float32, 1.0), out));
}

namespace {

// `run` (one fast kernel call) under ThreadScope(1) to (4): every result bitwise equal to the
// single-thread one.
void check_thread_counts(const std::string& label, const std::function<Tensor()>& run) {
  Tensor one;
  {
    const cpu::ThreadScope scope(1);
    one = run();
  }
  for (const int threads : {2, 3, 4}) {
    const cpu::ThreadScope scope(threads);
    const Tensor got = run();
    INFO(label, " with ", threads, " threads");
    REQUIRE(got.sizes == one.sizes);
    CHECK(std::memcmp(got.data<const float>(), one.data<const float>(),
                      static_cast<std::size_t>(one.numel()) * sizeof(float)) == 0);
  }
}

}  // namespace

TEST_CASE("fast: every kernel gives the same bits for 1 to 4 threads") {
  // Shapes big enough to split; M, N, K off the tiles. Linear cuts C into row groups x column
  // groups: columns only (many column panels), rows only (one panel at AVX-512), both.
  struct LinearShape {
    Sizes x;
    std::int64_t n;
  };
  const std::vector<LinearShape> linear_shapes = {
      {{131, 67}, 97},   {{5, 259}, 1001},    {{3, 130}, 2053}, {{67, 129}, 193},
      {{301, 259}, 29},  {{517, 130}, 45},    {{3, 11, 300}, 181}, {{1, 513}, 1535},
  };
  const std::vector<Sizes> row_shapes = {{37, 1031}, {3, 5, 4099}, {1001, 33}, {2, 20000}};
  for (const Isa isa : cpu::available_isas()) {
    std::uint64_t seed = 5000;
    for (const LinearShape& s : linear_shapes) {
      const Tensor x = random_f32(s.x, ++seed), w = random_f32({s.n, s.x.back()}, ++seed, -0.5, 0.5);
      const Tensor b = random_f32({s.n}, ++seed);
      for (const bool with_bias : {false, true}) {
        check_thread_counts(shape_label("linear", isa, {x.numel() / x.sizes.back(), s.n, x.sizes.back()}), [&] {
          Tensor out;
          REQUIRE(fast::linear(x, w, with_bias ? &b : nullptr, out, isa));
          return out;
        });
      }
    }
    for (const Sizes& sizes : row_shapes) {
      const std::int64_t n = sizes.back();
      const Tensor x = random_f32(sizes, ++seed, -6, 6);
      const Tensor w = random_f32({n}, ++seed, 0.5, 1.5), b = random_f32({n}, ++seed);
      check_thread_counts(shape_label("softmax", isa, sizes), [&] {
        Tensor out;
        REQUIRE(fast::softmax_lastdim(x, out, isa));
        return out;
      });
      check_thread_counts(shape_label("layer_norm", isa, sizes), [&] {
        Tensor out;
        REQUIRE(fast::layer_norm(x, n, &w, &b, 1e-5, out, isa));
        return out;
      });
      for (const bool tanh_approx : {false, true}) {
        check_thread_counts(shape_label(tanh_approx ? "gelu_tanh" : "gelu_erf", isa, sizes), [&] {
          Tensor out;
          REQUIRE(fast::gelu(x, tanh_approx, out, isa));
          return out;
        });
      }
    }
    // Multi-threaded results are also right, not only self-consistent.
    const cpu::ThreadScope scope(3);
    const Tensor x = random_f32({67, 129}, ++seed), w = random_f32({193, 129}, ++seed), b = random_f32({193}, ++seed);
    check_linear(isa, x, w, &b);
    const Tensor xs = random_f32({5, 259}, ++seed), ws = random_f32({1001, 259}, ++seed);
    check_linear(isa, xs, ws, nullptr);
    check_softmax(isa, random_f32({37, 1031}, ++seed, -10, 10));
  }
}
