// C[m, n] = A[m, k] * B^T + bias, B stored [n, k] (torch.linear's weight layout), all
// contiguous float32; bias (n floats) may be null. One implementation per instruction set
// (gemm_<isa>.cpp); the oracle is ref::linear.
//
// Sums are float32 with FMA (as PyTorch's CPU linear does), so results differ from the
// reference's double sums by float rounding: at most gamma_(k+1) * (sum |a*b| + |bias|).
//
// The vector versions pack B into panels of NR columns ([k][NR], zero-padded) so that the
// microkernel reads one contiguous row of B per k; `pack` is caller-provided scratch of
// gemm_pack_floats(n, k) floats (the caller owns memory so that these translation units
// instantiate no library templates: see fast.cpp on ODR).
//
// The strided form serves attention, whose operands are heads inside wider rows: B is
// packed once (gemm_pack_nk from [n, k] rows, gemm_pack_kn from [k, n] rows, each with its
// own row stride, into gemm_pack_floats(n, k) floats), then gemm_packed computes C[m, n] =
// A[m, k] * B for any row strides of A and C, overwriting C, as often as needed.
#pragma once

#include <cstdint>

namespace kiln::kernels::cpu {
namespace scalar {
void gemm_abt(const float* a, const float* b, const float* bias, float* c, std::int64_t m, std::int64_t n,
              std::int64_t k);
}
namespace avx2 {
std::int64_t gemm_pack_floats(std::int64_t n, std::int64_t k);
void gemm_abt(const float* a, const float* b, const float* bias, float* c, std::int64_t m, std::int64_t n,
              std::int64_t k, float* pack);
void gemm_pack_nk(const float* b, std::int64_t ldb, std::int64_t n, std::int64_t k, float* pack);
void gemm_pack_kn(const float* b, std::int64_t ldb, std::int64_t n, std::int64_t k, float* pack);
void gemm_packed(const float* a, std::int64_t lda, const float* pack, float* c, std::int64_t ldc, std::int64_t m,
                 std::int64_t n, std::int64_t k);
}
namespace avx512 {
std::int64_t gemm_pack_floats(std::int64_t n, std::int64_t k);
void gemm_abt(const float* a, const float* b, const float* bias, float* c, std::int64_t m, std::int64_t n,
              std::int64_t k, float* pack);
void gemm_pack_nk(const float* b, std::int64_t ldb, std::int64_t n, std::int64_t k, float* pack);
void gemm_pack_kn(const float* b, std::int64_t ldb, std::int64_t n, std::int64_t k, float* pack);
void gemm_packed(const float* a, std::int64_t lda, const float* pack, float* c, std::int64_t ldc, std::int64_t m,
                 std::int64_t n, std::int64_t k);
}
}  // namespace kiln::kernels::cpu
