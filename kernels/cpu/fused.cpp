// Fused-op kernels (kernels/cpu/fused.hpp).
#include "kernels/cpu/fused.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <vector>

#include "kernels/cpu/gemm.hpp"
#include "kernels/cpu/layer_norm.hpp"
#include "kernels/cpu/onednn_matmul.hpp"
#include "kernels/cpu/parallel.hpp"
#include "kernels/cpu/softmax.hpp"
#include "kernels/reference/reference.hpp"

namespace kiln::kernels::fast {

namespace {

bool dense_f32(const Tensor& t) { return t.dtype == DType::float32 && t.buffer && t.is_contiguous() && t.numel() > 0; }

bool usable_affine(const Tensor* t, std::int64_t n) {
  return !t || (t->dtype == DType::float32 && t->buffer && t->is_contiguous() && t->numel() == n);
}

const float* data_or_null(const Tensor* t) { return t ? t->data<const float>() : nullptr; }

// Rows of this many elements or more make a range worth a thread.
constexpr std::int64_t kRowElementsPerRange = std::int64_t{1} << 14;

template <typename F>
void for_rows(std::int64_t rows, std::int64_t n, F&& f) {
  cpu::parallel_for(rows, (kRowElementsPerRange + n - 1) / n, f);
}

void layer_norm_rows(const float* x, const float* w, const float* b, float* y, std::int64_t rows, std::int64_t n,
                     double eps, Isa isa) {
  switch (isa) {
    case Isa::avx512: return cpu::avx512::layer_norm_rows(x, w, b, y, rows, n, eps);
    case Isa::avx2: return cpu::avx2::layer_norm_rows(x, w, b, y, rows, n, eps);
    case Isa::scalar: return cpu::scalar::layer_norm_rows(x, w, b, y, rows, n, eps);
  }
}

// Per-thread float scratch that grows and is kept between calls (as fast.cpp's): `v` is a
// thread_local buffer, at least `floats` long on return.
float* grown(std::vector<float>& v, std::int64_t floats) {
  if (static_cast<std::int64_t>(v.size()) < floats) v.resize(static_cast<std::size_t>(floats));
  return v.data();
}

// A row's worth of float scratch per thread.
float* row_scratch(std::int64_t n) {
  thread_local std::vector<float> buffer;
  return grown(buffer, n);
}

// The mask's element offset for each scores row, the mask broadcast to the scores' shape
// [..., rows, lk] without being materialised; `step` is its stride along a row.
class MaskRows {
 public:
  // False when the mask does not broadcast to `scores`.
  bool bind(const Tensor* mask, const std::vector<std::int64_t>& scores) {
    sizes_ = scores;
    strides_.assign(scores.size(), 0);
    if (!mask) return true;
    data_ = mask->data<const float>();
    const std::size_t lead = scores.size() - mask->dim();
    for (std::size_t d = 0; d < mask->dim(); ++d) {
      const std::int64_t size = mask->sizes[d], want = scores[lead + d];
      if (size == want) {
        strides_[lead + d] = size == 1 ? 0 : mask->strides[d];
      } else if (size != 1) {
        return false;
      }
    }
    return true;
  }
  // Null without a mask.
  const float* row(std::int64_t r) const {
    if (!data_) return nullptr;
    std::int64_t at = 0;
    for (std::size_t d = sizes_.size() - 1; d-- > 0;) {
      at += (r % sizes_[d]) * strides_[d];
      r /= sizes_[d];
    }
    return data_ + at;
  }
  std::int64_t step() const { return strides_.back(); }

