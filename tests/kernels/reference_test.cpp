// Unit tests of the runtime tensor (kernels/tensor.hpp) and the reference kernels
// (kernels/reference/reference.hpp): small cases worked out by hand or by an obviously
// right loop in the test, PyTorch's exact error messages, broadcasting, negative dims,
// non-contiguous inputs (transposed, sliced, expanded), int64 exactness, float16/bfloat16
// conversions and size-0 dims. Golden comparisons against PyTorch itself live with the
// fixtures; the cast and edge-case tables here were taken from PyTorch 2.15 on x86-64.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "kernels/reference/reference.hpp"
#include "kernels/tensor.hpp"
#include "kiln/error.hpp"

namespace ref = kiln::kernels::ref;
using kiln::DType;
using kiln::kernels::Tensor;
using ref::BinaryOp;
using ref::Scalar;
using ref::UnaryOp;
using Sizes = std::vector<std::int64_t>;

namespace {

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr std::int64_t kInt64Min = std::numeric_limits<std::int64_t>::min();

Tensor make(DType dtype, Sizes sizes, const std::vector<double>& values) {
  Tensor t = Tensor::empty(dtype, std::move(sizes));
  REQUIRE(static_cast<std::int64_t>(values.size()) == t.numel());
  for (std::size_t i = 0; i < values.size(); ++i) {
    kiln::kernels::store_double(t, static_cast<std::int64_t>(i), values[i]);
  }
  return t;
}

Tensor make_f32(Sizes sizes, const std::vector<double>& values) {
  return make(DType::float32, std::move(sizes), values);
}

Tensor make_int(DType dtype, Sizes sizes, const std::vector<std::int64_t>& values) {
  Tensor t = Tensor::empty(dtype, std::move(sizes));
  REQUIRE(static_cast<std::int64_t>(values.size()) == t.numel());
  for (std::size_t i = 0; i < values.size(); ++i) kiln::kernels::store_int(t, static_cast<std::int64_t>(i), values[i]);
  return t;
}

// Deterministic values in [-2, 2), not too round.
Tensor random_f32(Sizes sizes, std::uint64_t seed) {
  Tensor t = Tensor::empty(DType::float32, std::move(sizes));
  std::uint64_t s = seed * 6364136223846793005ULL + 1442695040888963407ULL;
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    kiln::kernels::store_double(t, i, static_cast<double>(s >> 11) / 0x1p53 * 4 - 2);
  }
  return t;
}

std::vector<double> values(const Tensor& t) {
  std::vector<double> v;
  for (std::int64_t i = 0; i < t.numel(); ++i) v.push_back(kiln::kernels::load_double(t, i));
  return v;
}

std::vector<std::int64_t> ints(const Tensor& t) {
  std::vector<std::int64_t> v;
  for (std::int64_t i = 0; i < t.numel(); ++i) v.push_back(kiln::kernels::load_int(t, i));
  return v;
}

bool same(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

// Equal values, NaN equal to NaN, +0 equal to -0 (use std::signbit where it matters).
void check_values(const Tensor& t, const std::vector<double>& expected) {
  const std::vector<double> got = values(t);
  REQUIRE(got.size() == expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("element ", i, ": got ", got[i], ", expected ", expected[i]);
    CHECK(same(got[i], expected[i]));
  }
}

bool close(double a, double b, double rel) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return std::fabs(a - b) <= rel * std::max({std::fabs(a), std::fabs(b), 1e-30}) || std::fabs(a - b) <= 1e-12;
}

void check_close(const Tensor& t, const std::vector<double>& expected, double rel) {
  const std::vector<double> got = values(t);
  REQUIRE(got.size() == expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("element ", i, ": got ", got[i], ", expected ", expected[i]);
    CHECK(close(got[i], expected[i], rel));
  }
}

// The message of the kiln::Error `f` throws, checking it is bad input; "" if none.
std::string error_of(const std::function<void()>& f, kiln::ErrorKind kind = kiln::ErrorKind::bad_input) {
  try {
    f();
  } catch (const kiln::Error& e) {
    CHECK(e.kind() == kind);
    return e.message();
  }
  return "";
}

// A view sharing `t`'s buffer with the given geometry: for building odd strides by hand.
Tensor restride(const Tensor& t, Sizes sizes, Sizes strides, std::int64_t offset) {
  Tensor v = t;
  v.sizes = std::move(sizes);
  v.strides = std::move(strides);
  v.offset = offset;
  return v;
}

std::uint16_t half_bits(const Tensor& t, std::int64_t i) {
  std::uint16_t bits;
  std::memcpy(&bits, t.bytes() + 2 * i, 2);
  return bits;
}

}  // namespace

TEST_CASE("reference: Tensor::empty zeroes, aligns and refuses impossible sizes") {
  const Tensor t = Tensor::empty(DType::float32, {2, 3, 4});
  CHECK(t.strides == Sizes{12, 4, 1});
  CHECK(t.numel() == 24);
  CHECK(t.is_contiguous());
  CHECK(reinterpret_cast<std::uintptr_t>(t.bytes()) % 64 == 0);
  CHECK(t.buffer->writable);
  check_values(t, std::vector<double>(24, 0.0));

  const Tensor none = Tensor::empty(DType::int64, {0, 5});
  CHECK(none.numel() == 0);
  CHECK(none.buffer->data != nullptr);
  CHECK(none.is_contiguous());
  CHECK(kiln::kernels::contiguous_strides({2, 0, 3}) == Sizes{3, 3, 1});

  CHECK(error_of([] { Tensor::empty(DType::float32, {2, -3, 4}); }) ==
        "Trying to create tensor with negative dimension -3: [2, -3, 4]");
  CHECK(error_of([] { Tensor::empty(DType::float32, {1LL << 40, 1LL << 40}); }) ==
        "cannot allocate a float32 tensor of shape [1099511627776, 1099511627776]: more than 2^40 bytes");
  CHECK(error_of([] { Tensor::empty(DType::float64, {1LL << 38}); }) ==
        "cannot allocate a float64 tensor of shape [274877906944]: more than 2^40 bytes");
  CHECK(error_of([] { kiln::kernels::Buffer::allocate((std::size_t{1} << 40) + 1); }) ==
        "cannot allocate 1099511627777 bytes: more than 2^40");

  CHECK(values(Tensor::scalar(DType::float32, 0.1)) == std::vector<double>{static_cast<float>(0.1)});
  CHECK(ints(Tensor::scalar_int(DType::int64, (1LL << 60) + 1)) == std::vector<std::int64_t>{(1LL << 60) + 1});
  CHECK(Tensor::scalar(DType::int32, 2.9).dim() == 0);
  CHECK(ints(Tensor::scalar(DType::int32, -2.9)) == std::vector<std::int64_t>{-2});

  // PyTorch's contiguity: size-1 dims may have any stride.
  const Tensor odd = restride(t, {2, 1, 12}, {12, 99, 1}, 0);
  CHECK(odd.is_contiguous());
  CHECK_FALSE(ref::transpose(t, 0, 1).is_contiguous());
}

TEST_CASE("reference: borrowed buffers are read in place and never written") {
  static const float data[] = {1, 2, 3, 4, 5, 6};
  auto buffer = kiln::kernels::Buffer::borrow(reinterpret_cast<const std::byte*>(data), sizeof data, nullptr);
  Tensor w;
  w.dtype = DType::float32;
  w.sizes = {2, 3};
  w.strides = {3, 1};
  w.buffer = buffer;
  CHECK(values(w) == std::vector<double>{1, 2, 3, 4, 5, 6});
  CHECK(error_of([&] { kiln::kernels::store_double(w, 0, 1); }, kiln::ErrorKind::internal) ==
        "a kernel wrote into a read-only tensor");
  const Tensor y = ref::linear(make_f32({1, 3}, {1, 1, 1}), w, nullptr);
  check_values(y, {6, 15});
  CHECK(ref::transpose(w, 0, 1).buffer->data == buffer->data);
}

TEST_CASE("reference: float16 and bfloat16 convert exactly and round to nearest even") {
  using kiln::kernels::bfloat16_to_float;
  using kiln::kernels::float_to_bfloat16;
  using kiln::kernels::float_to_half;
  using kiln::kernels::half_to_float;

  CHECK(float_to_half(1.0f) == 0x3C00);
  CHECK(float_to_half(-2.0f) == 0xC000);
  CHECK(float_to_half(-0.0f) == 0x8000);
  CHECK(float_to_half(65504.0f) == 0x7BFF);
  CHECK(float_to_half(65519.99f) == 0x7BFF);
  CHECK(float_to_half(65520.0f) == 0x7C00);  // rounds up to infinity
  CHECK(float_to_half(1e10f) == 0x7C00);
  CHECK(float_to_half(-INFINITY) == 0xFC00);
  CHECK(float_to_half(NAN) == 0x7E00);
  CHECK(float_to_half(-NAN) == 0xFE00);
  CHECK(float_to_half(0x1p-14f) == 0x0400);              // smallest normal
  CHECK(float_to_half(0x1p-24f) == 0x0001);              // smallest subnormal
  CHECK(float_to_half(0x1p-25f) == 0x0000);              // tie: to even (0)
  CHECK(float_to_half(0x1.0002p-25f) == 0x0001);         // just above the tie
  CHECK(float_to_half(0x1.8p-24f) == 0x0002);            // 1.5 units: tie to even (2)
  CHECK(float_to_half(0x1.4p-23f) == 0x0002);            // 2.5 units: tie to even (2)
  CHECK(float_to_half(0x1.ff8p-15f) == 0x03FF);          // largest subnormal
  CHECK(float_to_half(0x1.ffap-15f) == 0x03FF);          // 1023.25 units
  CHECK(float_to_half(0x1.ffcp-15f) == 0x0400);          // 1023.5 units: tie to even, a normal
  CHECK(float_to_half(1.0f + 0x1p-11f) == 0x3C00);       // tie between 1 and 1+2^-10: even
  CHECK(float_to_half(1.0f + 0x1.8p-10f) == 0x3C02);     // tie: up to even
  CHECK(float_to_half(1.0f + 0x1.02p-11f) == 0x3C01);    // above the tie
  CHECK(half_to_float(0x0001) == 0x1p-24f);
  CHECK(half_to_float(0x03FF) == 0x1.ff8p-15f);
  CHECK(half_to_float(0x7BFF) == 65504.0f);
  CHECK(std::isinf(half_to_float(0xFC00)));
  CHECK(std::signbit(half_to_float(0x8000)));
  CHECK(std::isnan(half_to_float(0x7E01)));

  CHECK(float_to_bfloat16(1.0f) == 0x3F80);
  CHECK(float_to_bfloat16(1.00390625f) == 0x3F80);  // tie: even
  CHECK(float_to_bfloat16(1.01171875f) == 0x3F82);  // tie: up to even
  CHECK(float_to_bfloat16(3.4e38f) == 0x7F80);      // rounds to infinity
  CHECK(float_to_bfloat16(NAN) == 0x7FC0);
  CHECK(bfloat16_to_float(0x3F81) == 1.0078125f);

  // Every non-NaN pattern survives a round trip through float.
  int bad_half = 0, bad_bf16 = 0;
  for (std::uint32_t bits = 0; bits <= 0xFFFF; ++bits) {
    const auto b = static_cast<std::uint16_t>(bits);
    const float h = half_to_float(b);
    if (!std::isnan(h) && float_to_half(h) != b) ++bad_half;
    const float f = bfloat16_to_float(b);
    if (!std::isnan(f) && float_to_bfloat16(f) != b) ++bad_bf16;
  }
  CHECK(bad_half == 0);
  CHECK(bad_bf16 == 0);

  // Tensors of the half types: a double goes through float (c10::Half(float(v))).
  const Tensor h = make(DType::float16, {3}, {0.1, 65520.0, -3.0});
  CHECK(half_bits(h, 0) == 0x2E66);
  check_values(h, {0.0999755859375, kInf, -3.0});
  const Tensor bf = ref::cast(make_f32({2}, {1.00390625, -1.01171875}), DType::bfloat16);
  check_values(bf, {1.0, -1.015625});
  check_values(ref::cast(bf, DType::float64), {1.0, -1.015625});
}

