// kernels/cpu/fused.hpp's attention against the chain it replaces, computed in float64 by
// the reference kernels, at every instruction-set level: heads as strided views of one
// projection (as BERT's permute makes them), query counts across the kernel's 64-row
// blocks, key counts off the GEMM tiles, head sizes off the vector width, every mask
// broadcast BERT-family models use, both scalings, and fully masked rows. Also: the same
// bits for 1 to 4 threads, and the BERT layout of the result (heads merged in memory).
//
// Tolerance: float32 products over at most 130 terms, a softmax and a second product:
// 2e-5 absolute on values of order 1 (a lost or doubled term is ~1e-1).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "kernels/cpu/fused.hpp"
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
using Scaling = fast::AttentionScaling;

using kiln::testing::check_close;
using kiln::testing::random_f32;

namespace {

Tensor expected_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor* mask, Scaling scaling,
                          bool safe) {
  using ref::BinaryOp;
  using ref::Scalar;
  const DType f64 = DType::float64;
  Tensor scores = ref::matmul(ref::cast(q, f64), ref::transpose(ref::cast(k, f64), -2, -1));
  if (scaling.mode == Scaling::Mode::divide) {
    scores = ref::binary_scalar(BinaryOp::div, scores, Scalar::of_double(scaling.value), f64, f64);
  } else if (scaling.mode == Scaling::Mode::multiply) {
    scores = ref::binary_scalar(BinaryOp::mul, scores, Scalar::of_double(scaling.value), f64, f64);
  }
  if (mask) scores = ref::binary(BinaryOp::add, scores, *mask, f64, f64);
  Tensor probs = ref::softmax(scores, -1, f64);
  if (safe) {  // scaled_dot_product_attention's rows that are all -inf give zeros
    const std::int64_t lk = scores.sizes.back();
    for (std::int64_t r = 0; r < scores.numel() / lk; ++r) {
      bool all = true;
      for (std::int64_t j = 0; j < lk && all; ++j) all = std::isinf(scores.data<double>()[r * lk + j]);
      if (all) std::fill_n(probs.data<double>() + r * lk, lk, 0.0);
    }
  }
  return ref::cast(ref::matmul(probs, ref::cast(v, f64)), DType::float32);
}

// [batch, seq, heads * d] projections viewed as [batch, heads, seq, d], as BERT splits heads.
Tensor heads_of(const Tensor& projection, std::int64_t heads) {
  const std::int64_t b = projection.sizes[0], s = projection.sizes[1], d = projection.sizes[2] / heads;
  return ref::permute(ref::view(projection, {b, s, heads, d}), {0, 2, 1, 3});
}

struct Case {
  std::int64_t batch, heads, lq, lk, depth, dv;
};

}  // namespace

