#include "kernels/cpu/fast.hpp"

#include <algorithm>
#include <cstddef>
#include <memory>
#include <utility>

#include "kernels/cpu/elementwise_isa.hpp"
#include "kernels/cpu/gemm.hpp"
#include "kernels/cpu/layer_norm.hpp"
#include "kernels/cpu/parallel.hpp"
#include "kernels/cpu/scratch.hpp"
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

// Work below these sizes runs on the calling thread: waking a thread costs some
// microseconds, so a range should take at least that long.
constexpr std::int64_t kGemmMacsPerRange = std::int64_t{1} << 18;  // multiply-adds
constexpr std::int64_t kRowElementsPerRange = std::int64_t{1} << 14;  // softmax, layer_norm

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

// The GEMM's packed B (`pack`) and a column block of C (`block`), per thread: the price of
// not faulting in fresh pages on every call is each thread keeping its largest packed B (9
// MiB for BERT-base's 3072 x 768 weights) until it exits.
thread_local cpu::Scratch t_pack, t_block;

// One ISA's single-threaded GEMM on a block of C: c = a * b^T + bias with ldc == n.
void gemm_block(Isa isa, const float* a, const float* b, const float* bias, float* c, std::int64_t m, std::int64_t n,
                std::int64_t k) {
  switch (isa) {
    case Isa::avx512: {
      float* pack = t_pack.get(cpu::avx512::gemm_pack_floats(n, k));
      return cpu::avx512::gemm_abt(a, b, bias, c, m, n, k, pack);
    }
    case Isa::avx2: {
      float* pack = t_pack.get(cpu::avx2::gemm_pack_floats(n, k));
      return cpu::avx2::gemm_abt(a, b, bias, c, m, n, k, pack);
    }
    case Isa::scalar: return cpu::scalar::gemm_abt(a, b, bias, c, m, n, k);
  }
}

// The register tile of each ISA's microkernel (kMr and kNr in gemm_<isa>.cpp): threads get
// row and column blocks of C in multiples of these, so that no block starts a partial
// tile. Only for speed: any split gives the same bits, since each element of C is the same
// FMA chain over k whatever tile it sits in.
std::int64_t tile_rows(Isa isa) { return isa == Isa::avx512 ? 8 : isa == Isa::avx2 ? 6 : 1; }
std::int64_t tile_cols(Isa isa) {
  switch (isa) {
    case Isa::avx512: return cpu::avx512::gemm_pack_floats(1, 1);
    case Isa::avx2: return cpu::avx2::gemm_pack_floats(1, 1);
    case Isa::scalar: return 1;
  }
  return 1;
}

// [begin, end) of group g of `groups` near-equal groups of `blocks` blocks of `size`,
// clipped to `limit`.
std::pair<std::int64_t, std::int64_t> group_span(std::int64_t g, std::int64_t groups, std::int64_t blocks,
                                                 std::int64_t size, std::int64_t limit) {
  return {std::min(limit, g * blocks / groups * size), std::min(limit, (g + 1) * blocks / groups * size)};
}

// C = epilogue(A * B^T + bias) over max_threads(): C cut into a grid of row groups x
// column groups, one cell per thread, each cell at least kGemmMacsPerRange multiply-adds.
// The GEMM packs the B columns it uses on every call (about as long as a hundred rows of A
// take to multiply with them), so columns are split first, each thread packing only its
// own; splitting rows would have every thread pack the same columns again. Rows get the
// threads that column panels cannot use. A cell narrower than C is computed into a
// per-thread [rows, cols] buffer and copied out, since the GEMM's ldc is its own n. Each
// cell gets the epilogue as soon as it is done, while it is still in cache.
void run_gemm(Isa isa, const float* a, const float* b, const float* bias, float* c, std::int64_t m, std::int64_t n,
              std::int64_t k, Epilogue epilogue) {
  const std::int64_t mr = tile_rows(isa), nr = tile_cols(isa);
  const std::int64_t row_blocks = ceil_div(m, mr), col_blocks = ceil_div(n, nr);
  const std::int64_t cells = std::min<std::int64_t>(cpu::max_threads(), m * n * k / kGemmMacsPerRange);
  if (cells <= 1) {
    gemm_block(isa, a, b, bias, c, m, n, k);
    return apply_epilogue(isa, epilogue, c, m * n);
  }
  const std::int64_t col_groups = std::min(cells, col_blocks);
  const std::int64_t row_groups = std::min(cells / col_groups, row_blocks);
  cpu::parallel_for(row_groups * col_groups, 1, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t cell = begin; cell < end; ++cell) {
      const auto [i0, i1] = group_span(cell / col_groups, row_groups, row_blocks, mr, m);
      const auto [j0, j1] = group_span(cell % col_groups, col_groups, col_blocks, nr, n);
      const std::int64_t rows = i1 - i0, cols = j1 - j0;
      if (cols == n) {
        gemm_block(isa, a + i0 * k, b, bias, c + i0 * n, rows, n, k);
        apply_epilogue(isa, epilogue, c + i0 * n, rows * n);
        continue;
      }
      float* block = t_block.get(rows * cols);
      gemm_block(isa, a + i0 * k, b + j0 * k, bias ? bias + j0 : nullptr, block, rows, cols, k);
      apply_epilogue(isa, epilogue, block, rows * cols);
      for (std::int64_t i = 0; i < rows; ++i) std::copy_n(block + i * cols, cols, c + (i0 + i) * n + j0);
    }
  });
}