TEST_CASE("reference: floating to integer casts truncate and match PyTorch on x86-64 out of range") {
  using kiln::kernels::floating_to_int;
  const std::vector<double> inputs = {kNan,  kInf,   -kInf, 1e20, 3e9,    40000, -40000,
                                      300.0, -5.0,   0x1p31, -0x1p31, 0x1p63, -0x1p63};
  const std::vector<std::int64_t> int64 = {kInt64Min, kInt64Min, kInt64Min, kInt64Min, 3000000000,
                                           40000,     -40000,    300,       -5,        2147483648,
                                           -2147483648, kInt64Min, kInt64Min};
  const std::int64_t i32min = -2147483648LL;
  const std::vector<std::int64_t> int32 = {i32min, i32min, i32min, i32min, i32min, 40000, -40000,
                                           300,    -5,     i32min, i32min, i32min, i32min};
  const std::vector<std::int64_t> int16 = {0, 0, 0, 0, 0, -25536, 25536, 300, -5, 0, 0, 0, 0};
  const std::vector<std::int64_t> int8 = {0, 0, 0, 0, 0, 64, -64, 44, -5, 0, 0, 0, 0};
  const std::vector<std::int64_t> uint8 = {0, 0, 0, 0, 0, 64, 192, 44, 251, 0, 0, 0, 0};
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    INFO("input ", inputs[i]);
    CHECK(floating_to_int(DType::int64, inputs[i]) == int64[i]);
    CHECK(floating_to_int(DType::int32, inputs[i]) == int32[i]);
    CHECK(floating_to_int(DType::int16, inputs[i]) == int16[i]);
    CHECK(floating_to_int(DType::int8, inputs[i]) == int8[i]);
    CHECK(floating_to_int(DType::uint8, inputs[i]) == uint8[i]);
  }
  // The cast kernel, from float32 and from float64.
  CHECK(ints(ref::cast(make_f32({4}, {2.9, -2.9, kNan, 300}), DType::uint8)) ==
        std::vector<std::int64_t>{2, 254, 0, 44});
  CHECK(ints(ref::cast(make(DType::float64, {3}, {-0.5, 1e300, 0x1p62}), DType::int64)) ==
        std::vector<std::int64_t>{0, kInt64Min, 1LL << 62});
  CHECK(ints(ref::cast(make_f32({4}, {kNan, 0.0, -0.0, 0.5}), DType::bool_)) == std::vector<std::int64_t>{1, 0, 0, 1});
  // Integer to integer wraps; anything to bool is 0/1.
  CHECK(ints(ref::cast(make_int(DType::int64, {3}, {300, -1, 1LL << 40}), DType::uint8)) ==
        std::vector<std::int64_t>{44, 255, 0});
  const Tensor b = ref::cast(make_int(DType::int64, {2}, {7, 0}), DType::bool_);
  CHECK(std::to_integer<int>(b.bytes()[0]) == 1);
}

TEST_CASE("reference: integers stay exact in int64") {
  const std::int64_t big = (1LL << 60) + 1;
  const Tensor a = make_int(DType::int64, {2}, {big, -big});
  CHECK(ints(ref::binary_scalar(BinaryOp::add, a, Scalar::of_int(1), DType::int64, DType::int64)) ==
        std::vector<std::int64_t>{big + 1, -big + 1});
  CHECK(ints(ref::binary(BinaryOp::mul, a, make_int(DType::int64, {}, {3}), DType::int64, DType::int64)) ==
        std::vector<std::int64_t>{3 * big, -3 * big});
  CHECK(ints(ref::sum(a, {}, false, DType::int64)) == std::vector<std::int64_t>{0});
  CHECK(ints(ref::sum(make_int(DType::int64, {2}, {big, big}), {}, false, DType::int64)) ==
        std::vector<std::int64_t>{2 * big});
  CHECK(ints(ref::cumsum(make_int(DType::int64, {3}, {big, 1, -1}), 0, DType::int64)) ==
        std::vector<std::int64_t>{big, big + 1, big});
  CHECK(ints(ref::max_all(make_int(DType::int64, {2}, {big, big - 1}))) == std::vector<std::int64_t>{big});
  CHECK(ints(ref::min_all(make_int(DType::int64, {2}, {big, big - 1}))) == std::vector<std::int64_t>{big - 1});
  // 2^60 and 2^60 + 1 are the same double: argmax must compare integers.
  CHECK(ints(ref::argmax(make_int(DType::int64, {3}, {big - 1, big, big - 1}), std::nullopt, false)) ==
        std::vector<std::int64_t>{1});
  CHECK(ints(ref::binary(BinaryOp::eq, a, make_int(DType::int64, {2}, {big - 1, -big}), DType::int64, DType::bool_)) ==
        std::vector<std::int64_t>{0, 1});
  CHECK(ints(ref::clamp(make_int(DType::int64, {2}, {big, -big}), -0x1p59, 0x1p59)) ==
        std::vector<std::int64_t>{1LL << 59, -(1LL << 59)});
  CHECK(ints(ref::full({2}, Scalar::of_int(big), DType::int64)) == std::vector<std::int64_t>{big, big});

  // Overflow wraps as in PyTorch rather than being undefined.
  CHECK(ints(ref::binary_scalar(BinaryOp::mul, make_int(DType::int64, {1}, {1LL << 62}), Scalar::of_int(4),
                                DType::int64, DType::int64)) == std::vector<std::int64_t>{0});
  CHECK(ints(ref::binary_scalar(BinaryOp::pow, make_int(DType::int64, {1}, {3}), Scalar::of_int(40), DType::int64,
                                DType::int64)) == std::vector<std::int64_t>{-6289078614652622815LL});
  CHECK(ints(ref::binary_scalar(BinaryOp::add, make_int(DType::uint8, {1}, {200}), Scalar::of_int(300), DType::uint8,
                                DType::uint8)) == std::vector<std::int64_t>{244});
  CHECK(ints(ref::binary(BinaryOp::add, make_int(DType::int8, {1}, {100}), make_int(DType::int8, {1}, {100}),
                         DType::int8, DType::int8)) == std::vector<std::int64_t>{-56});
  const Tensor most_negative = make_int(DType::int64, {1}, {kInt64Min});
  const Tensor minus_one = make_int(DType::int64, {1}, {-1});
  CHECK(ints(ref::binary(BinaryOp::div_floor, most_negative, minus_one, DType::int64, DType::int64)) ==
        std::vector<std::int64_t>{kInt64Min});
  CHECK(ints(ref::binary(BinaryOp::div_trunc, most_negative, minus_one, DType::int64, DType::int64)) ==
        std::vector<std::int64_t>{kInt64Min});
  CHECK(ints(ref::binary(BinaryOp::remainder, most_negative, minus_one, DType::int64, DType::int64)) ==
        std::vector<std::int64_t>{0});
  CHECK(ints(ref::unary(UnaryOp::abs, most_negative, DType::int64)) == std::vector<std::int64_t>{kInt64Min});
  CHECK(ints(ref::unary(UnaryOp::neg, most_negative, DType::int64)) == std::vector<std::int64_t>{kInt64Min});
  CHECK(ints(ref::binary_scalar(BinaryOp::sub, most_negative, Scalar::of_int(1), DType::int64, DType::int64)) ==
        std::vector<std::int64_t>{std::numeric_limits<std::int64_t>::max()});

  // int64 to float32 rounds once, not through double: 2^62 + 2^38 + 1 is nearer 2^62 + 2^39.
  const std::int64_t tricky = (1LL << 62) + (1LL << 38) + 1;
  CHECK(kiln::kernels::int_to_floating(DType::float32, tricky) == 0x1p62 + 0x1p39);
  check_values(ref::cast(make_int(DType::int64, {1}, {tricky}), DType::float32), {0x1p62 + 0x1p39});
  // An int64 operand meets a float32 compute dtype the same way.
  check_values(ref::binary_scalar(BinaryOp::add, make_int(DType::int64, {1}, {tricky}), Scalar::of_double(0.0),
                                  DType::float32, DType::float32),
               {0x1p62 + 0x1p39});
}

TEST_CASE("reference: integer division, remainder and powers follow Python and PyTorch") {
  const Tensor a = make_int(DType::int64, {4}, {-7, 7, -7, 7});
  const Tensor b = make_int(DType::int64, {4}, {2, -2, -2, 2});
  CHECK(ints(ref::binary(BinaryOp::div_floor, a, b, DType::int64, DType::int64)) ==
        std::vector<std::int64_t>{-4, -4, 3, 3});
  CHECK(ints(ref::binary(BinaryOp::div_trunc, a, b, DType::int64, DType::int64)) ==
        std::vector<std::int64_t>{-3, -3, 3, 3});
  CHECK(ints(ref::binary(BinaryOp::remainder, a, b, DType::int64, DType::int64)) ==
        std::vector<std::int64_t>{1, -1, -1, 1});

  const Tensor zero = make_int(DType::int64, {1}, {0});
  for (const BinaryOp op : {BinaryOp::div_floor, BinaryOp::div_trunc, BinaryOp::remainder}) {
    CHECK(error_of([&] { ref::binary(op, a, zero, DType::int64, DType::int64); }) == "ZeroDivisionError");
  }
  CHECK(error_of([&] { ref::binary_scalar(BinaryOp::remainder, a, Scalar::of_int(0), DType::int64, DType::int64); }) ==
        "ZeroDivisionError");

  CHECK(error_of([&] { ref::binary_scalar(BinaryOp::pow, a, Scalar::of_int(-1), DType::int64, DType::int64); }) ==
        "Integers to negative integer powers are not allowed.");
  // Tensor exponents take PyTorch's powi: 1/x rounded toward zero.
  CHECK(ints(ref::binary(BinaryOp::pow, make_int(DType::int64, {4}, {2, -1, 1, -1}),
                         make_int(DType::int64, {4}, {-1, -3, -2, -2}), DType::int64, DType::int64)) ==
        std::vector<std::int64_t>{0, -1, 1, 1});
  CHECK(ints(ref::binary_scalar_left(BinaryOp::pow, Scalar::of_int(2), make_int(DType::int64, {3}, {-1, 0, 10}),
                                     DType::int64, DType::int64)) == std::vector<std::int64_t>{0, 1, 1024});
  CHECK(ints(ref::binary_scalar(BinaryOp::pow, make_int(DType::int64, {3}, {0, 2, -3}), Scalar::of_int(0),
                                DType::int64, DType::int64)) == std::vector<std::int64_t>{1, 1, 1});
  CHECK(error_of([&] { ref::binary(BinaryOp::div, a, b, DType::int64, DType::int64); }, kiln::ErrorKind::internal) ==
        "true division needs a floating compute dtype");
  CHECK(error_of([&] { ref::binary(BinaryOp::add, a, b, DType::int64, DType::int64, 0.5); }) ==
        "For integral input tensors, argument alpha must not be a floating point number.");
  CHECK(ints(ref::binary(BinaryOp::sub, a, b, DType::int64, DType::int64, 3)) ==
        std::vector<std::int64_t>{-13, 13, -1, 1});
}

