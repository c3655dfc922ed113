// The GEMM epilogue (kernels/cpu/gemm_epilogue.hpp) on both GEMM paths, kiln's own at every
// instruction-set level and oneDNN's post-op, against the reference linear followed by the
// reference GELU, on odd sizes that hit every vector tail and register-tile edge.
//
// Tolerance: the float dot-product bound the linear tests use (kernel_checks.hpp), carried
// through GELU, whose slope is at most 1.13 in both forms, plus what the GELU tests allow
// for GELU itself (4 ulp of the reference, or 1e-7 absolute where the reference's own
// 1 + erf cancels in the negative tail).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/cpu/elementwise.hpp"
#include "kernels/cpu/fast.hpp"
#include "kernels/cpu/gemm_epilogue.hpp"
#include "kernels/cpu/isa.hpp"
#include "kernels/cpu/onednn_matmul.hpp"
#include "kernels/cpu/parallel.hpp"
#include "kernels/reference/reference.hpp"
#include "kernels/tensor.hpp"
#include "tests/kernels/kernel_checks.hpp"

namespace cpu = kiln::kernels::cpu;
namespace fast = kiln::kernels::fast;
namespace onednn = kiln::kernels::onednn;
namespace ref = kiln::kernels::ref;
using kiln::DType;
using kiln::kernels::Epilogue;
using kiln::kernels::Tensor;
using Sizes = std::vector<std::int64_t>;

using kiln::testing::abs_of;
using kiln::testing::random_f32;

namespace {

const Sizes kOddSizes = {1, 3, 17, 64, 129};

const char* name_of(Epilogue e) { return e == Epilogue::gelu_erf ? "gelu_erf" : "gelu_tanh"; }

// `got` against GELU of the reference linear, within the bound described at the top.
void check_against_reference(const Tensor& got, const Tensor& x, const Tensor& w, const Tensor* b, Epilogue e,
                             const std::string& label) {
  const Tensor linear = ref::linear(x, w, b);
  const Tensor abs_b = b ? abs_of(*b) : Tensor{};
  const Tensor magnitude = ref::linear(abs_of(x), abs_of(w), b ? &abs_b : nullptr);
  const ref::UnaryOp op = e == Epilogue::gelu_erf ? ref::UnaryOp::gelu_erf : ref::UnaryOp::gelu_tanh;
  const Tensor expected = ref::unary(op, linear, DType::float32);
  const double u = 0x1p-24, n = static_cast<double>(x.sizes.back());
  const double gamma = (n + 2) * u / (1 - (n + 2) * u);
  const float *s = magnitude.data<const float>(), *lin = linear.data<const float>();
  kiln::testing::check_elements(got, expected, label, [&](float g, float want, std::int64_t i) {
    const double dot_bound = gamma * s[i] + u * std::fabs(lin[i]);
    const double gelu_bound = std::max(4 * 0x1p-23 * std::fabs(static_cast<double>(want)), 1e-7);  // 4 ulp
    return std::fabs(static_cast<double>(g) - want) <= 1.13 * dot_bound + gelu_bound;
  });
}

std::string label_of(const std::string& path, Epilogue e, std::int64_t m, std::int64_t n, std::int64_t k, bool bias) {
  return path + " " + name_of(e) + " m " + std::to_string(m) + " n " + std::to_string(n) + " k " + std::to_string(k) +
         (bias ? " with bias" : "");
}

struct Problem {
  const Tensor &x, &w;
  const Tensor* b;  // null: no bias
  Epilogue epilogue;
  std::string label;
};

// Calls f(problem) on every odd problem: x [m, k], w [n, k] for every m, n and k of
// kOddSizes, in both GELU forms, with a bias b [n] and without.
template <class F>
void for_odd_problems(std::uint64_t seed, const std::string& path, F f) {
  for (const std::int64_t m : kOddSizes) {
    for (const std::int64_t n : kOddSizes) {
      for (const std::int64_t k : kOddSizes) {
        const Tensor x = random_f32({m, k}, ++seed), w = random_f32({n, k}, ++seed, -0.5, 0.5);
        const Tensor b = random_f32({n}, ++seed);
        for (const Epilogue e : {Epilogue::gelu_erf, Epilogue::gelu_tanh}) {
          for (const bool with_bias : {false, true})
            f(Problem{x, w, with_bias ? &b : nullptr, e, label_of(path, e, m, n, k, with_bias)});
        }
      }
    }
  }
}

bool bitwise_equal(const Tensor& x, const Tensor& y) {
  return x.sizes == y.sizes &&
         std::memcmp(x.data<const float>(), y.data<const float>(), static_cast<std::size_t>(x.numel()) * 4) == 0;
}

}  // namespace

