// kiln_bench_worker MODEL [--threads T]: kiln's side of bench/compare, speaking the line
// protocol of worker_protocol.hpp. It uses only the public API (kiln/kiln.hpp), as a user
// embedding kiln would: load_ms is Model::load without preparation (no weight read),
// ready_ms adds Model::prepare() (weights packed, the traced shape warmed), which is what
// Model::load does by default; every run goes through Model::run.
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "bench/worker_protocol.hpp"
#include "kiln/kiln.hpp"

namespace {

class KilnEngine : public bench::Engine {
 public:
  KilnEngine(kiln::Model model, int threads) : model_(std::move(model)) { options_.threads = threads; }

  void set_inputs(std::int64_t batch, std::int64_t seq, std::vector<std::int64_t> input_ids) override {
    ids_ = std::move(input_ids);
    ones_.assign(ids_.size(), 1);
    zeros_.assign(ids_.size(), 0);
    inputs_.clear();
    for (const std::string& name : model_.input_names()) {
      const std::vector<std::int64_t>& values = name == "input_ids" ? ids_ : name == "attention_mask" ? ones_ : zeros_;
      inputs_.push_back(kiln::Tensor::view(kiln::DType::int64, {batch, seq}, values.data()));
    }
  }

  void run() override { outputs_ = model_.run(inputs_, options_); }

  std::vector<std::int64_t> first_output(std::vector<float>& values) override {
    if (outputs_.empty()) throw std::runtime_error("no run yet");
    const kiln::Tensor& t = outputs_[0];
    if (t.dtype() != kiln::DType::float32) throw std::runtime_error("the first output is not float32");
    const float* p = static_cast<const float*>(t.data());
    values.assign(p, p + t.numel());
    return t.shape();
  }

 private:
  kiln::Model model_;
  kiln::RunOptions options_;
  std::vector<std::int64_t> ids_, ones_, zeros_;
  std::vector<kiln::Tensor> inputs_, outputs_;
};

}  // namespace

int main(int argc, char** argv) {
  return bench::worker_main(argc, argv, "kiln_bench_worker", [](const std::string& path, int threads) {
    kiln::LoadOptions load;
    load.threads = threads;
    load.prepare = false;  // timed apart, below
    const auto start = std::chrono::steady_clock::now();
    kiln::Model model = kiln::Model::load(path, load);
    const double load_ms = bench::ms_since(start);
    model.prepare();
    const double ready_ms = bench::ms_since(start);
    const kiln::BuildInfo info = kiln::build_info();
    const std::string version = info.version + " (" + info.build_type + ", " + info.compiler +
                                (info.onednn ? ", oneDNN " + info.onednn_version : "") + ")";
    return bench::Loaded{std::make_unique<KilnEngine>(std::move(model), threads),
                         "\"engine\":\"kiln\",\"version\":\"" + bench::json_escape(version) + "\"", load_ms, ready_ms};
  });
}
