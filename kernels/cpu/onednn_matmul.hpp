// linear and matmul on oneDNN's matmul primitive, for the float32 cases it handles: each
// entry point returns true with `out` a new contiguous tensor, or false (leaving `out`
// alone) so the caller runs another kernel (kernels/cpu/fast.hpp, then the reference,
// which also produces PyTorch's error messages). Inputs are passed with their real strides,
// so transposed and permuted views (BERT's q @ k^T) are read in place, never copied.
//
// A linear layer's weight may instead be packed once (pack_weight) into the blocked layout
// oneDNN's GEMM prefers: otherwise oneDNN copies the plain [n, k] weight into that layout
// inside every call, which at short sequences costs as much as the multiplication.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/cpu/gemm_epilogue.hpp"
#include "kernels/tensor.hpp"

namespace kiln::kernels::onednn {

using kernels::Epilogue;

// True when kiln was built with oneDNN; every other function returns false when it is not.
bool available();

// torch.linear: out[..., n] = x[..., k] * w[n, k]^T + b. x's leading dims must fold into
// one (contiguous among themselves; the last dim may have any stride); w may have any
// strides; b (may be null) has n elements or 1, 1-D. `epilogue` is applied to every output
// element after the bias, inside the GEMM (a oneDNN post-op). When w has a packed copy
// alive (pack_weight), that copy is read instead, wherever oneDNN's GEMM for this x takes
// its layout; the result is the same either way up to float rounding.
bool linear(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& out, Epilogue epilogue = Epilogue::none);

// A linear weight copied into the layout oneDNN's matmul chooses for it, registered under
// the weight's address, sizes and strides for as long as it lives: every linear() with that
// weight (from any model, any thread) reads it. The last owner's release unregisters it; a
// linear() running meanwhile keeps it alive until it returns.
class PackedWeight;

// Packs w (float32 [n, k], any strides) for GEMMs of `rows` rows of x (oneDNN 2.6 chooses
// the same blocking for every row count, and linear() checks per shape that it still does)
// and registers it; an already registered copy of the same weight is shared, not packed
// again. w's bytes must stay unchanged while the result lives. Null when oneDNN is absent,
// refuses w, or prefers w's own layout (nothing to gain); w is then read in place.
std::shared_ptr<const PackedWeight> pack_weight(const Tensor& w, std::int64_t rows);
// Several weights [n_i, k] as one [sum n_i, k], their rows in order (the Q, K and V of
// kiln::linear_concat), packed as pack_weight packs one, with their biases (null: zeros)
// side by side. Registered under the parts and biases together (linear() on one part does
// not find it); each must stay unchanged while it lives.
// Null where pack_weight would be, or when a part cannot be packed in place in the whole.
std::shared_ptr<const PackedWeight> pack_weights(const std::vector<const Tensor*>& weights,
                                                 const std::vector<const Tensor*>& biases, std::int64_t rows);
// out[..., sum n_i] = x * [w_1; w_2; ...]^T + [b_1, b_2, ...]: one GEMM on the copy
// pack_weights made of exactly these parts, when one is alive and the GEMM for this x takes
// its layout; false (out untouched) otherwise.
bool linear_concat(const Tensor& x, const std::vector<const Tensor*>& weights, const std::vector<const Tensor*>& biases,
                   Tensor& out);

// The packed copy's size in bytes.
std::size_t packed_bytes(const PackedWeight& packed);

// What linear(x, w, b, out, epilogue) would run: oneDNN's implementation ("brg:avx512_core"),
// or "" when linear refuses the case, and whether it would read a packed copy of w.
struct LinearInfo {
  std::string implementation;
  bool packed = false;
};
LinearInfo describe_linear(const Tensor& x, const Tensor& w, const Tensor* b, Epilogue epilogue = Epilogue::none);

// torch.matmul for two operands of rank >= 2 (rank 1 is refused: its squeeze/unsqueeze
// rules are the caller's): the last two dims multiply, the others broadcast as PyTorch's
// do. Any strides oneDNN takes (no overlapping dims, none negative).
bool matmul(const Tensor& a, const Tensor& b, Tensor& out);

// The oneDNN implementation matmul(a, b) would run ("brg:avx512_core", "gemm:jit",
// "ref:any"), or "" when matmul refuses the pair. For tests and diagnostics: an odd stride
// pattern may be handled only by oneDNN's slow reference code.
std::string matmul_implementation(const Tensor& a, const Tensor& b);

}  // namespace kiln::kernels::onednn