TEST_CASE("fast attention: against the composed chain on strided heads, masks and scalings") {
  const std::vector<Case> cases = {
      {1, 12, 16, 16, 64, 64}, {2, 3, 7, 7, 8, 8},     {1, 2, 65, 65, 64, 64}, {2, 2, 130, 33, 17, 5},
      {1, 1, 1, 1, 1, 1},      {3, 4, 5, 100, 32, 48}, {1, 2, 200, 7, 16, 40},
  };
  const double inf = std::numeric_limits<double>::infinity();
  std::uint64_t seed = 9100;
  for (const Isa isa : cpu::available_isas()) {
    for (const Case& c : cases) {
      const Tensor q = heads_of(random_f32({c.batch, c.lq, c.heads * c.depth}, ++seed), c.heads);
      const Tensor k = heads_of(random_f32({c.batch, c.lk, c.heads * c.depth}, ++seed), c.heads);
      const Tensor v = heads_of(random_f32({c.batch, c.lk, c.heads * c.dv}, ++seed), c.heads);
      // BERT's extended mask [batch, 1, 1, lk] with -inf-like entries, a per-query mask
      // [batch, 1, lq, lk], a 1-D key mask, and none.
      Tensor padding = random_f32({c.batch, 1, 1, c.lk}, ++seed);
      for (std::int64_t j = c.lk / 2; j < c.lk; j += 3) padding.data<float>()[j] = -3.4028234663852886e38f;
      const Tensor per_query = random_f32({c.batch, 1, c.lq, c.lk}, ++seed);
      const Tensor keys = random_f32({c.lk}, ++seed);
      const std::vector<const Tensor*> masks = {nullptr, &padding, &per_query, &keys};
      const std::vector<Scaling> scalings = {{Scaling::Mode::divide, 8.0}, {Scaling::Mode::multiply, 0.125},
                                             {Scaling::Mode::none, 1.0}};
      for (const Tensor* mask : masks) {
        for (const Scaling& scaling : scalings) {
          const std::string label = std::string("attention at ") + cpu::isa_name(isa) + " on " +
                                    kiln::kernels::shape_string(q.sizes) + " x " + std::to_string(c.lk) + " keys" +
                                    (mask ? " mask " + kiln::kernels::shape_string(mask->sizes) : "");
          Tensor out;
          REQUIRE(fast::attention(q, k, v, mask, scaling, false, out, isa));
          REQUIRE(out.sizes == Sizes{c.batch, c.heads, c.lq, c.dv});
          check_close(ref::contiguous(out), expected_attention(q, k, v, mask, scaling, false), 2e-5, 0, label);
        }
      }
      // Rows masked entirely: NaN from softmax, zeros under safe_softmax.
      Tensor masked = ref::full({c.batch, 1, c.lq, c.lk}, ref::Scalar::of_double(0), DType::float32);
      for (std::int64_t j = 0; j < c.lk; ++j) masked.data<float>()[j] = static_cast<float>(-inf);
      Tensor out;
      REQUIRE(fast::attention(q, k, v, &masked, {}, true, out, isa));
      check_close(ref::contiguous(out), expected_attention(q, k, v, &masked, {}, true), 2e-5, 0, "safe softmax");
      REQUIRE(fast::attention(q, k, v, &masked, {}, false, out, isa));
      const Tensor first = ref::contiguous(out);
      CHECK(std::isnan(first.data<float>()[0]));
    }
  }
}

TEST_CASE("fast attention: rank 3, contiguous operands") {
  for (const Isa isa : cpu::available_isas()) {
    const Tensor q = random_f32({3, 70, 24}, 9301), k = random_f32({3, 45, 24}, 9302), v = random_f32({3, 45, 9}, 9303);
    const Tensor mask = random_f32({70, 45}, 9304);
    Tensor out;
    REQUIRE(fast::attention(q, k, v, &mask, {Scaling::Mode::multiply, 0.2}, false, out, isa));
    REQUIRE(out.sizes == Sizes{3, 70, 9});
    CHECK(out.is_contiguous());
    check_close(ref::contiguous(out), expected_attention(q, k, v, &mask, {Scaling::Mode::multiply, 0.2}, false), 2e-5, 0,
                std::string("rank 3 at ") + cpu::isa_name(isa));
  }
}

TEST_CASE("fast attention: heads merged in memory, the same bits for 1 to 4 threads") {
  const Tensor q = heads_of(random_f32({2, 150, 96}, 9401), 3), k = heads_of(random_f32({2, 150, 96}, 9402), 3);
  const Tensor v = heads_of(random_f32({2, 150, 96}, 9403), 3);
  const Tensor mask = random_f32({2, 1, 1, 150}, 9404);
  for (const Isa isa : cpu::available_isas()) {
    Tensor one;
    {
      const cpu::ThreadScope scope(1);
      REQUIRE(fast::attention(q, k, v, &mask, {Scaling::Mode::divide, 5.6}, false, one, isa));
    }
    if (isa != Isa::scalar) {
      // [batch, heads, seq, d] stored as [batch, seq, heads, d]: the permute back is contiguous.
      CHECK(one.strides == Sizes{150 * 96, 32, 96, 1});
      CHECK(ref::permute(one, {0, 2, 1, 3}).is_contiguous());
    }
    for (const int threads : {2, 3, 4}) {
      const cpu::ThreadScope scope(threads);
      Tensor got;
      REQUIRE(fast::attention(q, k, v, &mask, {Scaling::Mode::divide, 5.6}, false, got, isa));
      INFO(cpu::isa_name(isa), " with ", threads, " threads");
      REQUIRE(got.strides == one.strides);
      CHECK(std::memcmp(got.data<const float>(), one.data<const float>(), one.buffer->size) == 0);
    }
  }
}
