// Buffers, tensors and the element conversions every reference kernel goes through.
//
// Elements are read and written with memcpy: a borrowed buffer (a mapped model file) may
// be misaligned for its dtype, and memcpy compiles to a plain load either way.
#include "kernels/tensor.hpp"

#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

#include "kiln/error.hpp"

namespace kiln::kernels {

namespace {

// More than any model needs, and the most AddressSanitizer's allocator accepts.
constexpr std::size_t kMaxBytes = std::size_t{1} << 40;
constexpr std::size_t kAlignment = 64;

[[noreturn]] void fail(std::string message) { throw Error::bad_input("", "", std::move(message)); }

template <class T>
T read(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <class T>
void write(std::byte* p, T v) {
  std::memcpy(p, &v, sizeof v);
}

std::byte* element(const Tensor& t, std::int64_t offset) {
  return t.bytes() + offset * static_cast<std::int64_t>(dtype_size(t.dtype));
}

std::byte* writable_element(Tensor& t, std::int64_t offset) {
  if (!t.buffer->writable) throw Error(ErrorKind::internal, "", "", "a kernel wrote into a read-only tensor");
  return element(t, offset);
}

// The element offset of logical (row-major) index `i`.
std::int64_t offset_of(const Tensor& t, std::int64_t i) {
  std::int64_t offset = 0;
  for (std::size_t d = t.sizes.size(); d-- > 0;) {
    const std::int64_t size = t.sizes[d];
    offset += (i % size) * t.strides[d];
    i /= size;
  }
  return offset;
}

}  // namespace

namespace {
thread_local Allocator current_allocator;
}  // namespace

AllocatorScope::AllocatorScope(Allocator allocator) : previous_(current_allocator) { current_allocator = allocator; }
AllocatorScope::~AllocatorScope() { current_allocator = previous_; }

std::shared_ptr<Buffer> Buffer::allocate(std::size_t bytes, bool zeroed) {
  if (bytes > kMaxBytes) {
    fail(std::string("cannot allocate ").append(std::to_string(bytes)).append(" bytes: more than 2^40"));
  }
  if (current_allocator.allocate) {
    if (auto planned = current_allocator.allocate(current_allocator.self, bytes, zeroed)) return planned;
  }
  // calloc, not new + memset: large zeroed blocks come as untouched pages. Over-allocating
  // by the alignment lets the start be rounded up to it.
  void* raw = zeroed ? std::calloc(bytes + kAlignment, 1) : std::malloc(bytes + kAlignment);
  if (!raw) fail(std::string("out of memory allocating ").append(std::to_string(bytes)).append(" bytes"));
  const auto address = reinterpret_cast<std::uintptr_t>(raw);
  const std::uintptr_t aligned = (address + kAlignment - 1) & ~std::uintptr_t{kAlignment - 1};
  auto buffer = std::make_shared<Buffer>();
  buffer->data = static_cast<std::byte*>(raw) + (aligned - address);
  buffer->size = bytes;
  buffer->writable = true;
  buffer->owner = std::shared_ptr<const void>(raw, [](const void* p) { std::free(const_cast<void*>(p)); });
  return buffer;
}

std::shared_ptr<Buffer> Buffer::borrow(const std::byte* data, std::size_t size, std::shared_ptr<const void> owner) {
  auto buffer = std::make_shared<Buffer>();
  // Never written through: `writable` is false and every store checks it.
  buffer->data = const_cast<std::byte*>(data);
  buffer->size = size;
  buffer->writable = false;
  buffer->owner = std::move(owner);
  return buffer;
}

Tensor Tensor::empty(DType dtype, std::vector<std::int64_t> sizes) { return allocated(dtype, std::move(sizes), true); }

Tensor Tensor::uninitialized(DType dtype, std::vector<std::int64_t> sizes) {
  return allocated(dtype, std::move(sizes), false);
}

Tensor Tensor::allocated(DType dtype, std::vector<std::int64_t> sizes, bool zeroed) {
  std::int64_t numel = 1;
  for (const std::int64_t s : sizes) {
    if (s < 0) {
      fail(std::string("Trying to create tensor with negative dimension ")
               .append(std::to_string(s))
               .append(": ")
               .append(shape_string(sizes)));
    }
  }
  bool too_large = false;
  for (const std::int64_t s : sizes) too_large = too_large || __builtin_mul_overflow(numel, s, &numel);
  const auto max_elements = static_cast<std::int64_t>(kMaxBytes / dtype_size(dtype));
  if (too_large || numel > max_elements) {
    fail(std::string("cannot allocate a ")
             .append(dtype_name(dtype))
             .append(" tensor of shape ")
             .append(shape_string(sizes))
             .append(": more than 2^40 bytes"));
  }
  Tensor t;
  t.dtype = dtype;
  t.strides = contiguous_strides(sizes);
  t.sizes = std::move(sizes);
  t.buffer = Buffer::allocate(static_cast<std::size_t>(numel) * dtype_size(dtype), zeroed);
  return t;
}

Tensor Tensor::scalar(DType dtype, double value) {
  Tensor t = empty(dtype, {});
  store_double(t, 0, value);
  return t;
}

Tensor Tensor::scalar_int(DType dtype, std::int64_t value) {
  Tensor t = empty(dtype, {});
  store_int(t, 0, value);
  return t;
}

std::int64_t Tensor::numel() const {
  std::int64_t n = 1;
  for (const std::int64_t s : sizes) {
    // Only a hand-built tensor can get here (empty and expand check their sizes).
    if (__builtin_mul_overflow(n, s, &n)) {
      fail(std::string("tensor of shape ").append(shape_string(sizes)).append(" has too many elements"));
    }
  }
  return n;
}

bool Tensor::is_contiguous() const {
  // PyTorch's rule: size-1 dims may have any stride, and an empty tensor is contiguous.
  std::int64_t expected = 1;
  for (std::size_t d = sizes.size(); d-- > 0;) {
    if (sizes[d] == 0) return true;
  }
  for (std::size_t d = sizes.size(); d-- > 0;) {
    if (sizes[d] == 1) continue;
    if (strides[d] != expected) return false;
    expected *= sizes[d];
  }
  return true;
}

std::vector<std::int64_t> contiguous_strides(const std::vector<std::int64_t>& sizes) {
  std::vector<std::int64_t> strides(sizes.size());
  std::int64_t stride = 1;
  for (std::size_t d = sizes.size(); d-- > 0;) {
    strides[d] = stride;
    // Size 0 keeps later strides nonzero, as PyTorch's (max(size, 1)).
    stride *= sizes[d] > 1 ? sizes[d] : 1;
  }
  return strides;
}

std::string shape_string(const std::vector<std::int64_t>& sizes) {
  std::string s = "[";
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    if (i) s.append(", ");
    s.append(std::to_string(sizes[i]));
  }
  return s.append("]");
}

bool is_floating(DType t) {
  return t == DType::float16 || t == DType::bfloat16 || t == DType::float32 || t == DType::float64;
}

// --- conversions ---

std::uint16_t float_to_half(float v) {
  const auto f = std::bit_cast<std::uint32_t>(v);
  const auto sign = static_cast<std::uint16_t>((f >> 16) & 0x8000u);
  const std::uint32_t magnitude = f & 0x7FFFFFFFu;
  if (magnitude > 0x7F800000u) return static_cast<std::uint16_t>(sign | 0x7E00u);
  if (magnitude >= 0x38800000u) {  // at least 2^-14, half's smallest normal
    // Rebias the exponent (127 -> 15) and round the 13 dropped mantissa bits to nearest
    // even; a carry out of the mantissa correctly bumps the exponent, up to infinity.
    std::uint32_t m = magnitude - 0x38000000u;
    m += 0x0FFFu + ((m >> 13) & 1u);
    const std::uint32_t h = m >> 13;
    return static_cast<std::uint16_t>(sign | (h >= 0x7C00u ? 0x7C00u : h));
  }
  // Subnormal half: the value in units of 2^-24, rounded to nearest even.
  const std::uint32_t exponent = magnitude >> 23;
  if (exponent < 102) return sign;  // below 2^-25: rounds to zero (2^-25 itself ties to 0)
  const std::uint32_t mantissa = (magnitude & 0x7FFFFFu) | 0x800000u;
  const std::uint32_t shift = 126 - exponent;  // 14..24
  std::uint32_t h = mantissa >> shift;
  const std::uint32_t rest = mantissa & ((1u << shift) - 1);
  const std::uint32_t halfway = 1u << (shift - 1);
  if (rest > halfway || (rest == halfway && (h & 1u))) ++h;
  return static_cast<std::uint16_t>(sign | h);
}

float half_to_float(std::uint16_t bits) {
  const std::uint32_t sign = static_cast<std::uint32_t>(bits & 0x8000u) << 16;
  const std::uint32_t exponent = (bits >> 10) & 0x1Fu;
  const std::uint32_t mantissa = bits & 0x3FFu;
  if (exponent == 0) {
    const float v = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -v : v;
  }
  if (exponent == 0x1F) return std::bit_cast<float>(sign | 0x7F800000u | (mantissa << 13));
  return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

std::uint16_t float_to_bfloat16(float v) {
  if (std::isnan(v)) return 0x7FC0;
  const auto f = std::bit_cast<std::uint32_t>(v);
  // Cannot overflow: the largest non-NaN pattern is 0xFF800000.
  return static_cast<std::uint16_t>((f + 0x7FFFu + ((f >> 16) & 1u)) >> 16);
}

float bfloat16_to_float(std::uint16_t bits) { return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16); }

double round_to(DType dtype, double v) {
  switch (dtype) {
    case DType::float64: return v;
    case DType::float32: return static_cast<float>(v);
    case DType::float16: return half_to_float(float_to_half(static_cast<float>(v)));
    case DType::bfloat16: return bfloat16_to_float(float_to_bfloat16(static_cast<float>(v)));
    default: return static_cast<double>(floating_to_int(dtype, v));
  }
}

double int_to_floating(DType dtype, std::int64_t v) {
  switch (dtype) {
    case DType::float64: return static_cast<double>(v);
    case DType::float32: return static_cast<float>(v);
    case DType::float16: return half_to_float(float_to_half(static_cast<float>(v)));
    case DType::bfloat16: return bfloat16_to_float(float_to_bfloat16(static_cast<float>(v)));
    default: return static_cast<double>(wrap_to(dtype, v));
  }
}

std::int64_t floating_to_int(DType dtype, double v) {
  switch (dtype) {
    case DType::bool_: return v != 0;
    case DType::int64:
      return v >= -0x1p63 && v < 0x1p63 ? static_cast<std::int64_t>(v) : std::numeric_limits<std::int64_t>::min();
    default: {
      // Truncation keeps (-2^31 - 1, 2^31) inside int32.
      const std::int32_t w = v > -2147483649.0 && v < 2147483648.0 ? static_cast<std::int32_t>(v)
                                                                    : std::numeric_limits<std::int32_t>::min();
      return wrap_to(dtype, w);
    }
  }
}

std::int64_t wrap_to(DType dtype, std::int64_t v) {
  switch (dtype) {
    case DType::bool_: return v != 0;
    case DType::int8: return static_cast<std::int8_t>(v);
    case DType::uint8: return static_cast<std::uint8_t>(v);
    case DType::int16: return static_cast<std::int16_t>(v);
    case DType::int32: return static_cast<std::int32_t>(v);
    default: return v;
  }
}

// --- loads and stores ---

double load_double_at(const Tensor& t, std::int64_t offset) {
  const std::byte* p = element(t, offset);
  switch (t.dtype) {
    case DType::float32: return read<float>(p);
    case DType::float64: return read<double>(p);
    case DType::float16: return half_to_float(read<std::uint16_t>(p));
    case DType::bfloat16: return bfloat16_to_float(read<std::uint16_t>(p));
    case DType::int8: return read<std::int8_t>(p);
    case DType::int16: return read<std::int16_t>(p);
    case DType::int32: return read<std::int32_t>(p);
    case DType::int64: return static_cast<double>(read<std::int64_t>(p));
    case DType::uint8: return read<std::uint8_t>(p);
    case DType::bool_: return read<std::uint8_t>(p) != 0;  // a borrowed byte may be neither 0 nor 1
  }
  return 0;
}

std::int64_t load_int_at(const Tensor& t, std::int64_t offset) {
  const std::byte* p = element(t, offset);
  switch (t.dtype) {
    case DType::int8: return read<std::int8_t>(p);
    case DType::int16: return read<std::int16_t>(p);
    case DType::int32: return read<std::int32_t>(p);
    case DType::int64: return read<std::int64_t>(p);
    case DType::uint8: return read<std::uint8_t>(p);
    case DType::bool_: return read<std::uint8_t>(p) != 0;
    default: return floating_to_int(DType::int64, load_double_at(t, offset));
  }
}

double load_double(const Tensor& t, std::int64_t i) { return load_double_at(t, offset_of(t, i)); }

std::int64_t load_int(const Tensor& t, std::int64_t i) { return load_int_at(t, offset_of(t, i)); }

void store_double(Tensor& t, std::int64_t i, double v) {
  std::byte* p = writable_element(t, i);
  switch (t.dtype) {
    case DType::float32: write(p, static_cast<float>(v)); return;
    case DType::float64: write(p, v); return;
    case DType::float16: write(p, float_to_half(static_cast<float>(v))); return;
    case DType::bfloat16: write(p, float_to_bfloat16(static_cast<float>(v))); return;
    default: store_int(t, i, floating_to_int(t.dtype, v)); return;
  }
}

void store_int(Tensor& t, std::int64_t i, std::int64_t v) {
  std::byte* p = writable_element(t, i);
  switch (t.dtype) {
    case DType::float32: write(p, static_cast<float>(v)); return;
    case DType::float64: write(p, static_cast<double>(v)); return;
    case DType::float16: write(p, float_to_half(static_cast<float>(v))); return;
    case DType::bfloat16: write(p, float_to_bfloat16(static_cast<float>(v))); return;
    case DType::int8: write(p, static_cast<std::int8_t>(v)); return;
    case DType::int16: write(p, static_cast<std::int16_t>(v)); return;
    case DType::int32: write(p, static_cast<std::int32_t>(v)); return;
    case DType::int64: write(p, v); return;
    case DType::uint8: write(p, static_cast<std::uint8_t>(v)); return;
    case DType::bool_: write(p, static_cast<std::uint8_t>(v != 0)); return;
  }
}

}  // namespace kiln::kernels
