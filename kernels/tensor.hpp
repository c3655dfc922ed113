// kiln::kernels::Tensor — a strided view of typed elements in a shared buffer, the one
// runtime tensor type kernels take and return.
//
// A Buffer is either allocated by kiln (64-byte aligned, writable; zeroed unless a kernel
// that writes every element asks otherwise) or borrowed from
// a mapped model file (read-only; `owner` keeps the mapping alive), so weights are used in
// place. Views (permute, slice, expand...) share their base's buffer with other sizes,
// strides and offset, as PyTorch's do; strides may be 0 (expand) and are in elements.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kiln/dtype.hpp"

namespace kiln::kernels {

struct Buffer {
  std::byte* data = nullptr;
  std::size_t size = 0;  // bytes
  bool writable = false;
  std::shared_ptr<const void> owner;  // what keeps `data` alive
  // The memory space the bytes belong to ("host" for the CPU); a provider with its own
  // memory tags its buffers, so the executor can check every kernel reads its own space.
  const char* space = "host";

  // `bytes` bytes (at least one allocated, so data is never null), zeroed, or left as they
  // are with `zeroed` false (for a kernel that writes them all before anything reads them:
  // zeroing an output only to overwrite it costs a pass over its memory). Comes from the
  // calling thread's AllocatorScope when one is active and takes the request, else the heap.
  static std::shared_ptr<Buffer> allocate(std::size_t bytes, bool zeroed = true);
  // Someone else's bytes, read-only.
  static std::shared_ptr<Buffer> borrow(const std::byte* data, std::size_t size, std::shared_ptr<const void> owner);
};

// Where Buffer::allocate's memory comes from while a kernel runs: the executor installs one
// around each kernel call so that outputs it planned land in its arena (engine/exec/
// memory_plan.hpp). `allocate` returns a writable buffer of exactly `bytes` (zeroed when
// `zeroed`), or null to let the request go to the heap. Thread-local: work a kernel hands
// to other threads allocates from the heap.
struct Allocator {
  std::shared_ptr<Buffer> (*allocate)(void* self, std::size_t bytes, bool zeroed) = nullptr;
  void* self = nullptr;
};

class AllocatorScope {
 public:
  explicit AllocatorScope(Allocator allocator);
  ~AllocatorScope();
  AllocatorScope(const AllocatorScope&) = delete;
  AllocatorScope& operator=(const AllocatorScope&) = delete;

 private:
  Allocator previous_;
};

struct Tensor {
  DType dtype = DType::float32;
  std::vector<std::int64_t> sizes;
  std::vector<std::int64_t> strides;  // elements
  std::int64_t offset = 0;            // elements from buffer->data
  std::shared_ptr<Buffer> buffer;

  // A new contiguous zero-filled tensor. Throws kiln::Error (bad_input) when the element
  // count overflows or a size is negative.
  static Tensor empty(DType dtype, std::vector<std::int64_t> sizes);
  // The same, its elements not initialised: for kernels that write every one of them.
  static Tensor uninitialized(DType dtype, std::vector<std::int64_t> sizes);
  // A 0-dim tensor holding one value.
  static Tensor scalar(DType dtype, double value);
  static Tensor scalar_int(DType dtype, std::int64_t value);

  std::size_t dim() const { return sizes.size(); }
  std::int64_t numel() const;
  bool is_contiguous() const;
  // Address of element 0 (at `offset`).
  std::byte* bytes() const { return buffer->data + offset * static_cast<std::int64_t>(dtype_size(dtype)); }
  template <class T>
  T* data() const {
    return reinterpret_cast<T*>(bytes());
  }

 private:
  static Tensor allocated(DType dtype, std::vector<std::int64_t> sizes, bool zeroed);
};

// Row-major strides for `sizes`.
std::vector<std::int64_t> contiguous_strides(const std::vector<std::int64_t>& sizes);
// "[2, 3]": sizes as PyTorch prints them in messages.
std::string shape_string(const std::vector<std::int64_t>& sizes);

// Element `i` in row-major logical order, whatever the strides: the building block of the
// reference kernels (simple, not fast). Values convert as C++ static_cast does, except
// bool (nonzero is true), the half types (converted exactly to float first) and floating
// to integer (floating_to_int below: defined for NaN and out-of-range values).
double load_double(const Tensor& t, std::int64_t i);
std::int64_t load_int(const Tensor& t, std::int64_t i);
// Stores into a contiguous tensor at flat index `i`, converting to its dtype (float to
// integer truncates toward zero, as PyTorch's casts do). `i` counts elements from bytes(),
// so a kernel that walks a view's strides itself passes its element offsets. Throws
// kiln::Error (internal) on a read-only (borrowed) buffer.
void store_double(Tensor& t, std::int64_t i, double v);
void store_int(Tensor& t, std::int64_t i, std::int64_t v);
// The element `offset` elements from bytes(), ignoring sizes and strides: for kernels that
// walk strides themselves. Converts as load_double/load_int do.
double load_double_at(const Tensor& t, std::int64_t offset);
std::int64_t load_int_at(const Tensor& t, std::int64_t offset);

bool is_floating(DType t);  // float16, bfloat16, float32, float64

// --- element conversions: PyTorch's (x86-64 CPU) casts, without undefined behaviour ---
// IEEE binary16 and bfloat16 from float, rounding to nearest even (overflow gives inf; NaN
// gives a quiet NaN: 0x7E00 with the sign for half, 0x7FC0 for bfloat16, as c10 does), and
// back to float (exact).
std::uint16_t float_to_half(float v);
float half_to_float(std::uint16_t bits);
std::uint16_t float_to_bfloat16(float v);
float bfloat16_to_float(std::uint16_t bits);
// `v` as it reads back after a store into `dtype`. A double reaches the half types through
// float (two roundings, as c10::Half(float(v)) does in PyTorch).
double round_to(DType dtype, double v);
// An integer stored into a floating dtype: rounded once (int64 to float32 directly, not
// through double, as static_cast<float> does); the half types again through float.
double int_to_floating(DType dtype, std::int64_t v);
// A floating value cast to an integer dtype, truncating toward zero. Values the target
// cannot hold give what PyTorch gives on x86-64 (cvttsd2si): for int64, NaN, inf and
// anything outside [-2^63, 2^63) give INT64_MIN; int32 and narrower types convert through
// int32 (outside its range: INT32_MIN) and then wrap, so NaN and inf become 0 in int8,
// int16 and uint8 and 300.0 becomes 44 in uint8. bool is v != 0 (NaN is true).
std::int64_t floating_to_int(DType dtype, double v);
// An int64 wrapped into an integer dtype (two's complement, as PyTorch's integer casts and
// arithmetic wrap); bool is v != 0. Floating dtypes leave v as it is.
std::int64_t wrap_to(DType dtype, std::int64_t v);

}  // namespace kiln::kernels
