#include "kernels/cpu/fast.hpp"

#include <cstddef>
#include <memory>

#include "kernels/cpu/gelu.hpp"
#include "kernels/cpu/gemm.hpp"
#include "kernels/cpu/layer_norm.hpp"
#include "kernels/cpu/softmax.hpp"

namespace kiln::kernels::fast {

namespace {

bool dense_f32(const Tensor& t) { return t.dtype == DType::float32 && t.buffer && t.is_contiguous(); }

// A non-empty float32 tensor the kernels can read as one flat array.
bool usable(const Tensor& t) { return dense_f32(t) && t.dim() >= 1 && t.numel() > 0; }

// An optional per-feature vector: absent, or float32, contiguous, 1-D with `n` elements.
bool usable_vector(const Tensor* t, std::int64_t n) {
  return !t || (dense_f32(*t) && t->dim() == 1 && t->sizes[0] == n);
}

// The number of rows when the trailing dims of `sizes` multiply to exactly `n`, else 0.
std::int64_t rows_for_trailing(const std::vector<std::int64_t>& sizes, std::int64_t n) {
  std::int64_t trailing = 1;
  for (std::size_t d = sizes.size(); d-- > 0;) {
    trailing *= sizes[d];
    if (trailing == n) {
      std::int64_t rows = 1;
      for (std::size_t e = 0; e < d; ++e) rows *= sizes[e];
      return rows;
    }
    if (trailing > n) return 0;
  }
  return 0;
}

// layer_norm's weight and bias: absent, or float32 and contiguous with `n` elements (shaped
// like the normalized dims, so not necessarily 1-D).
bool usable_affine(const Tensor* t, std::int64_t n) { return !t || (dense_f32(*t) && t->numel() == n); }

const float* data_or_null(const Tensor* t) { return t ? t->data<const float>() : nullptr; }

void run_gemm(Isa isa, const float* a, const float* b, const float* bias, float* c, std::int64_t m, std::int64_t n,
              std::int64_t k) {
  switch (isa) {
    case Isa::avx512: {
      const auto pack = std::make_unique<float[]>(static_cast<std::size_t>(cpu::avx512::gemm_pack_floats(n, k)));
      return cpu::avx512::gemm_abt(a, b, bias, c, m, n, k, pack.get());
    }
    case Isa::avx2: {
      const auto pack = std::make_unique<float[]>(static_cast<std::size_t>(cpu::avx2::gemm_pack_floats(n, k)));
      return cpu::avx2::gemm_abt(a, b, bias, c, m, n, k, pack.get());
    }
    case Isa::scalar: return cpu::scalar::gemm_abt(a, b, bias, c, m, n, k);
  }
}

}  // namespace

bool linear(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& out, Isa isa) {
  if (!usable(x) || !usable(w) || w.dim() != 2) return false;
  const std::int64_t k = x.sizes.back(), n = w.sizes[0];
  if (w.sizes[1] != k || !usable_vector(b, n)) return false;
  const std::int64_t m = x.numel() / k;
  std::vector<std::int64_t> sizes = x.sizes;
  sizes.back() = n;
  Tensor result = Tensor::empty(DType::float32, std::move(sizes));
  run_gemm(isa, x.data<const float>(), w.data<const float>(), data_or_null(b), result.data<float>(), m, n, k);
  out = std::move(result);
  return true;
}

bool softmax_lastdim(const Tensor& x, Tensor& out, Isa isa) {
  if (!usable(x)) return false;
  const std::int64_t n = x.sizes.back(), rows = x.numel() / n;
  Tensor result = Tensor::empty(DType::float32, x.sizes);
  const float* in = x.data<const float>();
  float* y = result.data<float>();
  switch (isa) {
    case Isa::avx512: cpu::avx512::softmax_rows(in, y, rows, n); break;
    case Isa::avx2: cpu::avx2::softmax_rows(in, y, rows, n); break;
    case Isa::scalar: cpu::scalar::softmax_rows(in, y, rows, n); break;
  }
  out = std::move(result);
  return true;
}

bool layer_norm(const Tensor& x, std::int64_t normalized_size, const Tensor* w, const Tensor* b, double eps,
                Tensor& out, Isa isa) {
  if (!usable(x) || normalized_size <= 0) return false;
  if (!usable_affine(w, normalized_size) || !usable_affine(b, normalized_size)) return false;
  const std::int64_t rows = rows_for_trailing(x.sizes, normalized_size), n = normalized_size;
  if (rows == 0) return false;
  Tensor result = Tensor::empty(DType::float32, x.sizes);
  const float* in = x.data<const float>();
  const float *wp = data_or_null(w), *bp = data_or_null(b);
  float* y = result.data<float>();
  switch (isa) {
    case Isa::avx512: cpu::avx512::layer_norm_rows(in, wp, bp, y, rows, n, eps); break;
    case Isa::avx2: cpu::avx2::layer_norm_rows(in, wp, bp, y, rows, n, eps); break;
    case Isa::scalar: cpu::scalar::layer_norm_rows(in, wp, bp, y, rows, n, eps); break;
  }
  out = std::move(result);
  return true;
}

bool gelu(const Tensor& x, bool tanh_approx, Tensor& out, Isa) {
  if (!usable(x)) return false;
  Tensor result = Tensor::empty(DType::float32, x.sizes);
  cpu::gelu(x.data<const float>(), result.data<float>(), x.numel(), tanh_approx);
  out = std::move(result);
  return true;
}

}  // namespace kiln::kernels::fast
