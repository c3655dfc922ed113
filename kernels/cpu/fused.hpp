// Kernels for kiln's fused ops (engine/passes/fusions.cpp): each does in one pass over
// memory what a chain of ops did in several, with the same float operations in the same
// order as the chain's fast kernels, so a fused result equals the unfused one. Like
// fast.hpp, each returns true with `out` a new contiguous tensor, or false (leaving `out`
// alone) for a case it does not take, which the caller hands to the reference kernel.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cpu/isa.hpp"
#include "kernels/tensor.hpp"

namespace kiln::kernels::fast {

using cpu::Isa;

// layer_norm(a + b) over the last `normalized_size` elements: a and b float32, contiguous,
// of the same shape. The sum is rounded to float32 before normalising, as the chain did.
bool add_layer_norm(const Tensor& a, const Tensor& b, std::int64_t normalized_size, const Tensor* weight,
                    const Tensor* bias, double eps, Tensor& out, Isa isa = cpu::active_isa());

// layer_norm(table[0][ids[0]] + table[1][ids[1]] + ..., summed in that order) over the
// last dim: tables float32 [rows, hidden], contiguous; ids int64 [batch or 1, seq] (any
// strides), broadcast to [batch, seq]. False for an index out of range (the reference
// kernel names it).
bool embedding_layer_norm(const std::vector<const Tensor*>& tables, const std::vector<const Tensor*>& ids,
                          const Tensor* weight, const Tensor* bias, double eps, Tensor& out,
                          Isa isa = cpu::active_isa());

// How attention scales q @ k^T before the mask: divided by a number (BERT's eager code), or
// multiplied by one (scaled_dot_product_attention's scale), or not at all.
struct AttentionScaling {
  enum class Mode { none, divide, multiply } mode = Mode::none;
  double value = 1;
};

// softmax(q @ k^T scaled + mask, -1) @ v over the last two dims, q, k, v float32 of one
// rank >= 2 with equal leading dims; mask float32, broadcast to the scores without being
// materialised. With safe_softmax a row of scores that are all -inf gives zeros
// (scaled_dot_product_attention's _safe_softmax), else NaN as softmax does. With a vector
// ISA the work goes by (slice, block of 64 queries), both products on kiln's strided GEMM,
// so the scores of one block stay in cache; a rank-4 result [batch, heads, lq, dv] is then
// laid out as [batch, lq, heads, dv] (not contiguous), so that BERT's head merge
// (permute(0, 2, 1, 3) and a reshape) reads it in place. The scalar ISA runs the products
// as aten::matmul would (oneDNN, else the reference) and gives a contiguous result.
bool attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor* mask, AttentionScaling scaling,
               bool safe_softmax, Tensor& out, Isa isa = cpu::active_isa());

}  // namespace kiln::kernels::fast