// Rows [0, rows) of a row-wise kernel over max_threads(), each range at least
// kRowElementsPerRange elements.
template <class F>
void for_rows(std::int64_t rows, std::int64_t n, F&& f) {
  cpu::parallel_for(rows, ceil_div(kRowElementsPerRange, n), f);
}

}  // namespace

bool linear(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& out, Isa isa) {
  return linear(x, w, b, out, Epilogue::none, isa);
}

bool linear(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& out, Epilogue epilogue, Isa isa) {
  if (!usable(x) || !usable(w) || w.dim() != 2) return false;
  const std::int64_t k = x.sizes.back(), n = w.sizes[0];
  if (w.sizes[1] != k || !usable_vector(b, n)) return false;
  const std::int64_t m = x.numel() / k;
  std::vector<std::int64_t> sizes = x.sizes;
  sizes.back() = n;
  Tensor result = Tensor::uninitialized(DType::float32, std::move(sizes));
  run_gemm(isa, x.data<const float>(), w.data<const float>(), data_or_null(b), result.data<float>(), m, n, k,
           epilogue);
  out = std::move(result);
  return true;
}

bool softmax_lastdim(const Tensor& x, Tensor& out, Isa isa) {
  if (!usable(x)) return false;
  const std::int64_t n = x.sizes.back(), rows = x.numel() / n;
  Tensor result = Tensor::uninitialized(DType::float32, x.sizes);
  const float* in = x.data<const float>();
  float* y = result.data<float>();
  for_rows(rows, n, [&](std::int64_t r0, std::int64_t r1) {
    const float* xr = in + r0 * n;
    float* yr = y + r0 * n;
    switch (isa) {
      case Isa::avx512: return cpu::avx512::softmax_rows(xr, yr, r1 - r0, n);
      case Isa::avx2: return cpu::avx2::softmax_rows(xr, yr, r1 - r0, n);
      case Isa::scalar: return cpu::scalar::softmax_rows(xr, yr, r1 - r0, n);
    }
  });
  out = std::move(result);
  return true;
}

bool layer_norm(const Tensor& x, std::int64_t normalized_size, const Tensor* w, const Tensor* b, double eps,
                Tensor& out, Isa isa) {
  if (!usable(x) || normalized_size <= 0) return false;
  if (!usable_affine(w, normalized_size) || !usable_affine(b, normalized_size)) return false;
  const std::int64_t rows = rows_for_trailing(x.sizes, normalized_size), n = normalized_size;
  if (rows == 0) return false;
  Tensor result = Tensor::uninitialized(DType::float32, x.sizes);
  const float* in = x.data<const float>();
  const float *wp = data_or_null(w), *bp = data_or_null(b);
  float* y = result.data<float>();
  for_rows(rows, n, [&](std::int64_t r0, std::int64_t r1) {
    const float* xr = in + r0 * n;
    float* yr = y + r0 * n;
    switch (isa) {
      case Isa::avx512: return cpu::avx512::layer_norm_rows(xr, wp, bp, yr, r1 - r0, n, eps);
      case Isa::avx2: return cpu::avx2::layer_norm_rows(xr, wp, bp, yr, r1 - r0, n, eps);
      case Isa::scalar: return cpu::scalar::layer_norm_rows(xr, wp, bp, yr, r1 - r0, n, eps);
    }
  });
  out = std::move(result);
  return true;
}

}  // namespace kiln::kernels::fast
