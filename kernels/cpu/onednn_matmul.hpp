// linear and matmul on oneDNN's matmul primitive, for the float32 cases it handles: each
// entry point returns true with `out` a new contiguous tensor, or false (leaving `out`
// alone) so the caller runs another kernel (kernels/cpu/fast.hpp, then the reference,
// which also produces PyTorch's error messages). Inputs are passed with their real strides,
// so transposed and permuted views (BERT's q @ k^T) are read in place, never copied.
#pragma once

#include <string>

#include "kernels/tensor.hpp"

namespace kiln::kernels::onednn {

// True when kiln was built with oneDNN; every other function returns false when it is not.
bool available();

// torch.linear: out[..., n] = x[..., k] * w[n, k]^T + b. x's leading dims must fold into
// one (contiguous among themselves; the last dim may have any stride); w may have any
// strides; b (may be null) has n elements or 1, 1-D.
bool linear(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& out);

// torch.matmul for two operands of rank >= 2 (rank 1 is refused: its squeeze/unsqueeze
// rules are the caller's): the last two dims multiply, the others broadcast as PyTorch's
// do. Any strides oneDNN takes (no overlapping dims, none negative).
bool matmul(const Tensor& a, const Tensor& b, Tensor& out);

// The oneDNN implementation matmul(a, b) would run ("brg:avx512_core", "gemm:jit",
// "ref:any"), or "" when matmul refuses the pair. For tests and diagnostics: an odd stride
// pattern may be handled only by oneDNN's slow reference code.
std::string matmul_implementation(const Tensor& a, const Tensor& b);

}  // namespace kiln::kernels::onednn
