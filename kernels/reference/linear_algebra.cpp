// linear, matmul and scaled_dot_product_attention.
//
// Operands are read into contiguous double matrices (uint64 for integer dtypes, whose
// products then wrap like PyTorch's) and multiplied by a cache-blocked loop that keeps 4x8
// tiles of sums in registers: fast enough for BERT-sized models under the sanitizers
// (3000x384 @ 384x1536 takes about 0.3 s, 0.5 s under ASan+UBSan), and every output adds
// its K products in order in double, so the result does not depend on the blocking.
#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/reference/checks.hpp"
#include "kernels/reference/indexing.hpp"
#include "kernels/reference/reference.hpp"

namespace kiln::kernels::ref {

namespace {

// The two gemm functions opt out of UBSan (not ASan): its per-access checks stop the
// loops from vectorizing and make a BERT-sized matmul ~6x slower under the sanitizers, and
// they can find nothing here: the arithmetic is double or uint64 (wrapping by definition),
// and every index is below the size of a vector the caller allocated.
#define KILN_HOT_LOOP __attribute__((no_sanitize("undefined")))

// One tile of c (rows x cols, at most kRows x kCols) += a[., k0:k1] * b[k0:k1, .], its
// sums in registers. Full tiles take the constant bounds, which the compiler unrolls.
constexpr std::int64_t kRows = 4, kCols = 8;

template <class T, bool full>
KILN_HOT_LOOP void gemm_tile(const T* a, const T* b, T* c, std::int64_t k, std::int64_t n, std::int64_t k0,
                             std::int64_t k1, std::int64_t rows, std::int64_t cols) {
  const std::int64_t r_end = full ? kRows : rows, c_end = full ? kCols : cols;
  T acc[kRows][kCols] = {};
  for (std::int64_t r = 0; r < r_end; ++r) {
    for (std::int64_t j = 0; j < c_end; ++j) acc[r][j] = c[r * n + j];
  }
  for (std::int64_t p = k0; p < k1; ++p) {
    const T* b_row = b + p * n;
    for (std::int64_t r = 0; r < r_end; ++r) {
      const T a_rp = a[r * k + p];
      for (std::int64_t j = 0; j < c_end; ++j) acc[r][j] += a_rp * b_row[j];
    }
  }
  for (std::int64_t r = 0; r < r_end; ++r) {
    for (std::int64_t j = 0; j < c_end; ++j) c[r * n + j] = acc[r][j];
  }
}

// c[m x n] += a[m x k] * b[k x n], all row-major. Blocked so that a block of a stays in
// cache while strips of b pass over it, and each product is added to its sum in k order.
template <class T>
KILN_HOT_LOOP void gemm(const T* a, const T* b, T* c, std::int64_t m, std::int64_t k, std::int64_t n) {
  constexpr std::int64_t k_block = 256, m_block = 64;
  for (std::int64_t k0 = 0; k0 < k; k0 += k_block) {
    const std::int64_t k1 = std::min(k, k0 + k_block);
    for (std::int64_t i0 = 0; i0 < m; i0 += m_block) {
      const std::int64_t i1 = std::min(m, i0 + m_block);
      for (std::int64_t j = 0; j < n; j += kCols) {
        const std::int64_t cols = std::min(kCols, n - j);
        for (std::int64_t i = i0; i < i1; i += kRows) {
          const std::int64_t rows = std::min(kRows, i1 - i);
          if (rows == kRows && cols == kCols) {
            gemm_tile<T, true>(a + i * k, b + j, c + i * n + j, k, n, k0, k1, rows, cols);
          } else {
            gemm_tile<T, false>(a + i * k, b + j, c + i * n + j, k, n, k0, k1, rows, cols);
          }
        }
      }
    }
  }
}

// a viewed as a matrix with `rows` x `cols` (its elements in row-major order), times b as
// cols x n, stored (plus a bias of n values, if any) into `out` from element offset
// `out_offset`, row-major.
template <class T>
void multiply_into(const Tensor& a, const Tensor& b, std::int64_t rows, std::int64_t cols, std::int64_t n,
                   const Tensor* bias, Tensor& out, std::int64_t out_offset) {
  const std::vector<T> av = elements<T>(a), bv = elements<T>(b);
  std::vector<T> c(static_cast<std::size_t>(rows * n), T{0});
  if (bias) {
    const std::vector<T> biases = elements<T>(*bias);
    for (std::int64_t i = 0; i < rows; ++i) std::copy(biases.begin(), biases.end(), c.begin() + i * n);
  }
  gemm(av.data(), bv.data(), c.data(), rows, cols, n);
  for (std::size_t i = 0; i < c.size(); ++i) {
    if constexpr (std::is_floating_point_v<T>) {
      store_double(out, out_offset + static_cast<std::int64_t>(i), c[i]);
    } else {
      store_int(out, out_offset + static_cast<std::int64_t>(i), static_cast<std::int64_t>(c[i]));
    }
  }
}

void multiply(const Tensor& a, const Tensor& b, std::int64_t rows, std::int64_t cols, std::int64_t n,
              const Tensor* bias, Tensor& out, std::int64_t out_offset) {
  if (is_floating(out.dtype)) {
    multiply_into<double>(a, b, rows, cols, n, bias, out, out_offset);
  } else {
    multiply_into<std::uint64_t>(a, b, rows, cols, n, bias, out, out_offset);
  }
}

std::int64_t product(const std::vector<std::int64_t>& sizes, std::size_t begin, std::size_t end) {
  std::int64_t p = 1;
  for (std::size_t i = begin; i < end; ++i) p *= sizes[i];
  return p;
}

// The view of `t` at `extra` elements past its offset with the given sizes and strides.
Tensor view_at(const Tensor& t, std::int64_t extra, std::vector<std::int64_t> sizes,
               std::vector<std::int64_t> strides) {
  Tensor v = t;
  v.offset += extra;
  v.sizes = std::move(sizes);
  v.strides = std::move(strides);
  return v;
}

// `v` without its last `drop` entries (the batch dims of a matrix shape).
std::vector<std::int64_t> leading(const std::vector<std::int64_t>& v, std::size_t drop) {
  return {v.begin(), v.end() - static_cast<std::ptrdiff_t>(drop)};
}

std::vector<std::int64_t> concat(std::vector<std::int64_t> a, const std::vector<std::int64_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

void check_same_dtype(const Tensor& a, const Tensor& b) {
  if (a.dtype != b.dtype) fail(text("expected m1 and m2 to have the same dtype, but got: ", a.dtype, " != ", b.dtype));
}

[[noreturn]] void fail_mm(std::int64_t m, std::int64_t k, std::int64_t k2, std::int64_t n) {
  fail(text("mat1 and mat2 shapes cannot be multiplied (", m, "x", k, " and ", k2, "x", n, ")"));
}

[[noreturn]] void fail_batch2(std::int64_t batch, std::int64_t k, std::int64_t k2) {
  fail(text("Expected size for first two dimensions of batch2 tensor to be: [", batch, ", ", k, "] but got: [", batch,
            ", ", k2, "]."));
}

// a [..., M, K] @ b [..., K, N] with broadcast batch dims; a 1-D a is [1, K] and a 1-D b
// [K, 1], their unit dim dropped from the result, as torch.matmul.
Tensor batched_matmul(const Tensor& a, const Tensor& b) {
  const bool a_vector = a.dim() == 1, b_vector = b.dim() == 1;
  const Tensor a2 = a_vector ? view_at(a, 0, {1, a.sizes[0]}, {0, a.strides[0]}) : a;
  const Tensor b2 = b_vector ? view_at(b, 0, {b.sizes[0], 1}, {b.strides[0], 0}) : b;
  const std::int64_t m = a2.sizes[a2.dim() - 2], k = a2.sizes[a2.dim() - 1];
  const std::int64_t k2 = b2.sizes[b2.dim() - 2], n = b2.sizes[b2.dim() - 1];
  const std::vector<std::int64_t> batch = broadcast_shapes(leading(a2.sizes, 2), leading(b2.sizes, 2));
  const std::int64_t batch_count = product(batch, 0, batch.size());
  if (k != k2) fail_batch2(batch_count, k, k2);

  Tensor out = Tensor::empty(a.dtype, concat(batch, {m, n}));
  const auto a_batch = broadcast_strides(leading(a2.sizes, 2), leading(a2.strides, 2), batch);
  const auto b_batch = broadcast_strides(leading(b2.sizes, 2), leading(b2.strides, 2), batch);
  const std::vector<std::int64_t> a_last(a2.strides.end() - 2, a2.strides.end());
  const std::vector<std::int64_t> b_last(b2.strides.end() - 2, b2.strides.end());
  walk<2>(batch, {a_batch, b_batch}, [&](std::int64_t i, const std::array<std::int64_t, 2>& o) {
    multiply(view_at(a2, o[0], {m, k}, a_last), view_at(b2, o[1], {k, n}, b_last), m, k, n, nullptr, out,
             i * m * n);
  });
  std::vector<std::int64_t> sizes = batch;
  if (!a_vector) sizes.push_back(m);
  if (!b_vector) sizes.push_back(n);
  out.sizes = sizes;
  out.strides = contiguous_strides(sizes);
  return out;
}

// --- attention ---

struct Matrix {
  std::int64_t rows = 0, cols = 0;
  std::vector<double> values;
  double at(std::int64_t r, std::int64_t c) const { return values[static_cast<std::size_t>(r * cols + c)]; }
};

// The last two dims of `t` at element offset `base`.
Matrix read_matrix(const Tensor& t, std::int64_t base) {
  const std::size_t r = t.dim() - 2;
  return {t.sizes[r], t.sizes[r + 1],
          elements<double>(view_at(t, base, {t.sizes[r], t.sizes[r + 1]}, {t.strides[r], t.strides[r + 1]}))};
}

// One (batch, head) of attention, stored into out from `out_offset`. A row whose scores are
// all -inf (fully masked, or no keys) gives zeros, as PyTorch 2.x's math path
// (_safe_softmax) does; plain softmax would give NaN.
void attend(const Matrix& q, const Matrix& k, const Matrix& v, const Matrix* mask, bool mask_is_bool, bool causal,
            double scale, Tensor& out, std::int64_t out_offset) {
  const double neg_inf = -std::numeric_limits<double>::infinity();
  std::vector<double> scores(static_cast<std::size_t>(k.rows));
  std::vector<double> row(static_cast<std::size_t>(v.cols));
  for (std::int64_t i = 0; i < q.rows; ++i) {
    double m = neg_inf;
    bool nan = false;
    for (std::int64_t j = 0; j < k.rows; ++j) {
      double s = 0;
      for (std::int64_t e = 0; e < q.cols; ++e) s += q.at(i, e) * k.at(j, e);
      s *= scale;
      if (mask) s = mask_is_bool ? (mask->at(i, j) != 0 ? s : neg_inf) : s + mask->at(i, j);
      if (causal && j > i) s = neg_inf;
      scores[static_cast<std::size_t>(j)] = s;
      nan = nan || std::isnan(s);
      m = std::max(m, s);
    }
    std::fill(row.begin(), row.end(), nan ? std::nan("") : 0.0);
    if (!nan && m != neg_inf) {
      double total = 0;
      for (double& s : scores) {
        s = std::exp(s - m);  // the max is subtracted, as softmax
        total += s;
      }
      for (std::int64_t j = 0; j < k.rows; ++j) {
        const double p = scores[static_cast<std::size_t>(j)] / total;
        for (std::int64_t c = 0; c < v.cols; ++c) row[static_cast<std::size_t>(c)] += p * v.at(j, c);
      }
    }
    for (std::int64_t c = 0; c < v.cols; ++c) {
      store_double(out, out_offset + i * v.cols + c, row[static_cast<std::size_t>(c)]);
    }
  }
}

void check_attention_inputs(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor* mask, bool is_causal) {
  if (q.dim() < 2 || k.dim() < 2 || v.dim() < 2) {
    fail(text("Expected query, key, and value to all be at least 2 dimensional, but got query.dim: ", q.dim(),
              " key.dim: ", k.dim(), " and value.dim: ", v.dim(), " instead."));
  }
  if (q.dtype != k.dtype || q.dtype != v.dtype) {
    fail(text("Expected query, key, and value to have the same dtype, but got query.dtype: ", q.dtype,
              " key.dtype: ", k.dtype, " and value.dtype: ", v.dtype, " instead."));
  }
  if (!is_floating(q.dtype)) {
    fail(text("scaled_dot_product_attention(): expected a floating point query, but got ", q.dtype));
  }
  if (mask && is_causal) {
    fail("_scaled_dot_product_attention: Explicit attn_mask should not be set when is_causal=True");
  }
  if (mask && mask->dtype != DType::bool_ && mask->dtype != DType::float32 && mask->dtype != q.dtype) {
    fail(text("Expected attn_mask dtype to be bool or float or to match query dtype, but got attn_mask.dtype: ",
              mask->dtype, " and query.dtype: ", q.dtype, " instead."));
  }
}

}  // namespace

Tensor linear(const Tensor& x, const Tensor& w, const Tensor* b) {
  if (w.dim() != 2) fail(text("linear(): expected a 2-D weight, but got ", w.dim(), "-D"));
  if (x.dim() == 0) fail("linear(): expected an input with at least 1 dimension, but got a 0-dim tensor");
  check_same_dtype(x, w);
  const std::int64_t k = x.sizes.back(), rows = product(x.sizes, 0, x.dim() - 1);
  const std::int64_t n = w.sizes[0];
  if (w.sizes[1] != k) fail_mm(rows, k, w.sizes[1], n);
  if (b) {
    if (b->dtype != x.dtype) {
      fail(text("expected bias to have the same dtype as the input, but got: ", b->dtype, " != ", x.dtype));
    }
    if (broadcast_shapes(b->sizes, {n}) != std::vector<std::int64_t>{n}) {
      fail(text("linear(): bias of shape ", shape_string(b->sizes), " does not match the ", n, " output features"));
    }
  }
  Tensor out = Tensor::empty(x.dtype, concat(leading(x.sizes, 1), {n}));
  const Tensor bias = b ? view_at(*b, 0, {n}, broadcast_strides(*b, {n})) : Tensor{};
  multiply(x, transpose(w, 0, 1), rows, k, n, b ? &bias : nullptr, out, 0);
  return out;
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  if (a.dim() == 0 || b.dim() == 0) {
    fail(text("both arguments to matmul need to be at least 1D, but they are ", a.dim(), "D and ", b.dim(), "D"));
  }
  check_same_dtype(a, b);
  const std::int64_t k = a.sizes.back();
  if (a.dim() == 1 && b.dim() == 1) {
    if (b.sizes[0] != k) {
      fail(text("inconsistent tensor size, expected tensor [", k, "] and src [", b.sizes[0],
                "] to have the same number of elements, but got ", k, " and ", b.sizes[0], " elements respectively"));
    }
    Tensor out = Tensor::empty(a.dtype, {});
    multiply(a, b, 1, k, 1, nullptr, out, 0);
    return out;
  }
  if (b.dim() <= 2 && a.dim() >= 2) {
    // Fold a's leading dims into the rows, as torch.matmul does (mv or mm).
    const std::int64_t rows = product(a.sizes, 0, a.dim() - 1);
    if (b.dim() == 1) {
      if (b.sizes[0] != k) {
        fail(text("size mismatch, got input (", rows, "), mat (", rows, "x", k, "), vec (", b.sizes[0], ")"));
      }
      Tensor out = Tensor::empty(a.dtype, leading(a.sizes, 1));
      multiply(a, b, rows, k, 1, nullptr, out, 0);
      return out;
    }
    if (b.sizes[0] != k) fail_mm(rows, k, b.sizes[0], b.sizes[1]);
    Tensor out = Tensor::empty(a.dtype, concat(leading(a.sizes, 1), {b.sizes[1]}));
    multiply(a, b, rows, k, b.sizes[1], nullptr, out, 0);
    return out;
  }
  if (a.dim() == 1 && b.dim() == 2) {
    if (b.sizes[0] != k) fail_mm(1, k, b.sizes[0], b.sizes[1]);
    Tensor out = Tensor::empty(a.dtype, {b.sizes[1]});
    multiply(a, b, 1, k, b.sizes[1], nullptr, out, 0);
    return out;
  }
  return batched_matmul(a, b);
}

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor* mask,
                                    bool is_causal, std::optional<double> scale) {
  check_attention_inputs(q, k, v, mask, is_causal);
  const std::int64_t lq = q.sizes[q.dim() - 2], e = q.sizes.back();
  const std::int64_t lk = k.sizes[k.dim() - 2], ev = v.sizes.back();
  // The shapes PyTorch's math path produces: scores = q @ k^T (+ mask), then scores @ v.
  const std::vector<std::int64_t> qk_batch = broadcast_shapes(leading(q.sizes, 2), leading(k.sizes, 2));
  if (k.sizes.back() != e) fail_batch2(product(qk_batch, 0, qk_batch.size()), e, k.sizes.back());
  std::vector<std::int64_t> scores = concat(qk_batch, {lq, lk});
  if (mask) {
    scores = broadcast_shapes(scores, mask->sizes);
    if (scores[scores.size() - 2] != lq || scores.back() != lk) {
      fail(text("attn_mask of shape ", shape_string(mask->sizes), " does not broadcast to the attention scores ",
                shape_string(concat(qk_batch, {lq, lk}))));
    }
  }
  const std::vector<std::int64_t> batch = broadcast_shapes(leading(scores, 2), leading(v.sizes, 2));
  if (v.sizes[v.dim() - 2] != lk) fail_batch2(product(batch, 0, batch.size()), lk, v.sizes[v.dim() - 2]);

  const Tensor qe = expand(q, concat(batch, {lq, e}));
  const Tensor ke = expand(k, concat(batch, {lk, e}));
  const Tensor ve = expand(v, concat(batch, {lk, ev}));
  const Tensor me = mask ? expand(*mask, concat(batch, {lq, lk})) : Tensor{};
  const std::vector<std::int64_t> no_mask(batch.size(), 0);
  const double s = scale ? *scale : 1 / std::sqrt(static_cast<double>(e));

  Tensor out = Tensor::empty(q.dtype, concat(batch, {lq, ev}));
  walk<4>(batch, {leading(qe.strides, 2), leading(ke.strides, 2), leading(ve.strides, 2), mask ? leading(me.strides, 2) : no_mask},
          [&](std::int64_t i, const std::array<std::int64_t, 4>& o) {
            const Matrix mask_matrix = mask ? read_matrix(me, o[3]) : Matrix{};
            attend(read_matrix(qe, o[0]), read_matrix(ke, o[1]), read_matrix(ve, o[2]), mask ? &mask_matrix : nullptr,
                   mask && mask->dtype == DType::bool_, is_causal, s, out, i * lq * ev);
          });
  return out;
}

}  // namespace kiln::kernels::ref
