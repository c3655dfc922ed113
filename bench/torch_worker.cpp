// torch_bench_worker MODEL [--threads T]: LibTorch's side of bench/compare (Debian's
// libtorch 1.13), speaking the line protocol of worker_protocol.hpp. Set up as a careful
// LibTorch user would serve a traced model: the profiling executor off (it re-specialises
// the graph over the first runs, which makes steady state arrive late and unpredictably),
// eval(), InferenceMode for every run, at::set_num_threads(T). Built only with
// -Dlibtorch=enabled. bench/compare runs it with OPENBLAS_CORETYPE=SkylakeX.
#include <ATen/Parallel.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/script.h>
#include <torch/version.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/worker_protocol.hpp"

namespace {

class TorchEngine : public bench::Engine {
 public:
  explicit TorchEngine(torch::jit::Module module) : module_(std::move(module)) {
    const auto& arguments = module_.get_method("forward").function().getSchema().arguments();
    for (std::size_t i = 1; i < arguments.size(); ++i) names_.push_back(arguments[i].name());  // after self
  }

  void set_inputs(std::int64_t batch, std::int64_t seq, std::vector<std::int64_t> input_ids) override {
    c10::InferenceMode guard;
    inputs_.clear();
    for (const std::string& name : names_) {
      torch::Tensor t;
      if (name == "input_ids") {
        t = torch::from_blob(input_ids.data(), {batch, seq}, torch::kInt64).clone();
      } else {
        t = name == "attention_mask" ? torch::ones({batch, seq}, torch::kInt64) : torch::zeros({batch, seq}, torch::kInt64);
      }
      inputs_.emplace_back(std::move(t));
    }
  }

  void run() override {
    c10::InferenceMode guard;
    output_ = module_.forward(inputs_);
  }

  std::vector<std::int64_t> first_output(std::vector<float>& values) override {
    c10::InferenceMode guard;
    torch::Tensor t;
    if (output_.isTuple()) {
      t = output_.toTupleRef().elements().at(0).toTensor();
    } else if (output_.isTensor()) {
      t = output_.toTensor();
    } else {
      throw std::runtime_error("no run yet, or the first output is not a tensor");
    }
    t = t.to(torch::kFloat32).contiguous();
    values.assign(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
    return t.sizes().vec();
  }

 private:
  torch::jit::Module module_;
  std::vector<std::string> names_;
  std::vector<torch::jit::IValue> inputs_;
  torch::jit::IValue output_;
};

}  // namespace

int main(int argc, char** argv) {
  return bench::worker_main(argc, argv, "torch_bench_worker", [](const std::string& path, int threads) {
    torch::jit::getProfilingMode() = false;
    torch::jit::getExecutorMode() = false;
    at::set_num_threads(threads);
    const auto start = std::chrono::steady_clock::now();
    torch::jit::Module module;
    try {
      module = torch::jit::load(path);
    } catch (const c10::Error& e) {
      throw std::runtime_error(e.what_without_backtrace());  // one line for the driver, not a stack
    }
    module.eval();
    const double load_ms = bench::ms_since(start);
    const std::string version = std::string(TORCH_VERSION) + " (profiling executor off, InferenceMode, " +
                                std::to_string(at::get_num_threads()) + " threads)";
    return bench::Loaded{std::make_unique<TorchEngine>(std::move(module)),
                         "\"engine\":\"libtorch\",\"version\":\"" + version + "\"", load_ms};
  });
}
