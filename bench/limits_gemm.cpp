#include "bench/limits_gemm.hpp"

#include <omp.h>

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

namespace bench {

namespace {

using dnnl::memory;
using dt = memory::data_type;
using tag = memory::format_tag;

// Values matter only in that they must not be denormal (which would slow fp32 down).
void fill(memory& m, dt type) {
  const std::size_t bytes = m.get_desc().get_size();
  auto* p = static_cast<unsigned char*>(m.get_data_handle());
  if (type == dt::f32) {
    auto* f = reinterpret_cast<float*>(p);
    for (std::size_t i = 0; i < bytes / sizeof(float); ++i) f[i] = 0.01f * static_cast<float>(i % 13) - 0.06f;
  } else if (type == dt::bf16) {
    auto* h = reinterpret_cast<std::uint16_t*>(p);
    for (std::size_t i = 0; i < bytes / 2; ++i) h[i] = static_cast<std::uint16_t>(0x3c00 + i % 64);  // ~0.008..0.015
  } else {
    for (std::size_t i = 0; i < bytes; ++i) p[i] = static_cast<unsigned char>(i % 7);
  }
}

}  // namespace

const char* gemm_type_name(GemmType t) {
  return t == GemmType::f32 ? "f32" : t == GemmType::int8 ? "int8" : "bf16";
}

GemmResult time_gemm(GemmType type, std::int64_t rows, std::int64_t k, std::int64_t n, int threads, double min_ms) {
  const dt src = type == GemmType::f32 ? dt::f32 : type == GemmType::int8 ? dt::u8 : dt::bf16;
  const dt wei = type == GemmType::f32 ? dt::f32 : type == GemmType::int8 ? dt::s8 : dt::bf16;
  const dt dst = type == GemmType::int8 ? dt::s32 : dt::f32;
  omp_set_num_threads(threads);
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  GemmResult result;
  dnnl::matmul::primitive_desc pd;
  try {
    const dnnl::matmul::desc desc(memory::desc({rows, k}, src, tag::ab), memory::desc({k, n}, wei, tag::any),
                                  memory::desc({rows, n}, dst, tag::ab));
    pd = dnnl::matmul::primitive_desc(desc, engine);
  } catch (const dnnl::error&) {
    return result;  // unimplemented for this type on this CPU
  }
  result.supported = true;
  result.impl = pd.impl_info_str();
  memory a(pd.src_desc(), engine), c(pd.dst_desc(), engine);
  memory b_plain(memory::desc({k, n}, wei, tag::ab), engine), b(pd.weights_desc(), engine);
  fill(a, src);
  fill(b_plain, wei);
  dnnl::reorder(b_plain, b).execute(stream, b_plain, b);
  const dnnl::matmul matmul(pd);
  auto call = [&] {
    matmul.execute(stream, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}});
    stream.wait();
  };
  call();
  call();
  std::vector<double> ms;
  double total = 0;
  while (total < min_ms || ms.size() < 5) {
    const auto start = std::chrono::steady_clock::now();
    call();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    total += ms.back();
  }
  std::nth_element(ms.begin(), ms.begin() + static_cast<std::ptrdiff_t>(ms.size() / 2), ms.end());
  result.gflops = 2.0 * static_cast<double>(rows * k * n) / (ms[ms.size() / 2] * 1e6);
  return result;
}

}  // namespace bench