TEST_CASE("reference: floating binary ops") {
  const Tensor a = make_f32({4}, {-7, 7, 5.5, -0.0});
  const Tensor b = make_f32({4}, {2, -2, 0, 2});
  const Tensor rem = ref::binary(BinaryOp::remainder, a, b, DType::float32, DType::float32);
  check_values(rem, {1, -1, kNan, 0});
  CHECK(std::signbit(values(rem)[3]));
  check_values(ref::binary(BinaryOp::div_floor, make_f32({4}, {-7, 7, 5.5, 0}), make_f32({4}, {2, -2, 0, 0}),
                           DType::float32, DType::float32),
               {-4, -4, kInf, kNan});
  check_values(ref::binary(BinaryOp::div_trunc, a, b, DType::float32, DType::float32), {-3, -3, kInf, 0});
  check_values(ref::binary(BinaryOp::div, a, b, DType::float32, DType::float32),
               {-3.5, -3.5, kInf, static_cast<float>(-0.0)});
  // Rounded to float32 like PyTorch's float32 arithmetic: 0.1f + 0.2f is 0.3f's neighbour.
  check_values(ref::binary(BinaryOp::add, make_f32({1}, {0.1}), make_f32({1}, {0.2}), DType::float32, DType::float32),
               {static_cast<double>(0.1f + 0.2f)});
  check_values(ref::binary(BinaryOp::add, a, b, DType::float32, DType::float32, 2), {-3, 3, 5.5, 4});
  check_values(ref::binary(BinaryOp::sub, a, b, DType::float32, DType::float32, 0.5), {-8, 8, 5.5, -1});
  check_values(ref::binary(BinaryOp::pow, make_f32({3}, {0, -8, 2}), make_f32({3}, {0, 1.0 / 3, -1}), DType::float32,
                           DType::float32),
               {1, kNan, 0.5});
  check_values(ref::binary(BinaryOp::maximum, make_f32({3}, {1, kNan, 2}), make_f32({3}, {kNan, 1, 3}),
                           DType::float32, DType::float32),
               {kNan, kNan, 3});
  check_values(ref::binary(BinaryOp::minimum, make_f32({2}, {1, -1}), make_f32({2}, {2, -2}), DType::float32,
                           DType::float32),
               {1, -2});

  const Tensor c = make_f32({4}, {1, 2, kNan, 3});
  const Tensor d = make_f32({4}, {1, 3, kNan, 2});
  const auto compare = [&](BinaryOp op) { return ints(ref::binary(op, c, d, DType::float32, DType::bool_)); };
  CHECK(compare(BinaryOp::eq) == std::vector<std::int64_t>{1, 0, 0, 0});
  CHECK(compare(BinaryOp::ne) == std::vector<std::int64_t>{0, 1, 1, 1});
  CHECK(compare(BinaryOp::lt) == std::vector<std::int64_t>{0, 1, 0, 0});
  CHECK(compare(BinaryOp::le) == std::vector<std::int64_t>{1, 1, 0, 0});
  CHECK(compare(BinaryOp::gt) == std::vector<std::int64_t>{0, 0, 0, 1});
  CHECK(compare(BinaryOp::ge) == std::vector<std::int64_t>{1, 0, 0, 1});
  CHECK(ref::binary(BinaryOp::eq, c, d, DType::float32, DType::bool_).dtype == DType::bool_);
  const Tensor p = make_int(DType::bool_, {4}, {1, 1, 0, 0});
  const Tensor q = make_f32({4}, {kNan, 0, 2, 0});
  CHECK(ints(ref::binary(BinaryOp::logical_and, p, q, DType::float32, DType::bool_)) ==
        std::vector<std::int64_t>{1, 0, 0, 0});
  CHECK(ints(ref::binary(BinaryOp::logical_or, p, q, DType::float32, DType::bool_)) ==
        std::vector<std::int64_t>{1, 1, 1, 0});

  // Compared in the compute dtype: 2^24 + 1 as float32 is 2^24.
  CHECK(ints(ref::binary_scalar(BinaryOp::eq, make_int(DType::int64, {1}, {(1 << 24) + 1}),
                                Scalar::of_double(16777216.0), DType::float32, DType::bool_)) ==
        std::vector<std::int64_t>{1});
  // rsub: scalar - tensor * alpha.
  check_values(ref::binary_scalar_left(BinaryOp::sub, Scalar::of_int(1), make_f32({2}, {0.25, 2}), DType::float32,
                                       DType::float32, 2),
               {0.5, -3});
}

TEST_CASE("reference: half compute takes 0-dim and Python scalars in float, as PyTorch's CPU kernels") {
  const Tensor h = make(DType::float16, {2}, {3, 1});
  // 3 * float(0.1) rounds to 0.30005 in half; 3 * half(0.1) would give 0.29980.
  const Tensor by_scalar = ref::binary_scalar(BinaryOp::mul, h, Scalar::of_double(0.1), DType::float16, DType::float16);
  check_values(by_scalar, {0.300048828125, 0.0999755859375});
  const Tensor by_zero_dim =
      ref::binary(BinaryOp::mul, h, Tensor::scalar(DType::float32, 0.1), DType::float16, DType::float16);
  check_values(by_zero_dim, {0.300048828125, 0.0999755859375});
  CHECK(by_zero_dim.dtype == DType::float16);
  // bfloat16 + float16 compute in float32.
  check_values(ref::binary(BinaryOp::add, make(DType::bfloat16, {1}, {1.0078125}), make(DType::float16, {1}, {0.5}),
                           DType::float32, DType::float32),
               {1.5078125});
}

TEST_CASE("reference: broadcasting, negative dims and their messages") {
  CHECK(ref::broadcast_shapes({2, 1, 3}, {4, 1}) == Sizes{2, 4, 3});
  CHECK(ref::broadcast_shapes({}, {5}) == Sizes{5});
  CHECK(ref::broadcast_shapes({0, 1}, {1, 3}) == Sizes{0, 3});
  CHECK(error_of([] { ref::broadcast_shapes({2, 3}, {2, 7}); }) ==
        "The size of tensor a (3) must match the size of tensor b (7) at non-singleton dimension 1");
  CHECK(error_of([] { ref::broadcast_shapes({5, 2, 3}, {4, 3}); }) ==
        "The size of tensor a (2) must match the size of tensor b (4) at non-singleton dimension 1");
  CHECK(error_of([] {
          ref::binary(BinaryOp::add, Tensor::empty(DType::float32, {2, 3}), Tensor::empty(DType::float32, {2, 7}),
                      DType::float32, DType::float32);
        }) == "The size of tensor a (3) must match the size of tensor b (7) at non-singleton dimension 1");

  CHECK(ref::wrap_dim(-1, 2) == 1);
  CHECK(ref::wrap_dim(-2, 2) == 0);
  CHECK(ref::wrap_dim(-1, 0) == 0);
  CHECK(error_of([] { ref::wrap_dim(2, 2); }) ==
        "Dimension out of range (expected to be in range of [-2, 1], but got 2)");
  CHECK(error_of([] { ref::wrap_dim(-3, 2); }) ==
        "Dimension out of range (expected to be in range of [-2, 1], but got -3)");
  CHECK(error_of([] { ref::wrap_dim(1, 0); }) ==
        "Dimension out of range (expected to be in range of [-1, 0], but got 1)");

  // [2, 1, 3] + [4, 1] against a loop over the broadcast indices.
  const Tensor a = random_f32({2, 1, 3}, 1);
  const Tensor b = random_f32({4, 1}, 2);
  const Tensor c = ref::binary(BinaryOp::add, a, b, DType::float32, DType::float32);
  REQUIRE(c.sizes == Sizes{2, 4, 3});
  std::vector<double> expected;
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 4; ++j) {
      for (int k = 0; k < 3; ++k) {
        const double sum = kiln::kernels::load_double(a, i * 3 + k) + kiln::kernels::load_double(b, j);
        expected.push_back(static_cast<float>(sum));
      }
    }
  }
  check_values(c, expected);
}

TEST_CASE("reference: unary ops") {
  const std::vector<double> xs = {-3, -0.5, 0, 0.7, 2.5};
  const Tensor x = make_f32({5}, xs);
  const auto expect = [&](UnaryOp op, const std::function<double(double)>& f) {
    std::vector<double> e;
    for (const double v : xs) e.push_back(static_cast<float>(f(static_cast<float>(v))));
    INFO("op ", static_cast<int>(op));
    check_values(ref::unary(op, x, DType::float32), e);
  };
  expect(UnaryOp::neg, [](double v) { return -v; });
  expect(UnaryOp::abs, [](double v) { return std::fabs(v); });
  expect(UnaryOp::tanh, [](double v) { return std::tanh(v); });
  expect(UnaryOp::sigmoid, [](double v) { return 1 / (1 + std::exp(-v)); });
  expect(UnaryOp::silu, [](double v) { return v / (1 + std::exp(-v)); });
  expect(UnaryOp::gelu_erf, [](double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); });
  expect(UnaryOp::gelu_tanh, [](double v) {
    return 0.5 * v * (1 + std::tanh(std::sqrt(2 / 3.14159265358979323846) * (v + 0.044715 * v * v * v)));
  });
  expect(UnaryOp::exp, [](double v) { return std::exp(v); });
  expect(UnaryOp::erf, [](double v) { return std::erf(v); });
  check_values(ref::unary(UnaryOp::sqrt, make_f32({3}, {4, -1, 0}), DType::float32), {2, kNan, 0});
  check_values(ref::unary(UnaryOp::rsqrt, make_f32({3}, {4, 0, kInf}), DType::float32), {0.5, kInf, 0});
  check_values(ref::unary(UnaryOp::log, make_f32({3}, {1, 0, -1}), DType::float32), {0, -kInf, kNan});

  // relu keeps NaN and -0, as clamp_min(x, 0).
  const Tensor r = ref::unary(UnaryOp::relu, make_f32({4}, {kNan, -1, -0.0, 2}), DType::float32);
  check_values(r, {kNan, 0, 0, 2});
  CHECK(std::signbit(values(r)[2]));

  // Float ops on an integer input compute in the float output the caller passes.
  check_values(ref::unary(UnaryOp::sqrt, make_int(DType::int64, {2}, {4, 2}), DType::float32),
               {2, static_cast<float>(std::sqrt(2.0))});
  CHECK(ints(ref::unary(UnaryOp::relu, make_int(DType::int32, {3}, {-5, 0, 5}), DType::int32)) ==
        std::vector<std::int64_t>{0, 0, 5});
  CHECK(ints(ref::unary(UnaryOp::neg, make_int(DType::int8, {2}, {-128, 5}), DType::int8)) ==
        std::vector<std::int64_t>{-128, -5});
  CHECK(error_of([] { ref::unary(UnaryOp::exp, make_int(DType::int64, {1}, {1}), DType::int64); },
                 kiln::ErrorKind::internal) == "a floating unary op got an integer output dtype");

  CHECK(ints(ref::unary(UnaryOp::logical_not, make_f32({3}, {0, kNan, -2}), DType::bool_)) ==
        std::vector<std::int64_t>{1, 0, 0});
  CHECK(ints(ref::unary(UnaryOp::bitwise_not, make_int(DType::int64, {2}, {-5, 0}), DType::int64)) ==
        std::vector<std::int64_t>{4, -1});
  CHECK(ints(ref::unary(UnaryOp::bitwise_not, make_int(DType::bool_, {2}, {1, 0}), DType::bool_)) ==
        std::vector<std::int64_t>{0, 1});
  CHECK(ints(ref::unary(UnaryOp::bitwise_not, make_int(DType::uint8, {1}, {5}), DType::uint8)) ==
        std::vector<std::int64_t>{250});
  CHECK(error_of([] { ref::unary(UnaryOp::bitwise_not, make_f32({1}, {1}), DType::float32); }) ==
        "bitwise_not is only supported for integer and bool tensors, but got float32");

  // Half output: computed in double, rounded through float to half.
  check_values(ref::unary(UnaryOp::exp, make(DType::float16, {1}, {1}), DType::float16), {2.71875});
}

