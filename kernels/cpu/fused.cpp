// Fused-op kernels (kernels/cpu/fused.hpp).
#include "kernels/cpu/fused.hpp"

#include <cmath>
#include <limits>

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

void softmax_rows(const float* x, float* y, std::int64_t rows, std::int64_t n, Isa isa) {
  switch (isa) {
    case Isa::avx512: return cpu::avx512::softmax_rows(x, y, rows, n);
    case Isa::avx2: return cpu::avx2::softmax_rows(x, y, rows, n);
    case Isa::scalar: return cpu::scalar::softmax_rows(x, y, rows, n);
  }
}

// A row's worth of float scratch per thread, kept between calls.
float* row_scratch(std::int64_t n) {
  thread_local std::vector<float> buffer;
  if (static_cast<std::int64_t>(buffer.size()) < n) buffer.resize(static_cast<std::size_t>(n));
  return buffer.data();
}

}  // namespace

bool add_layer_norm(const Tensor& a, const Tensor& b, std::int64_t normalized_size, const Tensor* weight,
                    const Tensor* bias, double eps, Tensor& out, Isa isa) {
  if (!dense_f32(a) || !dense_f32(b) || a.sizes != b.sizes || a.dim() == 0) return false;
  const std::int64_t n = normalized_size;
  if (n <= 0 || a.sizes.back() != n || !usable_affine(weight, n) || !usable_affine(bias, n)) return false;
  const std::int64_t rows = a.numel() / n;
  Tensor result = Tensor::empty(DType::float32, a.sizes);
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
  Tensor result = Tensor::empty(DType::float32, {batch, seq, n});
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
  if (mask && (mask->dtype != DType::float32 || !mask->buffer || mask->dim() > q.dim())) return false;
  // Shapes the products take without broadcasting; anything else goes to the reference
  // kernel, which broadcasts or gives the op's own error.
  const std::size_t r = q.dim();
  if (q.sizes[r - 1] != k.sizes[r - 1] || k.sizes[r - 2] != v.sizes[r - 2]) return false;
  for (std::size_t d = 0; d + 2 < r; ++d) {
    if (q.sizes[d] != k.sizes[d] || q.sizes[d] != v.sizes[d]) return false;
  }
  // The two products as the unfused chain's aten::matmul makes them: oneDNN's, else the
  // reference kernel's (which also gives PyTorch's errors for shapes that do not fit).
  const auto matmul = [](const Tensor& a, const Tensor& b) {
    Tensor out;
    if (!onednn::matmul(a, b, out)) out = ref::matmul(a, b);
    return out;
  };
  Tensor scores = matmul(q, ref::transpose(k, -2, -1));
  if (scores.dtype != DType::float32 || !scores.is_contiguous()) return false;
  const std::size_t rank = scores.dim();
  const std::int64_t lk = scores.sizes.back(), rows = scores.numel() / std::max<std::int64_t>(lk, 1);
  if (lk == 0 || rows == 0) return false;
  // The mask's stride along each dim of the scores (0 where it broadcasts).
  std::vector<std::int64_t> mstride(rank, 0);
  if (mask) {
    const std::size_t lead = rank - mask->dim();
    for (std::size_t d = 0; d < mask->dim(); ++d) {
      const std::int64_t size = mask->sizes[d], want = scores.sizes[lead + d];
      if (size == want) {
        mstride[lead + d] = size == 1 ? 0 : mask->strides[d];
      } else if (size != 1) {
        return false;
      }
    }
  }
  const float scale = static_cast<float>(scaling.value);
  float* s = scores.data<float>();
  const float* m = mask ? mask->data<const float>() : nullptr;
  for_rows(rows, lk, [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r) {
      float* row = s + r * lk;
      if (scaling.mode == AttentionScaling::Mode::divide) {
        for (std::int64_t j = 0; j < lk; ++j) row[j] = row[j] / scale;
      } else if (scaling.mode == AttentionScaling::Mode::multiply) {
        for (std::int64_t j = 0; j < lk; ++j) row[j] = row[j] * scale;
      }
      if (m) {
        std::int64_t at = 0, rest = r;
        for (std::size_t d = rank - 1; d-- > 0;) {
          at += (rest % scores.sizes[d]) * mstride[d];
          rest /= scores.sizes[d];
        }
        const float* mr = m + at;
        const std::int64_t step = mstride[rank - 1];
        if (step == 1) {
          for (std::int64_t j = 0; j < lk; ++j) row[j] += mr[j];
        } else {
          for (std::int64_t j = 0; j < lk; ++j) row[j] += mr[j * step];
        }
      }
      bool all_neg_inf = safe_softmax;
      for (std::int64_t j = 0; all_neg_inf && j < lk; ++j) {
        all_neg_inf = row[j] == -std::numeric_limits<float>::infinity();
      }
      if (all_neg_inf) {
        std::fill(row, row + lk, 0.0f);
      } else {
        softmax_rows(row, row, 1, lk, isa);
      }
    }
  });
  out = matmul(scores, v);
  return true;
}

}  // namespace kiln::kernels::fast
