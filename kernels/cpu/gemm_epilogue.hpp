// What a GEMM may apply to its output inside the call, after the bias: the activation that
// follows a linear layer, so that the result is written once instead of being written,
// read back and written again by a separate elementwise kernel. Both GEMM paths take it:
// oneDNN's matmul as a post-op (kernels/cpu/onednn_matmul.hpp) and kiln's own GEMM
// (kernels/cpu/fast.hpp) with kiln's vectorised GELU on each block of output it finishes.
#pragma once

#include <cstdint>

#include "kernels/cpu/isa.hpp"

namespace kiln::kernels {

enum class Epilogue {
  none,
  gelu_erf,   // torch.nn.functional.gelu(approximate='none'): x/2 (1 + erf(x / sqrt 2))
  gelu_tanh,  // approximate='tanh': x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
};

// The epilogue on `count` contiguous floats of finished output, in place, with `isa`'s GELU
// (kernels/cpu/elementwise_isa.hpp): what kiln's own GEMMs run on each block they finish.
void apply_epilogue(cpu::Isa isa, Epilogue epilogue, float* y, std::int64_t count);

}  // namespace kiln::kernels