 private:
  const float* data_ = nullptr;
  std::vector<std::int64_t> sizes_, strides_;
};

// The ISA's row kernel (softmax.hpp) for a scaling; a divisor that is a power of two
// becomes a multiplication by its reciprocal, which rounds the same (both are exact before
// rounding) and is much cheaper than a division.
struct RowScaling {
  cpu::ScoreScaling mode = cpu::ScoreScaling::none;
  float value = 1;
};

RowScaling row_scaling(AttentionScaling scaling) {
  const auto value = static_cast<float>(scaling.value);
  switch (scaling.mode) {
    case AttentionScaling::Mode::none: return {};
    case AttentionScaling::Mode::multiply: return {cpu::ScoreScaling::multiply, value};
    case AttentionScaling::Mode::divide: {
      int exponent = 0;
      const bool power_of_two = std::isfinite(value) && std::frexp(value, &exponent) == 0.5f;
      const float reciprocal = power_of_two ? std::ldexp(1.0f, 1 - exponent) : 0.0f;
      if (power_of_two && std::isnormal(reciprocal)) return {cpu::ScoreScaling::multiply, reciprocal};
      return {cpu::ScoreScaling::divide, value};
    }
  }
  return {};
}

thread_local std::vector<float> t_mask_row;

// One row of scores, in place: scaled, masked, softmaxed (all -inf gives zeros under
// safe_softmax), in the order the unfused chain did each.
void attention_row(float* row, std::int64_t lk, RowScaling scaling, const float* mask, std::int64_t step,
                   bool safe_softmax, Isa isa) {
  if (mask && step != 1) {  // a mask read across rows: gathered so the row kernel reads it contiguously
    float* gathered = grown(t_mask_row, lk);
    for (std::int64_t j = 0; j < lk; ++j) gathered[j] = mask[j * step];
    mask = gathered;
  }
  switch (isa) {
    case Isa::avx512: return cpu::avx512::attention_softmax_row(row, lk, scaling.mode, scaling.value, mask, safe_softmax);
    case Isa::avx2: return cpu::avx2::attention_softmax_row(row, lk, scaling.mode, scaling.value, mask, safe_softmax);
    case Isa::scalar: return cpu::scalar::attention_softmax_row(row, lk, scaling.mode, scaling.value, mask, safe_softmax);
  }
}

// The strided GEMM of a vector ISA (gemm.hpp); none for the scalar one.
struct StridedGemm {
  std::int64_t (*pack_floats)(std::int64_t n, std::int64_t k) = nullptr;
  void (*pack_nk)(const float* b, std::int64_t ldb, std::int64_t n, std::int64_t k, float* pack) = nullptr;
  void (*pack_kn)(const float* b, std::int64_t ldb, std::int64_t n, std::int64_t k, float* pack) = nullptr;
  void (*gemm)(const float* a, std::int64_t lda, const float* pack, float* c, std::int64_t ldc, std::int64_t m,
               std::int64_t n, std::int64_t k) = nullptr;
};

std::optional<StridedGemm> strided_gemm(Isa isa) {
  switch (isa) {
    case Isa::avx512:
      return StridedGemm{cpu::avx512::gemm_pack_floats, cpu::avx512::gemm_pack_nk, cpu::avx512::gemm_pack_kn,
                         cpu::avx512::gemm_packed};
    case Isa::avx2:
      return StridedGemm{cpu::avx2::gemm_pack_floats, cpu::avx2::gemm_pack_nk, cpu::avx2::gemm_pack_kn,
                         cpu::avx2::gemm_packed};
    case Isa::scalar: return std::nullopt;
  }
  return std::nullopt;
}

// Element offset of slice l of t's leading dims (all but the last two).
std::int64_t lead_offset(const Tensor& t, std::int64_t l) {
  std::int64_t at = 0;
  for (std::size_t d = t.dim() - 2; d-- > 0;) {
    at += (l % t.sizes[d]) * t.strides[d];
    l /= t.sizes[d];
  }
  return at;
}

// Query rows a thread takes at once: their scores (kQueryBlock x keys floats) stay in L2.
constexpr std::int64_t kQueryBlock = 64;

// Per-thread buffers (grown): packed K and V of one slice, and one block of scores.
thread_local std::vector<float> t_packed_k, t_packed_v, t_scores;

// The products as the unfused chain's aten::matmul makes them (oneDNN's, else the reference
// kernel's), on the whole batch of slices: for the scalar ISA.
bool attention_batched(const Tensor& q, const Tensor& k, const Tensor& v, const MaskRows& mask,
                       RowScaling scaling, bool safe_softmax, Tensor& out, Isa isa) {
  const auto matmul = [](const Tensor& a, const Tensor& b) {
    Tensor out;
    if (!onednn::matmul(a, b, out)) out = ref::matmul(a, b);
    return out;
  };
  Tensor scores = matmul(q, ref::transpose(k, -2, -1));
  if (scores.dtype != DType::float32 || !scores.is_contiguous()) return false;
  const std::int64_t lk = scores.sizes.back(), rows = scores.numel() / lk;
  float* s = scores.data<float>();
  for_rows(rows, lk, [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r) attention_row(s + r * lk, lk, scaling, mask.row(r), mask.step(), safe_softmax, isa);
  });
  out = matmul(scores, v);
  return true;
}

}  // namespace

