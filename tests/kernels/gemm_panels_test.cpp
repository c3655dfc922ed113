// The panel GEMM (kernels/cpu/gemm_panels.hpp) on weights laid out by hand in 64-column
// panels, so it is tested whether or not oneDNN is there: the scalar kernel against the
// reference within the float dot-product bound, the AVX-512 kernel bit for bit against the
// scalar one, every thread count bit for bit against one thread, and the GELU epilogue;
// then that oneDNN's packed copies are read by it at the row counts it serves.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "kernels/cpu/gemm_panels.hpp"
#include "kernels/cpu/isa.hpp"
#include "kernels/cpu/onednn_matmul.hpp"
#include "kernels/cpu/parallel.hpp"
#include "kernels/reference/reference.hpp"
#include "kernels/tensor.hpp"
#include "tests/kernels/kernel_checks.hpp"

namespace cpu = kiln::kernels::cpu;
namespace ref = kiln::kernels::ref;
using kiln::DType;
using kiln::kernels::Tensor;

using kiln::testing::abs_of;
using kiln::testing::random_f32;

namespace {

// w [n, k] as panels of [k padded to 16][64]; the padding is NaN, so a kernel that let a
// padded row or column into a stored element would show it.
std::vector<float> panels_of(const Tensor& w) {
  const std::int64_t n = w.sizes[0], k = w.sizes[1];
  const std::int64_t k_padded = (k + 15) / 16 * 16, panels = (n + 63) / 64;
  std::vector<float> out(static_cast<std::size_t>(panels * k_padded * 64), std::numeric_limits<float>::quiet_NaN());
  for (std::int64_t j = 0; j < n; ++j) {
    for (std::int64_t p = 0; p < k; ++p) {
      out[static_cast<std::size_t>((j / 64) * k_padded * 64 + p * 64 + j % 64)] = w.data<const float>()[j * k + p];
    }
  }
  return out;
}

struct Run {
  const Tensor& x;  // m rows of k, read with strides (lda, lda_k)
  std::int64_t m, lda, lda_k;
  const cpu::PanelWeight& w;
  const float* bias;
  std::int64_t bias_stride;
  kiln::kernels::Epilogue epilogue;
};

Tensor run(cpu::Isa isa, const Run& r, int threads) {
  const std::int64_t m = r.m;
  Tensor out = Tensor::empty(DType::float32, {m, r.w.n});
  cpu::ThreadScope scope(threads);
  cpu::panel_linear(isa, r.x.data<const float>(), r.lda, r.lda_k, m, r.w, r.bias, r.bias_stride, out.data<float>(),
                    r.w.n, r.epilogue);
  return out;
}

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  return a.sizes == b.sizes && std::memcmp(a.data<const float>(), b.data<const float>(), static_cast<std::size_t>(a.numel()) * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("panel GEMM: against the reference, AVX-512 against scalar, any thread count") {
  const bool avx512 = cpu::detected_isa() >= cpu::Isa::avx512;
  if (!avx512) MESSAGE("no AVX-512 here: the scalar kernel only");
  struct Shape {
    std::int64_t k, n;
  };
  // k: under one K block, a whole one, several with a short last; n: one partial panel,
  // whole panels, whole panels and a partial one.
  int checked = 0;
  for (const Shape s : {Shape{37, 100}, Shape{256, 64}, Shape{600, 130}}) {
    const Tensor w = random_f32({s.n, s.k}, static_cast<std::uint64_t>(s.k * 1000 + s.n), -0.5, 0.5);
    const std::vector<float> laid_out = panels_of(w);
    const cpu::PanelWeight pw{laid_out.data(), s.k, s.n, (s.k + 15) / 16 * 16 * 64};
    const Tensor bias = random_f32({s.n}, 5), one = random_f32({1}, 6), spaced = random_f32({2 * s.n}, 7);
    const Tensor spaced_dense = ref::contiguous(ref::slice(spaced, 0, 0, 2 * s.n, 2));
    for (const std::int64_t m : {1, 8, 15, 16, 17, 33, 48}) {
      const Tensor x = random_f32({m, s.k}, static_cast<std::uint64_t>(m));
      // The same values read through a transposed view: row stride 1, column stride m.
      const Tensor xt = ref::contiguous(ref::transpose(x, 0, 1));
      struct BiasCase {
        const char* name;
        const float* data;
        std::int64_t stride;
        Tensor dense;  // the bias as ref::linear takes it
      };
      const BiasCase biases[] = {
          {"no bias", nullptr, 0, Tensor{}},
          {"bias", bias.data<const float>(), 1, bias},
          {"one value broadcast", one.data<const float>(), 0, ref::contiguous(ref::expand(one, {s.n}))},
          {"every other value", spaced.data<const float>(), 2, spaced_dense},
      };
      for (const BiasCase& b : biases) {
        const std::string label = "m " + std::to_string(m) + " k " + std::to_string(s.k) + " n " +
                                  std::to_string(s.n) + ", " + b.name;
        INFO(label);
        const Tensor* dense_bias = b.data ? &b.dense : nullptr;
        const Tensor abs_b = b.data ? abs_of(b.dense) : Tensor{};
        const Tensor expected = ref::linear(x, w, dense_bias);
        const Tensor magnitude = ref::linear(abs_of(x), abs_of(w), b.data ? &abs_b : nullptr);
        const Run plain{x, m, s.k, 1, pw, b.data, b.stride, kiln::kernels::Epilogue::none};
        const Tensor scalar = run(cpu::Isa::scalar, plain, 1);
        kiln::testing::check_dot_bound(scalar, expected, magnitude, s.k, label);
        const Run strided{xt, m, 1, m, pw, b.data, b.stride, kiln::kernels::Epilogue::none};
        CHECK(bitwise_equal(run(cpu::Isa::scalar, strided, 1), scalar));
        if (!avx512) continue;
        const Tensor vector = run(cpu::Isa::avx512, plain, 1);
        CHECK(bitwise_equal(vector, scalar));
        CHECK(bitwise_equal(run(cpu::Isa::avx512, strided, 2), scalar));
        CHECK(bitwise_equal(run(cpu::Isa::avx512, plain, 3), scalar));
        ++checked;
      }
    }
  }
  if (avx512) CHECK(checked == 3 * 7 * 4);
}

TEST_CASE("panel GEMM: the GELU epilogue is GELU of the plain result") {
  const Tensor w = random_f32({130, 80}, 11, -0.5, 0.5), b = random_f32({130}, 12), x = random_f32({16, 80}, 13);
  const std::vector<float> laid_out = panels_of(w);
  const cpu::PanelWeight pw{laid_out.data(), 80, 130, 80 * 64};
  for (const cpu::Isa isa : cpu::available_isas()) {
    if (isa == cpu::Isa::avx2) continue;  // the microkernel is scalar or AVX-512
    INFO(cpu::isa_name(isa));
    const Tensor plain = run(isa, {x, 16, 80, 1, pw, b.data<const float>(), 1, kiln::kernels::Epilogue::none}, 1);
    const Tensor erf = run(isa, {x, 16, 80, 1, pw, b.data<const float>(), 1, kiln::kernels::Epilogue::gelu_erf}, 2);
    const Tensor tanh = run(isa, {x, 16, 80, 1, pw, b.data<const float>(), 1, kiln::kernels::Epilogue::gelu_tanh}, 2);
    kiln::testing::check_close(erf, ref::unary(ref::UnaryOp::gelu_erf, plain, DType::float32), 1e-6, 1e-5, "erf");
    kiln::testing::check_close(tanh, ref::unary(ref::UnaryOp::gelu_tanh, plain, DType::float32), 1e-6, 1e-5, "tanh");
  }
}

TEST_CASE("panel GEMM: oneDNN's packed weights are read by it at the row counts it serves") {
  const Tensor w = random_f32({200, 96}, 21), b = random_f32({200}, 22);
  const std::shared_ptr<const kiln::kernels::onednn::PackedWeight> packed = kiln::kernels::onednn::pack_weight(w, 16);
  if (!packed) {
    MESSAGE("nothing packed (no oneDNN, or it keeps the plain layout here): skipped");
    return;
  }
  const bool panels = cpu::active_isa() >= cpu::Isa::avx512;
  for (const std::int64_t m : {4, 8, 16, 48, 49, 128}) {
    const Tensor x = random_f32({m, 96}, static_cast<std::uint64_t>(30 + m));
    const auto info = kiln::kernels::onednn::describe_linear(x, w, &b);
    INFO("m " << m << ": " << info.implementation);
    CHECK(info.packed);
    const bool served = m >= cpu::kPanelRowsMin && m <= cpu::kPanelRowsMax;
    // oneDNN's AVX-512 layout is the panels one; elsewhere the panel GEMM is never used.
    CHECK((info.implementation == "kiln:panels") == (panels && served));
    Tensor out;
    REQUIRE(kiln::kernels::onednn::linear(x, w, &b, out));
    const Tensor abs_b = abs_of(b);
    kiln::testing::check_dot_bound(out, ref::linear(x, w, &b), ref::linear(abs_of(x), abs_of(w), &abs_b), 96,
                                   "packed linear");
  }
}