TEST_CASE("reference: clamp, where, masked_fill and cast") {
  check_values(ref::clamp(make_f32({4}, {1, kNan, 3, -5}), 0.0, 2.0), {1, kNan, 2, 0});
  check_values(ref::clamp(make_f32({3}, {1, 2, 3}), kNan, 2.0), {kNan, kNan, kNan});
  check_values(ref::clamp(make_f32({3}, {1, 2, 3}), 3.0, 1.0), {1, 1, 1});  // min(max(x, lo), hi)
  check_values(ref::clamp(make_f32({2}, {-1, 5}), std::nullopt, 0.1), {-1, static_cast<float>(0.1)});
  CHECK(ints(ref::clamp(make_int(DType::int64, {3}, {1, 5, -9}), 2.0, 3.0)) == std::vector<std::int64_t>{2, 3, 2});

  const Tensor cond = make_int(DType::bool_, {2, 1}, {1, 0});
  const Tensor w = ref::where(cond, make_f32({3}, {1, 2, 3}), make_int(DType::int64, {}, {-1}), DType::float32);
  CHECK(w.sizes == Sizes{2, 3});
  check_values(w, {1, 2, 3, -1, -1, -1});
  CHECK(error_of([] {
          ref::where(make_int(DType::int64, {2}, {1, 0}), make_f32({2}, {1, 2}), make_f32({2}, {1, 2}), DType::float32);
        }) == "where expected condition to be a boolean tensor, but got a tensor with dtype int64");

  // Out of place masked_fill takes the broadcast shape of self and mask.
  const Tensor mask = make_int(DType::bool_, {2, 1}, {1, 0});
  const Tensor filled = ref::masked_fill(make_f32({3}, {1, 1, 1}), mask, Scalar::of_double(0.5));
  CHECK(filled.sizes == Sizes{2, 3});
  check_values(filled, {0.5, 0.5, 0.5, 1, 1, 1});
  check_values(ref::masked_fill(make_f32({2}, {1, 2}), make_int(DType::bool_, {2}, {0, 1}), Scalar::of_double(-kInf)),
               {1, -kInf});
  CHECK(ints(ref::masked_fill(make_int(DType::int64, {3}, {1, 1, 1}), make_int(DType::bool_, {3}, {1, 0, 1}),
                              Scalar::of_double(2.7))) == std::vector<std::int64_t>{2, 1, 2});
  check_values(ref::masked_fill(make_f32({2}, {1, 2}), make_int(DType::bool_, {2}, {1, 0}),
                                Tensor::scalar(DType::float64, 7)),
               {7, 2});
  CHECK(error_of([] {
          ref::masked_fill(make_f32({1}, {1}), make_int(DType::int64, {1}, {1}), Scalar::of_int(0));
        }) == "masked_fill_ only supports boolean masks, but got mask with dtype int64");
  CHECK(error_of([] {
          ref::masked_fill(make_f32({1}, {1}), make_int(DType::bool_, {1}, {1}), make_f32({1}, {0}));
        }) == "masked_fill_ only supports a 0-dimensional value tensor, but got tensor with 1 dimension(s).");

  // cast and contiguous copy into a new contiguous buffer.
  const Tensor t = ref::transpose(make_f32({2, 3}, {1, 2, 3, 4, 5, 6}), 0, 1);
  const Tensor c = ref::contiguous(t);
  CHECK(c.buffer != t.buffer);
  CHECK(c.strides == Sizes{2, 1});
  check_values(c, {1, 4, 2, 5, 3, 6});
  const Tensor d = ref::cast(t, DType::float64);
  CHECK(d.dtype == DType::float64);
  check_values(d, {1, 4, 2, 5, 3, 6});
}

TEST_CASE("reference: softmax and log_softmax") {
  const Tensor x = random_f32({3, 5}, 7);
  for (const std::int64_t dim : {1, -1}) {
    const Tensor s = ref::softmax(x, dim, DType::float32);
    for (std::int64_t i = 0; i < 3; ++i) {
      double total = 0, denominator = 0;
      for (std::int64_t j = 0; j < 5; ++j) denominator += std::exp(kiln::kernels::load_double(x, i * 5 + j));
      for (std::int64_t j = 0; j < 5; ++j) {
        const double y = kiln::kernels::load_double(s, i * 5 + j);
        total += y;
        CHECK(close(y, std::exp(kiln::kernels::load_double(x, i * 5 + j)) / denominator, 1e-6));
      }
      CHECK(close(total, 1.0, 1e-6));
    }
  }
  // Over dim 0 of a transposed (non-contiguous) input: same as over dim 1 of the original.
  const Tensor t = ref::transpose(x, 0, 1);
  const Tensor st = ref::softmax(t, -2, DType::float32);
  CHECK(st.sizes == Sizes{5, 3});
  check_values(ref::transpose(st, 0, 1), values(ref::softmax(x, 1, DType::float32)));

  // The max is subtracted: large logits do not overflow.
  check_close(ref::softmax(make_f32({2}, {1000, 1001}), 0, DType::float32),
              {1 / (1 + std::exp(1.0)), 1 / (1 + std::exp(-1.0))}, 1e-6);
  check_values(ref::softmax(make_f32({2}, {-kInf, -kInf}), 0, DType::float32), {kNan, kNan});
  check_values(ref::softmax(make_f32({3}, {1, kNan, 2}), 0, DType::float32), {kNan, kNan, kNan});
  check_values(ref::softmax(Tensor::scalar(DType::float32, 5), 0, DType::float32), {1});

  const Tensor ls = ref::log_softmax(x, 1, DType::float32);
  const Tensor s = ref::softmax(x, 1, DType::float32);
  for (std::int64_t i = 0; i < 15; ++i) {
    CHECK(close(kiln::kernels::load_double(ls, i), std::log(kiln::kernels::load_double(s, i)), 1e-6));
  }
  check_close(ref::log_softmax(make_f32({2}, {1000, 1000}), 0, DType::float32), {-std::log(2.0), -std::log(2.0)},
              1e-6);
  // An integer input with a float output dtype (softmax(x, dtype=float)).
  check_close(ref::softmax(make_int(DType::int64, {2}, {0, 0}), 0, DType::float32), {0.5, 0.5}, 0);
  CHECK(error_of([] { ref::softmax(make_f32({2}, {1, 2}), 2, DType::float32); }) ==
        "Dimension out of range (expected to be in range of [-1, 0], but got 2)");
}

TEST_CASE("reference: layer_norm") {
  const Tensor x = random_f32({4, 6}, 3);
  const Tensor one = ref::full({6}, Scalar::of_double(1), DType::float32);
  const Tensor zero = ref::full({6}, Scalar::of_double(0), DType::float32);
  for (const Tensor& y :
       {ref::layer_norm(x, {6}, &one, &zero, 1e-12), ref::layer_norm(x, {6}, nullptr, nullptr, 1e-12)}) {
    for (std::int64_t r = 0; r < 4; ++r) {
      double mean = 0, var = 0;
      for (std::int64_t j = 0; j < 6; ++j) mean += kiln::kernels::load_double(y, r * 6 + j) / 6;
      for (std::int64_t j = 0; j < 6; ++j) var += std::pow(kiln::kernels::load_double(y, r * 6 + j) - mean, 2) / 6;
      CHECK(std::fabs(mean) < 1e-6);
      CHECK(close(var, 1.0, 1e-5));
    }
  }
  // By hand: [1, 2, 3] has mean 2 and biased variance 2/3.
  const double rstd = 1 / std::sqrt(2.0 / 3 + 1e-5);
  const Tensor w = make_f32({3}, {1, 2, 3});
  const Tensor b = make_f32({3}, {0.5, 0, -1});
  check_close(ref::layer_norm(make_f32({1, 3}, {1, 2, 3}), {3}, &w, &b, 1e-5), {-rstd + 0.5, 0, 3 * rstd - 1}, 1e-6);
  // Over two trailing dims of a transposed input.
  const Tensor t = ref::transpose(make_f32({3, 2}, {1, 4, 2, 5, 3, 6}), 0, 1);  // [[1, 2, 3], [4, 5, 6]]
  const Tensor flat = make_f32({6}, {1, 2, 3, 4, 5, 6});
  check_close(ref::layer_norm(t, {2, 3}, nullptr, nullptr, 0), values(ref::layer_norm(flat, {6}, nullptr, nullptr, 0)),
              1e-6);

  CHECK(error_of([] { ref::layer_norm(Tensor::empty(DType::float32, {2, 3}), {4}, nullptr, nullptr, 1e-5); }) ==
        "Given normalized_shape=[4], expected input with shape [*, 4], but got input of size[2, 3]");
  CHECK(error_of([] { ref::layer_norm(Tensor::empty(DType::float32, {3}), {2, 3}, nullptr, nullptr, 1e-5); }) ==
        "Given normalized_shape=[2, 3], expected input with shape [*, 2, 3], but got input of size[3]");
  CHECK(error_of([] { ref::layer_norm(Tensor::empty(DType::float32, {2, 3}), {}, nullptr, nullptr, 1e-5); }) ==
        "Expected normalized_shape to be at least 1-dimensional, i.e., containing at least one element, but got "
        "normalized_shape = []");
  const Tensor w4 = Tensor::empty(DType::float32, {4});
  CHECK(error_of([&] { ref::layer_norm(Tensor::empty(DType::float32, {2, 3}), {3}, &w4, nullptr, 1e-5); }) ==
        "Expected weight to be of same shape as normalized_shape, but got weight of shape [4] and "
        "normalized_shape = [3]");
  CHECK(error_of([&] { ref::layer_norm(Tensor::empty(DType::float32, {2, 3}), {3}, nullptr, &w4, 1e-5); }) ==
        "Expected bias to be of same shape as normalized_shape, but got bias of shape [4] and normalized_shape = [3]");
}

