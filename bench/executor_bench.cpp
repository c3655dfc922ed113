// The fast path against the reference executor on one archive, in one run, so the ratio
// is measured under the same machine load: kiln_bench_executor MODEL [BATCH SEQ [REPEATS
// [THREADS]]]. Inputs are Hugging Face-style (ids in [1000, 2000), mask of ones, one
// segment), made for every input the model takes by name. The two paths alternate run by
// run; prints the median of REPEATS runs per path, after one warm-up run each. THREADS
// (default 1) is the fast path's kernel threads; the reference kernels use one.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine/exec/program.hpp"
#include "engine/exec/provider.hpp"
#include "kernels/cpu/isa.hpp"
#include "kiln/error.hpp"

namespace {

using kiln::kernels::Tensor;

std::vector<Tensor> make_inputs(const kiln::exec::Program& p, std::int64_t batch, std::int64_t seq) {
  std::vector<Tensor> inputs;
  for (const auto& in : p.inputs) {
    Tensor t = Tensor::empty(kiln::DType::int64, {batch, seq});
    for (std::int64_t i = 0; i < batch * seq; ++i) {
      const std::int64_t v = in.name == "input_ids" ? 1000 + (i * 7919) % 1000 : in.name == "attention_mask" ? 1 : 0;
      kiln::kernels::store_int(t, i, v);
    }
    inputs.push_back(std::move(t));
  }
  return inputs;
}

double time_ms(const kiln::exec::Program& p, const std::vector<Tensor>& inputs, int threads) {
  kiln::exec::RunOptions options;
  options.threads = threads;
  const auto start = std::chrono::steady_clock::now();
  const auto out = kiln::exec::run(p, inputs, options);
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: kiln_bench_executor MODEL [BATCH SEQ [REPEATS [THREADS]]]\n");
    return 2;
  }
  const std::int64_t batch = argc > 3 ? std::atoll(argv[2]) : 1;
  const std::int64_t seq = argc > 3 ? std::atoll(argv[3]) : 128;
  const int repeats = argc > 4 ? std::max(1, std::atoi(argv[4])) : 5;
  const int threads = argc > 5 ? std::max(1, std::atoi(argv[5])) : 1;
  try {
    kiln::exec::LoadOptions reference;
    reference.providers = {&kiln::exec::reference_provider()};
    const auto fast_program = kiln::exec::load_program(argv[1]);
    const auto reference_program = kiln::exec::load_program(argv[1], reference);
    const std::vector<Tensor> inputs = make_inputs(*fast_program, batch, seq);
    // Alternate, so that both see the same machine conditions.
    time_ms(*reference_program, inputs, 1);
    time_ms(*fast_program, inputs, threads);
    std::vector<double> ref, fast;
    for (int r = 0; r < repeats; ++r) {
      ref.push_back(time_ms(*reference_program, inputs, 1));
      fast.push_back(time_ms(*fast_program, inputs, threads));
    }
    const double ref_ms = median(ref), fast_ms = median(fast);
    std::printf("model: %s, batch %lld, seq %lld, %d runs each, fast path on %d thread(s)\n", argv[1],
                static_cast<long long>(batch), static_cast<long long>(seq), repeats, threads);
    std::printf("reference executor: %.1f ms (median)\n", ref_ms);
    std::printf("fast path (%s):    %.1f ms (median), %.1fx the reference\n", kiln::kernels::cpu::isa_name(kiln::kernels::cpu::active_isa()),
                fast_ms, ref_ms / fast_ms);
  } catch (const kiln::Error& e) {
    std::fprintf(stderr, "kiln_bench_executor: %s\n", e.what());
    return 1;
  }
  return 0;
}