bool add_layer_norm(const Tensor& a, const Tensor& b, std::int64_t normalized_size, const Tensor* weight,
                    const Tensor* bias, double eps, Tensor& out, Isa isa) {
  if (!dense_f32(a) || !dense_f32(b) || a.sizes != b.sizes || a.dim() == 0) return false;
  const std::int64_t n = normalized_size;
  if (n <= 0 || a.sizes.back() != n || !usable_affine(weight, n) || !usable_affine(bias, n)) return false;
  const std::int64_t rows = a.numel() / n;
  Tensor result = Tensor::uninitialized(DType::float32, a.sizes);
  const float *pa = a.data<const float>(), *pb = b.data<const float>();
  const float *w = data_or_null(weight), *bb = data_or_null(bias);
  float* y = result.data<float>();
  for_rows(rows, n, [&](std::int64_t r0, std::int64_t r1) {
    float* sum = row_scratch(n);
    for (std::int64_t r = r0; r < r1; ++r) {
      const float *xa = pa + r * n, *xb = pb + r * n;
      for (std::int64_t i = 0; i < n; ++i) sum[i] = xa[i] + xb[i];
      layer_norm_rows(sum, w, bb, y + r * n, 1, n, eps, isa);
    }
  });
  out = std::move(result);
  return true;
}

bool embedding_layer_norm(const std::vector<const Tensor*>& tables, const std::vector<const Tensor*>& ids,
                          const Tensor* weight, const Tensor* bias, double eps, Tensor& out, Isa isa) {
  if (tables.empty() || tables.size() != ids.size()) return false;
  const std::int64_t n = tables[0]->dim() == 2 ? tables[0]->sizes[1] : 0;
  std::int64_t batch = 1, seq = -1;
  for (std::size_t t = 0; t < tables.size(); ++t) {
    const Tensor &table = *tables[t], &id = *ids[t];
    if (!dense_f32(table) || table.dim() != 2 || table.sizes[1] != n) return false;
    if (id.dtype != DType::int64 || id.dim() != 2 || !id.buffer) return false;
    if (seq < 0) seq = id.sizes[1];
    if (id.sizes[1] != seq) return false;
    if (id.sizes[0] != 1) {
      if (batch != 1 && batch != id.sizes[0]) return false;
      batch = id.sizes[0];
    }
    // Every index in range, checked before any work: the reference kernel names a bad one.
    for (std::int64_t r = 0; r < id.sizes[0]; ++r) {
      for (std::int64_t s = 0; s < seq; ++s) {
        const std::int64_t v = id.data<const std::int64_t>()[r * id.strides[0] + s * id.strides[1]];
        if (v < 0 || v >= table.sizes[0]) return false;
      }
    }
  }
  if (n <= 0 || seq <= 0 || !usable_affine(weight, n) || !usable_affine(bias, n)) return false;
  Tensor result = Tensor::uninitialized(DType::float32, {batch, seq, n});
  const float *w = data_or_null(weight), *bb = data_or_null(bias);
  float* y = result.data<float>();
  for_rows(batch * seq, n, [&](std::int64_t r0, std::int64_t r1) {
    float* sum = row_scratch(n);
    for (std::int64_t r = r0; r < r1; ++r) {
      const std::int64_t bi = r / seq, si = r % seq;
      for (std::size_t t = 0; t < tables.size(); ++t) {
        const Tensor& id = *ids[t];
        const std::int64_t row = id.data<const std::int64_t>()[(id.sizes[0] == 1 ? 0 : bi) * id.strides[0] +
                                                               si * id.strides[1]];
        const float* e = tables[t]->data<const float>() + row * n;
        // ((e1 + e2) + e3): the order the chain of adds summed in.
        if (t == 0) {
          for (std::int64_t i = 0; i < n; ++i) sum[i] = e[i];
        } else {
          for (std::int64_t i = 0; i < n; ++i) sum[i] += e[i];
        }
      }
      layer_norm_rows(sum, w, bb, y + r * n, 1, n, eps, isa);
    }
  });
  out = std::move(result);
  return true;
}