namespace {

// a @ b by the definition, for 2-D a and b of any strides.
std::vector<double> naive_matmul(const Tensor& a, const Tensor& b) {
  const std::int64_t m = a.sizes[0], k = a.sizes[1], n = b.sizes[1];
  std::vector<double> out;
  for (std::int64_t i = 0; i < m; ++i) {
    for (std::int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (std::int64_t p = 0; p < k; ++p) {
        s += kiln::kernels::load_double(a, i * k + p) * kiln::kernels::load_double(b, p * n + j);
      }
      out.push_back(static_cast<float>(s));
    }
  }
  return out;
}

}  // namespace

TEST_CASE("reference: linear and matmul agree with a triple loop") {
  const Tensor a = random_f32({5, 7}, 11);
  const Tensor b = random_f32({7, 300}, 12);  // wider than one block of the blocked loop
  check_close(ref::matmul(a, b), naive_matmul(a, b), 1e-6);

  // Transposed and sliced operands.
  const Tensor bt = ref::transpose(random_f32({300, 7}, 13), 0, 1);
  const Tensor as = ref::slice(random_f32({10, 7}, 14), 0, 1, std::nullopt, 2);
  CHECK_FALSE(bt.is_contiguous());
  check_close(ref::matmul(as, bt), naive_matmul(as, bt), 1e-6);

  // linear: x @ w^T + b on a 3-D input.
  const Tensor x = random_f32({2, 3, 8}, 15);
  const Tensor w = random_f32({4, 8}, 16);
  const Tensor bias = random_f32({4}, 17);
  const Tensor y = ref::linear(x, w, &bias);
  CHECK(y.sizes == Sizes{2, 3, 4});
  std::vector<double> expected = naive_matmul(ref::reshape(x, {6, 8}), ref::transpose(w, 0, 1));
  for (std::size_t i = 0; i < expected.size(); ++i) {
    double s = 0;
    for (std::int64_t p = 0; p < 8; ++p) {
      s += kiln::kernels::load_double(x, static_cast<std::int64_t>(i / 4) * 8 + p) *
           kiln::kernels::load_double(w, static_cast<std::int64_t>(i % 4) * 8 + p);
    }
    expected[i] = static_cast<float>(s + kiln::kernels::load_double(bias, static_cast<std::int64_t>(i % 4)));
  }
  check_close(y, expected, 1e-6);
  check_close(ref::linear(make_f32({2}, {1, 2}), make_f32({1, 2}, {3, 4}), nullptr), {11}, 0);

  // Batched with broadcasting: [2, 1, 3, 4] @ [5, 4, 2] -> [2, 5, 3, 2].
  const Tensor p = random_f32({2, 1, 3, 4}, 18);
  const Tensor q = random_f32({5, 4, 2}, 19);
  const Tensor pq = ref::matmul(p, q);
  REQUIRE(pq.sizes == Sizes{2, 5, 3, 2});
  for (std::int64_t i = 0; i < 2; ++i) {
    for (std::int64_t j = 0; j < 5; ++j) {
      check_close(ref::select(ref::select(pq, 0, i), 0, j),
                  naive_matmul(ref::select(ref::select(p, 0, i), 0, 0), ref::select(q, 0, j)), 1e-6);
    }
  }
  // The 1-D cases.
  const Tensor v = make_f32({3}, {1, 2, 3});
  const Tensor m = make_f32({2, 3}, {1, 0, 1, 0, 1, 0});
  check_values(ref::matmul(v, v), {14});
  CHECK(ref::matmul(v, v).dim() == 0);
  check_values(ref::matmul(m, v), {4, 2});
  check_values(ref::matmul(make_f32({2}, {1, 1}), m), {1, 1, 1});
  const Tensor m3 = ref::expand(m, {4, 2, 3});
  CHECK(ref::matmul(m3, v).sizes == Sizes{4, 2});
  CHECK(ref::matmul(v, ref::transpose(m3, 1, 2)).sizes == Sizes{4, 2});
  check_values(ref::matmul(v, ref::transpose(m3, 1, 2)), {4, 2, 4, 2, 4, 2, 4, 2});

  // Integers multiply exactly and wrap.
  const Tensor ia = make_int(DType::int64, {1, 2}, {(1LL << 60) + 1, 1});
  const Tensor ib = make_int(DType::int64, {2, 1}, {1, 1});
  CHECK(ints(ref::matmul(ia, ib)) == std::vector<std::int64_t>{(1LL << 60) + 2});

  // Size-0 dims: empty results, or zeros when the inner dim is empty.
  CHECK(ref::matmul(Tensor::empty(DType::float32, {0, 4}), Tensor::empty(DType::float32, {4, 3})).sizes == Sizes{0, 3});
  check_values(ref::matmul(Tensor::empty(DType::float32, {2, 0}), Tensor::empty(DType::float32, {0, 2})), {0, 0, 0, 0});
  const Tensor b2 = make_f32({2}, {1, 2});
  check_values(ref::linear(Tensor::empty(DType::float32, {1, 0}), Tensor::empty(DType::float32, {2, 0}), &b2), {1, 2});
}

TEST_CASE("reference: linear and matmul messages") {
  const auto f32 = [](Sizes s) { return Tensor::empty(DType::float32, std::move(s)); };
  CHECK(error_of([&] { ref::linear(f32({2, 3, 8}), f32({4, 16}), nullptr); }) ==
        "mat1 and mat2 shapes cannot be multiplied (6x8 and 16x4)");
  CHECK(error_of([&] { ref::matmul(f32({6, 8}), f32({16, 4})); }) ==
        "mat1 and mat2 shapes cannot be multiplied (6x8 and 16x4)");
  CHECK(error_of([&] { ref::matmul(f32({2, 3, 5}), f32({6, 8})); }) ==
        "mat1 and mat2 shapes cannot be multiplied (6x5 and 6x8)");
  CHECK(error_of([&] { ref::matmul(f32({3}), f32({4, 2})); }) ==
        "mat1 and mat2 shapes cannot be multiplied (1x3 and 4x2)");
  CHECK(error_of([&] { ref::matmul(f32({3}), f32({4})); }) ==
        "inconsistent tensor size, expected tensor [3] and src [4] to have the same number of elements, but got 3 "
        "and 4 elements respectively");
  CHECK(error_of([&] { ref::matmul(f32({2, 3}), f32({4})); }) == "size mismatch, got input (2), mat (2x3), vec (4)");
  CHECK(error_of([&] { ref::matmul(f32({2, 6, 8}), f32({5})); }) ==
        "size mismatch, got input (12), mat (12x8), vec (5)");
  CHECK(error_of([&] { ref::matmul(f32({2, 6, 8}), f32({2, 16, 4})); }) ==
        "Expected size for first two dimensions of batch2 tensor to be: [2, 8] but got: [2, 16].");
  CHECK(error_of([&] { ref::matmul(f32({4, 2, 3, 5}), f32({2, 6, 8})); }) ==
        "Expected size for first two dimensions of batch2 tensor to be: [8, 5] but got: [8, 6].");
  CHECK(error_of([&] { ref::matmul(f32({5}), f32({2, 6, 8})); }) ==
        "Expected size for first two dimensions of batch2 tensor to be: [2, 5] but got: [2, 6].");
  CHECK(error_of([&] { ref::matmul(f32({2, 6, 8}), f32({3, 8, 4})); }) ==
        "The size of tensor a (2) must match the size of tensor b (3) at non-singleton dimension 0");
  CHECK(error_of([&] { ref::matmul(f32({2, 3}), Tensor::empty(DType::float64, {3, 2})); }) ==
        "expected m1 and m2 to have the same dtype, but got: float32 != float64");
  CHECK(error_of([&] { ref::matmul(f32({}), f32({3})); }) ==
        "both arguments to matmul need to be at least 1D, but they are 0D and 1D");
  const Tensor bad_bias = f32({3});
  CHECK(error_of([&] { ref::linear(f32({2, 8}), f32({4, 8}), &bad_bias); }) ==
        "The size of tensor a (3) must match the size of tensor b (4) at non-singleton dimension 0");
}

TEST_CASE("reference: linear at BERT feed-forward size") {
  // 512 tokens x 384 -> 1536, checked at a few entries against a dot product.
  const Tensor x = random_f32({512, 384}, 21);
  const Tensor w = random_f32({1536, 384}, 22);
  const Tensor y = ref::linear(x, w, nullptr);
  for (const auto& [i, j] : std::vector<std::pair<std::int64_t, std::int64_t>>{{0, 0}, {511, 1535}, {300, 777}}) {
    double s = 0;
    for (std::int64_t p = 0; p < 384; ++p) {
      s += kiln::kernels::load_double(x, i * 384 + p) * kiln::kernels::load_double(w, j * 384 + p);
    }
    CHECK(kiln::kernels::load_double(y, i * 1536 + j) == static_cast<float>(s));
  }
}

namespace {

// softmax(q k^T * scale + mask) v from the other reference kernels, in float64 so that
// the only difference from the fused kernel is its final rounding to float32.
Tensor composed_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor* float_mask, double scale) {
  const DType f64 = DType::float64;
  const Tensor kt = ref::transpose(ref::cast(k, f64), -2, -1);
  const Tensor products = ref::matmul(ref::cast(q, f64), kt);
  Tensor scores = ref::binary_scalar(BinaryOp::mul, products, Scalar::of_double(scale), f64, f64);
  if (float_mask) scores = ref::binary(BinaryOp::add, scores, *float_mask, f64, f64);
  return ref::matmul(ref::softmax(scores, -1, f64), ref::cast(v, f64));
}

}  // namespace

