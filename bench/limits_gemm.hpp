// oneDNN matmul throughput on one GEMM shape, the way an inference engine would run it:
// activations [rows, k] plain, weights [k, n] reordered once into the layout the primitive
// prefers (format_tag::any), so the timing is of the GEMM alone. Part of
// kiln_bench_machine_limits.
#pragma once

#include <cstdint>
#include <string>

namespace bench {

enum class GemmType { f32, int8, bf16 };  // int8: u8 x s8 -> s32; bf16: bf16 x bf16 -> f32

const char* gemm_type_name(GemmType t);

struct GemmResult {
  bool supported = false;  // false: oneDNN has no implementation here (reported "n/a")
  double gflops = 0;       // 2*rows*k*n / the median call time
  std::string impl;        // oneDNN's implementation, e.g. "brg:avx512_core"
};

// Times calls for at least `min_ms` (and at least 5 calls) after two untimed ones, on
// `threads` OpenMP threads (set before the primitive is made: oneDNN plans its split then).
GemmResult time_gemm(GemmType type, std::int64_t rows, std::int64_t k, std::int64_t n, int threads, double min_ms);

}  // namespace bench
