// The fast CPU kernels behind one door: each entry point checks that its case is one it
// handles (float32, contiguous, sizes that fit), picks the implementation for `isa`
// (default: active_isa()) and returns true with `out` allocated and filled; otherwise it
// returns false and leaves `out` alone, and the caller runs the reference kernel
// (kernels/reference/reference.hpp), which also produces PyTorch's error messages.
//
// Each kernel has one translation unit per instruction set, compiled with that set's
// flags, in its own namespace (kiln::kernels::cpu::{scalar,avx2,avx512}). Those units use
// only intrinsics and functions with internal linkage: an inline function or template
// (std::vector, std::min, Eigen) instantiated under -mavx512f would be a weak symbol the
// linker may pick for every caller, and run AVX-512 code on a CPU without it. Memory
// they need (gemm's packed panels) is allocated here, in baseline code.
//
// Each entry point uses up to cpu::max_threads() threads (kernels/cpu/parallel.hpp),
// split over independent outputs only (rows; for linear, row or column blocks of the
// output), so results are bitwise the same for every thread count. Small tensors run on
// the calling thread.
#pragma once

#include <cstdint>

#include "kernels/cpu/gemm_epilogue.hpp"
#include "kernels/cpu/isa.hpp"
#include "kernels/tensor.hpp"

namespace kiln::kernels::fast {

using cpu::Isa;
using kernels::Epilogue;

// torch.linear: out[..., n] = x[..., k] * w[n, k]^T + b[n]; b may be null.
bool linear(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& out, Isa isa = cpu::active_isa());
// The same, then `epilogue` on every output element: kiln's GELU (elementwise.hpp, within
// 0.51 ulp of the exact GELU of the float sum) on each block of output as its thread
// finishes it, while the block is still in cache.
bool linear(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& out, Epilogue epilogue,
            Isa isa = cpu::active_isa());
// softmax over the last dim.
bool softmax_lastdim(const Tensor& x, Tensor& out, Isa isa = cpu::active_isa());
// layer_norm over the trailing dims whose sizes multiply to normalized_size; w and b (each
// normalized_size elements) may be null.
bool layer_norm(const Tensor& x, std::int64_t normalized_size, const Tensor* w, const Tensor* b, double eps,
                Tensor& out, Isa isa = cpu::active_isa());

}  // namespace kiln::kernels::fast