TEST_CASE("reference: scaled_dot_product_attention") {
  const Tensor q = random_f32({2, 3, 4}, 31);
  const Tensor k = random_f32({2, 5, 4}, 32);
  const Tensor v = random_f32({2, 5, 6}, 33);
  const Tensor plain = ref::scaled_dot_product_attention(q, k, v, nullptr, false, std::nullopt);
  CHECK(plain.sizes == Sizes{2, 3, 6});
  check_close(plain, values(composed_attention(q, k, v, nullptr, 0.5)), 1e-6);
  check_close(ref::scaled_dot_product_attention(q, k, v, nullptr, false, 0.25),
              values(composed_attention(q, k, v, nullptr, 0.25)), 1e-6);

  // A float mask is added; a bool mask's false is -inf. Row 1 is fully masked: zeros, as
  // PyTorch 2.x's math path (_safe_softmax).
  const Tensor keep = make_int(DType::bool_, {3, 5}, {1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 1, 1});
  Tensor additive = Tensor::empty(DType::float32, {3, 5});
  for (std::int64_t i = 0; i < 15; ++i) {
    kiln::kernels::store_double(additive, i, kiln::kernels::load_int(keep, i) ? 0 : -kInf);
  }
  const Tensor with_bool = ref::scaled_dot_product_attention(q, k, v, &keep, false, std::nullopt);
  const Tensor with_float = ref::scaled_dot_product_attention(q, k, v, &additive, false, std::nullopt);
  check_values(with_bool, values(with_float));
  const Tensor expected = composed_attention(q, k, v, &additive, 0.5);  // NaN in the fully masked row
  for (std::int64_t b = 0; b < 2; ++b) {
    for (std::int64_t i = 0; i < 3; ++i) {
      const Tensor row = ref::select(ref::select(with_bool, 0, b), 0, i);
      if (i == 1) {
        check_values(row, std::vector<double>(6, 0.0));
      } else {
        check_close(row, values(ref::select(ref::select(expected, 0, b), 0, i)), 1e-6);
      }
    }
  }
  const Tensor small = make_f32({1, 5}, {0, -1, 0.5, 0, 2});  // broadcast over batch and rows
  check_close(ref::scaled_dot_product_attention(q, k, v, &small, false, std::nullopt),
              values(composed_attention(q, k, v, &small, 0.5)), 1e-6);

  // is_causal keeps j <= i, aligned at the top left.
  Tensor causal_mask = Tensor::empty(DType::float32, {3, 5});
  for (std::int64_t i = 0; i < 3; ++i) {
    for (std::int64_t j = 0; j < 5; ++j) kiln::kernels::store_double(causal_mask, i * 5 + j, j <= i ? 0 : -kInf);
  }
  check_close(ref::scaled_dot_product_attention(q, k, v, nullptr, true, std::nullopt),
              values(composed_attention(q, k, v, &causal_mask, 0.5)), 1e-6);

  // Batch dims broadcast; non-contiguous (transposed heads) inputs.
  const Tensor q4 = random_f32({1, 2, 3, 4}, 34);
  const Tensor k4 = ref::transpose(random_f32({2, 5, 1, 4}, 35), 1, 2);
  const Tensor v4 = ref::transpose(random_f32({2, 5, 1, 2}, 36), 1, 2);
  const Tensor o4 = ref::scaled_dot_product_attention(q4, k4, v4, nullptr, false, std::nullopt);
  CHECK(o4.sizes == Sizes{2, 2, 3, 2});
  const auto head = [](const Tensor& t, std::int64_t b, std::int64_t h) {
    return ref::select(ref::select(t, 0, b), 0, h);
  };
  check_close(head(o4, 1, 1), values(composed_attention(head(q4, 0, 1), head(k4, 1, 0), head(v4, 1, 0), nullptr, 0.5)),
              1e-6);

  // No keys: zeros.
  const Tensor no_keys = Tensor::empty(DType::float32, {1, 0, 4});
  const Tensor no_values = Tensor::empty(DType::float32, {1, 0, 2});
  check_values(
      ref::scaled_dot_product_attention(random_f32({1, 2, 4}, 1), no_keys, no_values, nullptr, false, std::nullopt),
      {0, 0, 0, 0});

  const auto f32 = [](Sizes s) { return Tensor::empty(DType::float32, std::move(s)); };
  CHECK(error_of([&] { ref::scaled_dot_product_attention(q, k, v, &keep, true, std::nullopt); }) ==
        "_scaled_dot_product_attention: Explicit attn_mask should not be set when is_causal=True");
  CHECK(error_of([&] { ref::scaled_dot_product_attention(q, f32({2, 5, 3}), v, nullptr, false, std::nullopt); }) ==
        "Expected size for first two dimensions of batch2 tensor to be: [2, 4] but got: [2, 3].");
  CHECK(error_of([&] { ref::scaled_dot_product_attention(q, k, f32({2, 4, 6}), nullptr, false, std::nullopt); }) ==
        "Expected size for first two dimensions of batch2 tensor to be: [2, 5] but got: [2, 4].");
  const Tensor wide = f32({4, 5});
  CHECK(error_of([&] { ref::scaled_dot_product_attention(q, k, v, &wide, false, std::nullopt); }) ==
        "The size of tensor a (3) must match the size of tensor b (4) at non-singleton dimension 1");
  const Tensor long_mask = Tensor::empty(DType::int64, {3, 5});
  CHECK(error_of([&] { ref::scaled_dot_product_attention(q, k, v, &long_mask, false, std::nullopt); }) ==
        "Expected attn_mask dtype to be bool or float or to match query dtype, but got attn_mask.dtype: int64 and "
        "query.dtype: float32 instead.");
  const Tensor k64 = Tensor::empty(DType::float64, {2, 5, 4});
  CHECK(error_of([&] { ref::scaled_dot_product_attention(q, k64, v, nullptr, false, std::nullopt); }) ==
        "Expected query, key, and value to have the same dtype, but got query.dtype: float32 key.dtype: float64 "
        "and value.dtype: float32 instead.");
  const Tensor flat4 = f32({4});
  CHECK(error_of([&] { ref::scaled_dot_product_attention(flat4, flat4, flat4, nullptr, false, std::nullopt); }) ==
        "Expected query, key, and value to all be at least 2 dimensional, but got query.dim: 1 key.dim: 1 and "
        "value.dim: 1 instead.");
}

TEST_CASE("reference: embedding and index_select check every index") {
  const Tensor table = make_f32({4, 2}, {0, 1, 10, 11, 20, 21, 30, 31});
  const Tensor ids = make_int(DType::int64, {2, 2}, {3, 0, 1, 1});
  const Tensor e = ref::embedding(table, ids);
  CHECK(e.sizes == Sizes{2, 2, 2});
  check_values(e, {30, 31, 0, 1, 10, 11, 10, 11});
  check_values(ref::embedding(table, make_int(DType::int32, {}, {2})), {20, 21});
  check_values(ref::embedding(ref::transpose(make_f32({2, 4}, {0, 10, 20, 30, 1, 11, 21, 31}), 0, 1),
                              make_int(DType::int8, {1}, {2})),
               {20, 21});
  CHECK(ref::embedding(table, Tensor::empty(DType::int64, {0, 3})).sizes == Sizes{0, 3, 2});

  const Tensor big_table = Tensor::empty(DType::float32, {512, 4});
  CHECK(error_of([&] { ref::embedding(big_table, make_int(DType::int64, {3}, {1, 600, 2})); }) ==
        "index 600 is out of bounds for dimension 0 with size 512");
  CHECK(error_of([&] { ref::embedding(big_table, make_int(DType::int64, {1}, {-1})); }) ==
        "index -1 is out of bounds for dimension 0 with size 512");
  CHECK(error_of([&] { ref::embedding(big_table, make_f32({1}, {1})); }) ==
        "embedding(): indices must be an integer tensor, but got float32");

  const Tensor a = make_f32({2, 3}, {1, 2, 3, 4, 5, 6});
  check_values(ref::index_select(a, 1, make_int(DType::int64, {3}, {2, 0, 2})), {3, 1, 3, 6, 4, 6});
  check_values(ref::index_select(a, -2, make_int(DType::int32, {1}, {1})), {4, 5, 6});
  check_values(ref::index_select(ref::transpose(a, 0, 1), 0, make_int(DType::int64, {}, {1})), {2, 5});
  CHECK(ref::index_select(a, 0, Tensor::empty(DType::int64, {0})).sizes == Sizes{0, 3});
  CHECK(error_of([&] { ref::index_select(a, 1, make_int(DType::int64, {1}, {3})); }) ==
        "index 3 is out of bounds for dimension 1 with size 3");
  CHECK(error_of([&] { ref::index_select(a, 0, make_int(DType::int64, {1, 1}, {0})); }) ==
        "index_select(): Index is supposed to be a vector");
}

TEST_CASE("reference: reductions") {
  const Tensor a = make_f32({2, 3}, {1, 2, 3, 4, 5, 6});
  check_values(ref::sum(a, {}, false, DType::float32), {21});
  check_values(ref::sum(a, {0}, false, DType::float32), {5, 7, 9});
  check_values(ref::sum(a, {-1}, false, DType::float32), {6, 15});
  CHECK(ref::sum(a, {-1}, true, DType::float32).sizes == Sizes{2, 1});
  CHECK(ref::sum(a, {0, 1}, true, DType::float32).sizes == Sizes{1, 1});
  check_values(ref::sum(ref::transpose(a, 0, 1), {1}, false, DType::float32), {5, 7, 9});
  check_values(ref::sum(make_int(DType::bool_, {3}, {1, 1, 0}), {}, false, DType::int64), {2});
  check_values(ref::sum(Tensor::scalar(DType::float32, 3), {0}, false, DType::float32), {3});
  // In double: 2^24 + 1 + 1 in float32 steps would stay at 2^24.
  check_values(ref::sum(make_f32({3}, {0x1p24, 1, 1}), {}, false, DType::float32), {0x1p24 + 2});
  CHECK(error_of([&] { ref::sum(a, {1, -1}, false, DType::float32); }) ==
        "dim 1 appears multiple times in the list of dims");
  CHECK(error_of([&] { ref::sum(a, {2}, false, DType::float32); }) ==
        "Dimension out of range (expected to be in range of [-2, 1], but got 2)");

  check_values(ref::mean(a, {1}, false, DType::float32), {2, 5});
  check_values(ref::mean(make_int(DType::int64, {2}, {1, 2}), {}, false, DType::float32), {1.5});
  CHECK(error_of([] { ref::mean(make_int(DType::int64, {2}, {1, 2}), {}, false, DType::int64); }) ==
        "mean(): could not infer output dtype. Input dtype must be either a floating point or complex dtype. "
        "Got: int64");

  check_close(ref::norm(make_f32({2}, {3, 4}), 2, {}, false), {5}, 0);
  check_values(ref::norm(make_f32({3}, {3, -4, 0}), 1, {}, false), {7});
  check_values(ref::norm(make_f32({3}, {3, -4, 0}), kInf, {}, false), {4});
  check_values(ref::norm(make_f32({3}, {3, -4, 1}), -kInf, {}, false), {1});
  check_values(ref::norm(make_f32({3}, {3, -4, 0}), 0, {}, false), {2});
  check_close(ref::norm(make_f32({2}, {1, 1}), 3, {}, false), {std::cbrt(2.0)}, 1e-7);
  check_close(ref::norm(a, 2, {1}, true), {std::sqrt(14.0), std::sqrt(77.0)}, 1e-7);
  CHECK(error_of([] { ref::norm(Tensor::empty(DType::float32, {0}), kInf, {}, false); }) ==
        "linalg.vector_norm cannot compute the inf norm on an empty tensor because the operation does not have an "
        "identity");

  check_values(ref::max_all(make_f32({3}, {1, kNan, 3})), {kNan});
  check_values(ref::max_all(a), {6});
  check_values(ref::min_all(a), {1});
  CHECK(ref::max_all(a).dim() == 0);
  CHECK(error_of([] { ref::max_all(Tensor::empty(DType::float32, {0})); }) ==
        "max(): Expected reduction dim to be specified for input.numel() == 0. Specify the reduction dim with the "
        "'dim' argument.");
  CHECK(error_of([] { ref::min_all(Tensor::empty(DType::float32, {2, 0})); }) ==
        "min(): Expected reduction dim to be specified for input.numel() == 0. Specify the reduction dim with the "
        "'dim' argument.");

  CHECK(ints(ref::argmax(make_f32({4}, {1, 3, 3, 2}), std::nullopt, false)) == std::vector<std::int64_t>{1});
  CHECK(ints(ref::argmax(make_f32({4}, {1, kNan, 3, kNan}), std::nullopt, false)) == std::vector<std::int64_t>{1});
  CHECK(ints(ref::argmax(a, 0, false)) == std::vector<std::int64_t>{1, 1, 1});
  CHECK(ints(ref::argmax(a, -1, true)) == std::vector<std::int64_t>{2, 2});
  CHECK(ref::argmax(a, -1, true).sizes == Sizes{2, 1});
  CHECK(ref::argmax(a, std::nullopt, true).sizes == Sizes{1, 1});
  CHECK(ints(ref::argmax(ref::transpose(a, 0, 1), std::nullopt, false)) == std::vector<std::int64_t>{5});
  CHECK(ref::argmax(a, 0, false).dtype == DType::int64);
  CHECK(error_of([] { ref::argmax(Tensor::empty(DType::float32, {0}), std::nullopt, false); }) ==
        "argmax(): Expected reduction dim to be specified for input.numel() == 0.");
  CHECK(error_of([] { ref::argmax(Tensor::empty(DType::float32, {0, 3}), 0, false); }) ==
        "argmax(): Expected reduction dim 0 to have non-zero size.");
  CHECK(ref::argmax(Tensor::empty(DType::float32, {0, 3}), 1, false).sizes == Sizes{0});

  check_values(ref::cumsum(a, 1, DType::float32), {1, 3, 6, 4, 9, 15});
  check_values(ref::cumsum(a, -2, DType::float32), {1, 2, 3, 5, 7, 9});
  check_values(ref::cumsum(ref::transpose(a, 0, 1), 1, DType::float32), {1, 5, 2, 7, 3, 9});
  CHECK(ints(ref::cumsum(make_int(DType::bool_, {3}, {1, 0, 1}), 0, DType::int64)) ==
        std::vector<std::int64_t>{1, 1, 2});
  check_values(ref::cumsum(Tensor::scalar(DType::float32, 2), 0, DType::float32), {2});
}