bool attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor* mask, AttentionScaling scaling,
               bool safe_softmax, Tensor& out, Isa isa) {
  if (q.dim() < 2 || k.dim() != q.dim() || v.dim() != q.dim()) return false;
  if (q.dtype != DType::float32 || k.dtype != DType::float32 || v.dtype != DType::float32) return false;
  if (!q.buffer || !k.buffer || !v.buffer) return false;
  if (mask && (mask->dtype != DType::float32 || !mask->buffer || mask->dim() > q.dim())) return false;
  // Shapes the products take without broadcasting; anything else goes to the reference
  // kernel, which broadcasts or gives the op's own error.
  const std::size_t r = q.dim();
  if (q.sizes[r - 1] != k.sizes[r - 1] || k.sizes[r - 2] != v.sizes[r - 2]) return false;
  for (std::size_t d = 0; d + 2 < r; ++d) {
    if (q.sizes[d] != k.sizes[d] || q.sizes[d] != v.sizes[d]) return false;
  }
  const std::int64_t lq = q.sizes[r - 2], depth = q.sizes[r - 1], lk = k.sizes[r - 2], dv = v.sizes[r - 1];
  std::vector<std::int64_t> scores_shape(q.sizes.begin(), q.sizes.end() - 1);
  scores_shape.push_back(lk);
  MaskRows mask_rows;
  if (lq <= 0 || depth <= 0 || lk <= 0 || dv <= 0 || !mask_rows.bind(mask, scores_shape)) return false;
  const std::optional<StridedGemm> gemm = strided_gemm(isa);
  const bool rows_dense = q.strides[r - 1] == 1 && k.strides[r - 1] == 1 && v.strides[r - 1] == 1;
  const RowScaling row_scale = row_scaling(scaling);
  if (!gemm || !rows_dense) return attention_batched(q, k, v, mask_rows, row_scale, safe_softmax, out, isa);

  // [batch, heads, lq, dv] is laid out as [batch, lq, heads, dv]: BERT merges the heads
  // next (permute(0, 2, 1, 3) and a reshape), which then reads it in place instead of copying.
  Tensor result;
  if (r == 4) {
    result = Tensor::uninitialized(DType::float32, {q.sizes[0], lq, q.sizes[1], dv});
    result.sizes = {q.sizes[0], q.sizes[1], lq, dv};
    result.strides = {lq * q.sizes[1] * dv, dv, q.sizes[1] * dv, 1};
  } else {
    std::vector<std::int64_t> sizes(q.sizes.begin(), q.sizes.end() - 1);
    sizes.push_back(dv);
    result = Tensor::uninitialized(DType::float32, sizes);
  }
  const std::int64_t slices = q.numel() / (lq * depth), blocks = (lq + kQueryBlock - 1) / kQueryBlock;
  const std::int64_t qs = q.strides[r - 2], ks = k.strides[r - 2], vs = v.strides[r - 2], os = result.strides[r - 2];
  const float *qd = q.data<const float>(), *kd = k.data<const float>(), *vd = v.data<const float>();
  float* od = result.data<float>();
  // Work items: (slice, block of query rows). Each packs its slice's K and V again unless
  // it follows an item of the same slice on the same thread.
  cpu::parallel_for(slices * blocks, 1, [&](std::int64_t begin, std::int64_t end) {
    float* packed_k = grown(t_packed_k, gemm->pack_floats(lk, depth));
    float* packed_v = grown(t_packed_v, gemm->pack_floats(dv, lk));
    float* scores = grown(t_scores, std::min(kQueryBlock, lq) * lk);
    std::int64_t packed_slice = -1;
    for (std::int64_t item = begin; item < end; ++item) {
      const std::int64_t l = item / blocks, i0 = item % blocks * kQueryBlock, rows = std::min(kQueryBlock, lq - i0);
      if (l != packed_slice) {
        gemm->pack_nk(kd + lead_offset(k, l), ks, lk, depth, packed_k);
        gemm->pack_kn(vd + lead_offset(v, l), vs, dv, lk, packed_v);
        packed_slice = l;
      }
      gemm->gemm(qd + lead_offset(q, l) + i0 * qs, qs, packed_k, scores, lk, rows, lk, depth);
      for (std::int64_t i = 0; i < rows; ++i) {
        attention_row(scores + i * lk, lk, row_scale, mask_rows.row(l * lq + i0 + i), mask_rows.step(), safe_softmax,
                      isa);
      }
      gemm->gemm(scores, lk, packed_v, od + lead_offset(result, l) + i0 * os, os, rows, dv, lk);
    }
  });
  out = std::move(result);
  return true;
}

}  // namespace kiln::kernels::fast