TEST_CASE("gemm epilogue: kiln's GEMM with GELU matches linear then gelu at every level") {
  for (const cpu::Isa isa : cpu::available_isas()) {
    const std::string path = std::string("fast at ") + cpu::isa_name(isa);
    for_odd_problems(1, path, [&](const Problem& p) {
      INFO(p.label);
      Tensor out;
      REQUIRE(fast::linear(p.x, p.w, p.b, out, p.epilogue, isa));
      check_against_reference(out, p.x, p.w, p.b, p.epilogue, p.label);
    });
  }
}

TEST_CASE("gemm epilogue: kiln's GEMM applies it on every thread's block alike") {
  // Large enough to be split into row and column blocks; each block gets the epilogue once.
  const Tensor x = random_f32({2, 65, 384}, 1), w = random_f32({1000, 384}, 2, -0.2, 0.2), b = random_f32({1000}, 3);
  for (const cpu::Isa isa : cpu::available_isas()) {
    Tensor one, three, plain;
    {
      const cpu::ThreadScope threads(1);
      REQUIRE(fast::linear(x, w, &b, one, Epilogue::gelu_erf, isa));
      REQUIRE(fast::linear(x, w, &b, plain, Epilogue::none, isa));
    }
    {
      const cpu::ThreadScope threads(3);
      REQUIRE(fast::linear(x, w, &b, three, Epilogue::gelu_erf, isa));
    }
    INFO(cpu::isa_name(isa));
    CHECK(bitwise_equal(one, three));
    // The epilogue is kiln's GELU kernel on the plain result, bit for bit.
    Tensor gelu;
    REQUIRE(fast::gelu(plain, false, gelu, isa));
    CHECK(bitwise_equal(one, gelu));
    const std::string label = std::string("fast, 3 threads, at ") + cpu::isa_name(isa);
    check_against_reference(three, x, w, &b, Epilogue::gelu_erf, label);
  }
}

TEST_CASE("gemm epilogue: oneDNN's post-op matches linear then gelu") {
  if (!onednn::available()) {
    Tensor out;
    CHECK_FALSE(onednn::linear(random_f32({3, 5}, 1), random_f32({4, 5}, 2), nullptr, out, Epilogue::gelu_erf));
    MESSAGE("built without oneDNN: skipped");
    return;
  }
  for_odd_problems(1000, "oneDNN", [](const Problem& p) {
    INFO(p.label);
    Tensor out;
    REQUIRE(onednn::linear(p.x, p.w, p.b, out, p.epilogue));
    check_against_reference(out, p.x, p.w, p.b, p.epilogue, p.label);
  });
  // BERT's intermediate layer at a short sequence, x with leading dims: the fused op's case.
  const Tensor x = random_f32({2, 9, 768}, 7, -3, 3), w = random_f32({3072, 768}, 8, -0.05, 0.05);
  const Tensor b = random_f32({3072}, 9);
  Tensor out;
  REQUIRE(onednn::linear(x, w, &b, out, Epilogue::gelu_erf));
  CHECK(out.sizes == Sizes{2, 9, 3072});
  check_against_reference(out, x, w, &b, Epilogue::gelu_erf, "oneDNN, BERT-base intermediate");
}