TEST_CASE("reference: views share the buffer") {
  const Tensor base = make_f32({2, 3, 4}, std::vector<double>(24, 1.0));
  const auto shares = [&](const Tensor& v) { return v.buffer == base.buffer && v.buffer->data == base.buffer->data; };

  const Tensor p = ref::permute(base, {2, 0, 1});
  CHECK(shares(p));
  CHECK(p.sizes == Sizes{4, 2, 3});
  CHECK(p.strides == Sizes{1, 12, 4});
  CHECK(ref::permute(base, {-1, 0, 1}).strides == Sizes{1, 12, 4});

  const Tensor t = ref::transpose(base, -1, 0);
  CHECK(shares(t));
  CHECK(t.strides == Sizes{1, 4, 12});

  const Tensor s = ref::slice(base, 2, 1, std::nullopt, 2);
  CHECK(shares(s));
  CHECK(s.sizes == Sizes{2, 3, 2});
  CHECK(s.strides == Sizes{12, 4, 2});
  CHECK(s.offset == 1);
  const Tensor s2 = ref::slice(base, 1, -2, 100, 1);
  CHECK(s2.sizes == Sizes{2, 2, 4});
  CHECK(s2.offset == 4);
  CHECK(ref::slice(base, 1, 5, 2, 1).sizes == Sizes{2, 0, 4});
  CHECK(ref::slice(base, 1, 2, 1, 1).sizes == Sizes{2, 0, 4});

  const Tensor e = ref::expand(ref::slice(base, 1, 0, 1, 1), {5, 2, 7, 4});
  CHECK(shares(e));
  CHECK(e.sizes == Sizes{5, 2, 7, 4});
  CHECK(e.strides == Sizes{0, 12, 0, 1});
  CHECK(ref::expand(base, {-1, 3, -1}).strides == base.strides);
  CHECK(ref::expand(Tensor::scalar(DType::float32, 1.5), {2, 3}).strides == Sizes{0, 0});

  const Tensor sel = ref::select(base, 1, -1);
  CHECK(shares(sel));
  CHECK(sel.sizes == Sizes{2, 4});
  CHECK(sel.offset == 8);
  const Tensor n = ref::narrow(base, 2, -2, 2);
  CHECK(shares(n));
  CHECK(n.offset == 2);
  CHECK(n.sizes == Sizes{2, 3, 2});

  const Tensor u = ref::unsqueeze(base, 1);
  CHECK(shares(u));
  CHECK(u.sizes == Sizes{2, 1, 3, 4});
  CHECK(u.strides == Sizes{12, 12, 4, 1});
  CHECK(ref::unsqueeze(base, -1).strides == Sizes{12, 4, 1, 1});
  CHECK(ref::unsqueeze(Tensor::scalar(DType::float32, 3), 0).sizes == Sizes{1});
  CHECK(ref::squeeze(u, 1).sizes == Sizes{2, 3, 4});
  CHECK(ref::squeeze(u, 0).sizes == Sizes{2, 1, 3, 4});
  CHECK(ref::squeeze(ref::unsqueeze(u, 0), std::nullopt).sizes == Sizes{2, 3, 4});
  CHECK(ref::squeeze(Tensor::scalar(DType::float32, 3), -1).sizes == Sizes{});

  const Tensor v = ref::view(base, {6, -1});
  CHECK(shares(v));
  CHECK(v.sizes == Sizes{6, 4});
  CHECK(v.strides == Sizes{4, 1});
  // A view may split and merge dims within a contiguous run, even of a non-contiguous tensor.
  const Tensor pv = ref::view(p, {2, 2, 6});
  CHECK(shares(pv));
  CHECK(pv.strides == Sizes{2, 1, 4});
  CHECK(ref::view(ref::slice(base, 2, 0, 2, 1), {6, 2}).strides == Sizes{4, 1});

  const std::vector<Tensor> parts = ref::split(base, 2, -1);
  REQUIRE(parts.size() == 2);
  CHECK(shares(parts[1]));
  CHECK(parts[1].offset == 2);
  const std::vector<Tensor> uneven = ref::split(base, 2, 1);
  REQUIRE(uneven.size() == 2);
  CHECK(uneven[1].sizes == Sizes{2, 1, 4});
  const std::vector<Tensor> chunks = ref::chunk(make_f32({5}, {0, 1, 2, 3, 4}), 3, 0);
  REQUIRE(chunks.size() == 3);
  CHECK(chunks[2].sizes == Sizes{1});
  CHECK(ref::chunk(make_f32({6}, {0, 1, 2, 3, 4, 5}), 4, 0).size() == 3);
  CHECK(ref::chunk(Tensor::empty(DType::float32, {3, 0}), 3, 1).size() == 3);
  CHECK(ref::split(Tensor::empty(DType::float32, {3, 0}), 0, 1).size() == 1);

  const Tensor f = ref::flatten(base, 1, 2);
  CHECK(shares(f));
  CHECK(f.sizes == Sizes{2, 12});
  CHECK(ref::flatten(Tensor::scalar(DType::float32, 3), 0, -1).sizes == Sizes{1});

  // reshape and flatten copy when no view exists; view refuses.
  const Tensor r = ref::reshape(t, {24});
  CHECK_FALSE(shares(r));
  CHECK(ref::flatten(t, 0, 2).buffer != base.buffer);
  CHECK(shares(ref::reshape(base, {4, 6})));
  CHECK(error_of([&] { ref::view(t, {24}); }) ==
        "view size is not compatible with input tensor's size and stride (at least one dimension spans across two "
        "contiguous subspaces). Use .reshape(...) instead.");

  // Values seen through views.
  const Tensor m = make_f32({2, 3}, {1, 2, 3, 4, 5, 6});
  check_values(ref::transpose(m, 0, 1), {1, 4, 2, 5, 3, 6});
  check_values(ref::reshape(ref::transpose(m, 0, 1), {6}), {1, 4, 2, 5, 3, 6});
  check_values(ref::slice(m, 1, std::nullopt, std::nullopt, 2), {1, 3, 4, 6});
  check_values(ref::expand(ref::select(m, 0, 1), {2, 3}), {4, 5, 6, 4, 5, 6});
}

TEST_CASE("reference: view messages") {
  const Tensor a = Tensor::empty(DType::float32, {2, 8, 9});
  CHECK(error_of([&] { ref::view(a, {2, 56}); }) == "shape '[2, 56]' is invalid for input of size 144");
  CHECK(error_of([&] { ref::reshape(a, {-1, 7}); }) == "shape '[-1, 7]' is invalid for input of size 144");
  CHECK(error_of([&] { ref::view(a, {-1, -1}); }) == "only one dimension can be inferred");
  CHECK(error_of([&] { ref::view(a, {-2, 72}); }) == "invalid shape dimension -2 at index 0 of shape [-2, 72]");
  CHECK(error_of([] { ref::view(Tensor::empty(DType::float32, {4, 0, 3}), {-1, 0}); }) ==
        "cannot reshape tensor of 0 elements into shape [-1, 0] because the unspecified dimension size -1 can be any "
        "value and is ambiguous");
  CHECK(ref::view(Tensor::empty(DType::float32, {4, 0, 3}), {-1}).sizes == Sizes{0});
  CHECK(ref::view(Tensor::empty(DType::float32, {4, 0, 3}), {2, 0, 5}).sizes == Sizes{2, 0, 5});

  const Tensor b = Tensor::empty(DType::float32, {2, 7});
  CHECK(error_of([&] { ref::expand(b, {2, 3}); }) ==
        "The expanded size of the tensor (3) must match the existing size (7) at non-singleton dimension 1.  Target "
        "sizes: [2, 3].  Tensor sizes: [2, 7]");
  CHECK(error_of([&] { ref::expand(b, {7}); }) ==
        "expand(float32{[2, 7]}, size=[7]): the number of sizes provided (1) must be greater or equal to the number of "
        "dimensions in the tensor (2)");
  CHECK(error_of([&] { ref::expand(b, {-1, 2, 7}); }) ==
        "The expanded size of the tensor (-1) isn't allowed in a leading, non-existing dimension 0");
  CHECK(error_of([&] { ref::expand(Tensor::empty(DType::float32, {1}), {1LL << 40, 1LL << 40}); }) ==
        "expand(): the shape [1099511627776, 1099511627776] has too many elements");

  CHECK(error_of([&] { ref::permute(a, {0, 1}); }) ==
        "permute(): number of dimensions in the tensor input does not match the length of the desired ordering of "
        "dimensions i.e. input.dim() = 3 is not equal to len(dims) = 2");
  CHECK(error_of([&] { ref::permute(a, {0, 1, 1}); }) == "permute(): duplicate dims are not allowed.");
  CHECK(error_of([&] { ref::permute(a, {0, 1, 3}); }) ==
        "Dimension out of range (expected to be in range of [-3, 2], but got 3)");
  const Tensor c = Tensor::empty(DType::float32, {3, 4});
  CHECK(error_of([&] { ref::select(c, 1, 5); }) ==
        "select(): index 5 out of range for tensor of size [3, 4] at dimension 1");
  CHECK(error_of([&] { ref::select(c, 1, -5); }) ==
        "select(): index -5 out of range for tensor of size [3, 4] at dimension 1");
  CHECK(error_of([] { ref::select(Tensor::scalar(DType::float32, 1), 0, 0); }) ==
        "select() cannot be applied to a 0-dim tensor.");
  const Tensor d = Tensor::empty(DType::float32, {3, 6});
  CHECK(error_of([&] { ref::narrow(d, 1, 5, 3); }) == "start (5) + length (3) exceeds dimension size (6).");
  CHECK(error_of([&] { ref::narrow(d, 1, 7, 0); }) ==
        "start out of range (expected to be in range of [-6, 6], but got 7)");
  CHECK(error_of([&] { ref::narrow(d, 1, 1, -1); }) == "narrow(): length must be non-negative.");
  CHECK(error_of([&] { ref::slice(d, 1, 0, 3, 0); }) == "slice step must be positive");
  CHECK(error_of([&] { ref::split(d, 0, 1); }) ==
        "split_size can only be 0 if dimension size is 0, but got dimension size of 6");
  CHECK(error_of([&] { ref::split(d, -1, 1); }) == "split expects split_size be non-negative, but got split_size=-1");
  CHECK(error_of([&] { ref::chunk(d, 0, 1); }) == "chunk expects `chunks` to be greater than 0, got: 0");
  CHECK(error_of([&] { ref::flatten(a, 2, 1); }) == "flatten() has invalid args: start_dim cannot come after end_dim");
  // A huge slice step does not overflow the stride.
  CHECK(ref::slice(d, 1, 1, std::nullopt, std::numeric_limits<std::int64_t>::max()).sizes == Sizes{3, 1});
}

