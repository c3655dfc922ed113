// Per-thread float scratch that grows and is kept between calls, for kernels that need a
// buffer per call (a packed operand, a block of output). Fresh multi-megabyte buffers on
// every call would cost a page fault per 4 KiB, about as much as the work they serve (more
// in a VM). Uninitialized: each user writes before it reads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace kiln::kernels::cpu {

class Scratch {
 public:
  // At least `floats` floats; earlier contents are not kept when it grows.
  float* get(std::int64_t floats) {
    if (floats > size_) {
      data_.reset();  // free first: the old and new buffers need not coexist
      data_.reset(new float[static_cast<std::size_t>(floats)]);
      size_ = floats;
    }
    return data_.get();
  }

 private:
  std::unique_ptr<float[]> data_;
  std::int64_t size_ = 0;
};

}  // namespace kiln::kernels::cpu