TEST_CASE("reference: full, arange, cat and stack") {
  check_values(ref::full({2, 2}, Scalar::of_double(0.1), DType::float32),
               std::vector<double>(4, static_cast<float>(0.1)));
  CHECK(ints(ref::full({3}, Scalar::of_bool(true), DType::bool_)) == std::vector<std::int64_t>{1, 1, 1});
  CHECK(ref::full({0, 3}, Scalar::of_int(1), DType::int64).numel() == 0);

  check_values(ref::arange(0, 5, 1, DType::int64), {0, 1, 2, 3, 4});
  check_close(ref::arange(0, 1, 0.1, DType::float32), {0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9}, 1e-7);
  check_values(ref::arange(5, 0, -2, DType::float32), {5, 3, 1});
  check_values(ref::arange(0, 1, 0.1, DType::int64), std::vector<double>(10, 0.0));  // as PyTorch: step truncates to 0
  check_values(ref::arange(0.5, 3.5, 1, DType::int64), {0, 1, 2});
  CHECK(ref::arange(3, 3, 1, DType::int64).sizes == Sizes{0});
  CHECK(error_of([] { ref::arange(0, 10, 0, DType::int64); }) == "step must be nonzero");
  CHECK(error_of([] { ref::arange(10, 0, 1, DType::int64); }) ==
        "upper bound and lower bound inconsistent with step sign");
  CHECK(error_of([] { ref::arange(0, kInf, 1, DType::float32); }) == "unsupported range: 0 -> inf");
  CHECK(error_of([] { ref::arange(0, 1e30, 1e-30, DType::float32); }) == "invalid size, possible overflow?");

  const Tensor a = make_f32({2, 1}, {1, 2});
  const Tensor b = make_int(DType::int64, {2, 2}, {3, 4, 5, 6});
  const Tensor c = ref::cat({a, b, Tensor::empty(DType::float64, {0})}, -1);
  CHECK(c.dtype == DType::float64);  // promoted over every tensor, skipped ones too
  CHECK(c.sizes == Sizes{2, 3});
  check_values(c, {1, 3, 4, 2, 5, 6});
  check_values(ref::cat({ref::transpose(b, 0, 1), b}, 0), {3, 5, 4, 6, 3, 4, 5, 6});
  CHECK(ref::cat({Tensor::empty(DType::float32, {0})}, 0).sizes == Sizes{0});
  CHECK(ref::cat({Tensor::empty(DType::float32, {2, 0}), a}, 1).sizes == Sizes{2, 1});
  CHECK(error_of([] { ref::cat({}, 0); }) == "torch.cat(): expected a non-empty list of Tensors");
  CHECK(error_of([] { ref::cat({Tensor::empty(DType::float32, {2, 3}), Tensor::empty(DType::float32, {2, 4})}, 0); }) ==
        "Sizes of tensors must match except in dimension 0. Expected size 3 but got size 4 for tensor number 1 in the "
        "list.");
  CHECK(error_of([] { ref::cat({Tensor::empty(DType::float32, {2, 3}), Tensor::empty(DType::float32, {2})}, 0); }) ==
        "Tensors must have same number of dimensions: got 2 and 1");
  CHECK(error_of([] { ref::cat({Tensor::empty(DType::float32, {2, 3})}, 2); }) ==
        "Dimension out of range (expected to be in range of [-2, 1], but got 2)");
  CHECK(error_of([] { ref::cat({Tensor::scalar(DType::float32, 1)}, 0); }) ==
        "zero-dimensional tensor (at position 0) cannot be concatenated");

  const Tensor x = make_f32({2}, {1, 2});
  const Tensor y = make_f32({2}, {3, 4});
  const Tensor s0 = ref::stack({x, y}, 0);
  CHECK(s0.sizes == Sizes{2, 2});
  check_values(s0, {1, 2, 3, 4});
  const Tensor s1 = ref::stack({x, y}, -1);
  CHECK(s1.sizes == Sizes{2, 2});
  check_values(s1, {1, 3, 2, 4});
  CHECK(ref::stack({Tensor::scalar(DType::float32, 1), Tensor::scalar(DType::float32, 2)}, 0).sizes == Sizes{2});
  CHECK(error_of([] { ref::stack({}, 0); }) == "stack expects a non-empty TensorList");
  const Tensor two_by_four = Tensor::empty(DType::float32, {2, 4});
  CHECK(error_of([&] { ref::stack({Tensor::empty(DType::float32, {2, 3}), two_by_four}, 0); }) ==
        "stack expects each tensor to be equal size, but got [2, 3] at entry 0 and [2, 4] at entry 1");
  CHECK(error_of([&] { ref::stack({x, y}, 2); }) ==
        "Dimension out of range (expected to be in range of [-2, 1], but got 2)");
}

TEST_CASE("reference: size-0 dims work everywhere") {
  const Tensor e = Tensor::empty(DType::float32, {0, 3});
  const Tensor row = make_f32({3}, {1, 2, 3});
  CHECK(ref::binary(BinaryOp::add, e, row, DType::float32, DType::float32).sizes == Sizes{0, 3});
  CHECK(ref::unary(UnaryOp::exp, e, DType::float32).sizes == Sizes{0, 3});
  CHECK(ref::softmax(e, 1, DType::float32).sizes == Sizes{0, 3});
  CHECK(ref::softmax(Tensor::empty(DType::float32, {2, 0}), 1, DType::float32).sizes == Sizes{2, 0});
  CHECK(ref::layer_norm(e, {3}, nullptr, nullptr, 1e-5).sizes == Sizes{0, 3});
  check_values(ref::sum(e, {0}, false, DType::float32), {0, 0, 0});
  check_values(ref::sum(e, {}, false, DType::float32), {0});
  check_values(ref::mean(e, {0}, false, DType::float32), {kNan, kNan, kNan});
  CHECK(ref::sum(e, {1}, false, DType::float32).sizes == Sizes{0});
  check_values(ref::norm(e, 2, {}, false), {0});
  CHECK(ref::cumsum(e, 0, DType::float32).sizes == Sizes{0, 3});
  CHECK(ref::cast(e, DType::int8).sizes == Sizes{0, 3});
  CHECK(ref::masked_fill(e, make_int(DType::bool_, {3}, {1, 0, 1}), Scalar::of_int(0)).sizes == Sizes{0, 3});
  CHECK(ref::where(make_int(DType::bool_, {3}, {1, 0, 1}), e, row, DType::float32).sizes == Sizes{0, 3});
  CHECK(ref::linear(e, Tensor::empty(DType::float32, {5, 3}), nullptr).sizes == Sizes{0, 5});
  CHECK(ref::cat({e, e}, 0).sizes == Sizes{0, 3});
  CHECK(ref::transpose(e, 0, 1).sizes == Sizes{3, 0});
  CHECK(ref::reshape(ref::transpose(e, 0, 1), {-1}).sizes == Sizes{0});
  CHECK(ref::expand(e, {2, 0, 3}).sizes == Sizes{2, 0, 3});
  CHECK(ref::scaled_dot_product_attention(Tensor::empty(DType::float32, {2, 0, 4}), random_f32({2, 5, 4}, 1),
                                          random_f32({2, 5, 2}, 2), nullptr, false, std::nullopt)
            .sizes == Sizes{2, 0, 2});
}

TEST_CASE("reference: non-contiguous inputs give the same results as contiguous ones") {
  const Tensor base = random_f32({4, 6}, 41);
  // Transposed, sliced with a step, expanded (0-stride) and offset views.
  const std::vector<Tensor> odd = {ref::transpose(base, 0, 1), ref::slice(ref::slice(base, 0, 1, 4, 2), 1, 1, 6, 2),
                                   ref::expand(ref::slice(base, 0, 2, 3, 1), {3, 6}), ref::select(base, 1, 3)};
  for (const Tensor& t : odd) {
    const Tensor c = ref::contiguous(t);
    CHECK(c.is_contiguous());
    check_values(ref::unary(UnaryOp::gelu_erf, t, DType::float32),
                 values(ref::unary(UnaryOp::gelu_erf, c, DType::float32)));
    check_values(ref::binary(BinaryOp::mul, t, t, DType::float32, DType::float32),
                 values(ref::binary(BinaryOp::mul, c, c, DType::float32, DType::float32)));
    check_values(ref::sum(t, {-1}, false, DType::float32), values(ref::sum(c, {-1}, false, DType::float32)));
    check_values(ref::softmax(t, 0, DType::float32), values(ref::softmax(c, 0, DType::float32)));
    check_values(ref::cumsum(t, 0, DType::float32), values(ref::cumsum(c, 0, DType::float32)));
    check_values(ref::argmax(t, 0, false), values(ref::argmax(c, 0, false)));
    check_values(ref::cast(t, DType::float16), values(ref::cast(c, DType::float16)));
    const Tensor w = random_f32({3, t.sizes.back()}, 42);
    check_values(ref::linear(t, w, nullptr), values(ref::linear(c, w, nullptr)));
  }
  // Odd strides built by hand: a column of a [6, 4] buffer read backwards is not
  // expressible by slice, but the walk handles any strides.
  const Tensor col = restride(base, {3, 2}, {8, 5}, 1);
  std::vector<double> expected;
  for (const std::int64_t i : {1, 6, 9, 14, 17, 22}) expected.push_back(kiln::kernels::load_double(base, i));
  check_values(ref::contiguous(col), expected);
}
