// A provider with its own memory space that runs only linear and layer_norm (plain or
// fused with the residual add): proof that placement and copies work. Its "device memory"
// is host memory tagged "test-device", and its kernels refuse anything else, so a tensor
// that skipped a copy cannot go unnoticed.
// Every fixture run through it must still match PyTorch.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <string>

#include "engine/exec/frame_args.hpp"
#include "engine/exec/provider.hpp"
#include "format/npy.hpp"
#include "kernels/reference/reference.hpp"
#include "kiln/error.hpp"
#include "tests/support/fixtures.hpp"

namespace exec = kiln::exec;
using kiln::kernels::Tensor;

namespace {

constexpr const char* kSpace = "test-device";

Tensor copy_into(const Tensor& t, const char* space) {
  const Tensor c = kiln::kernels::ref::contiguous(t);
  Tensor out = Tensor::empty(c.dtype, c.sizes);
  std::memcpy(out.bytes(), c.bytes(), static_cast<std::size_t>(c.numel()) * kiln::dtype_size(c.dtype));
  out.buffer->space = space;
  return out;
}

Tensor to_space(const Tensor& t) { return copy_into(t, kSpace); }
Tensor to_host(const Tensor& t) {
  REQUIRE(std::strcmp(t.buffer->space, kSpace) == 0);
  return copy_into(t, "host");
}

bool float_inputs(const kiln::ir::Graph& g, kiln::ir::NodeId n) {
  const auto& x = kiln::ir::value(g, kiln::ir::node(g, n).inputs.at(0)).type;
  return x.tensor.dtype == kiln::DType::float32;
}

bool supports(const kiln::ir::Graph& g, kiln::ir::NodeId n) {
  return (kiln::ir::is_kind(g, n, "aten::linear") || kiln::ir::is_kind(g, n, "aten::layer_norm") ||
          kiln::ir::is_kind(g, n, "kiln::add_layer_norm")) &&
         float_inputs(g, n);
}

// The device's kernels: read device tensors, compute, write device tensors.
const Tensor& device_tensor(exec::Frame& f, kiln::ir::NodeId n, std::size_t i) {
  const Tensor& t = exec::args::tensor(f, n, i);
  if (std::strcmp(t.buffer->space, kSpace) != 0) throw kiln::Error(kiln::ErrorKind::internal, "", "", "a host tensor reached the test device");
  return t;
}
const Tensor* opt_device_tensor(exec::Frame& f, kiln::ir::NodeId n, std::size_t i) {
  return exec::args::in(f, n, i).kind == exec::RtValue::Kind::none ? nullptr : &device_tensor(f, n, i);
}

void linear(exec::Frame& f, kiln::ir::NodeId n) {
  const Tensor* b = opt_device_tensor(f, n, 2);
  const Tensor hb = b ? to_host(*b) : Tensor{};
  const Tensor r = kiln::kernels::ref::linear(to_host(device_tensor(f, n, 0)), to_host(device_tensor(f, n, 1)), b ? &hb : nullptr);
  exec::args::out_tensor(f, n, to_space(r));
}

void layer_norm(exec::Frame& f, kiln::ir::NodeId n) {
  const Tensor* w = opt_device_tensor(f, n, 2);
  const Tensor* b = opt_device_tensor(f, n, 3);
  const Tensor hw = w ? to_host(*w) : Tensor{}, hb = b ? to_host(*b) : Tensor{};
  const Tensor r = kiln::kernels::ref::layer_norm(to_host(device_tensor(f, n, 0)), exec::args::ints_arg(f, n, 1), w ? &hw : nullptr,
                                                  b ? &hb : nullptr, exec::args::double_arg(f, n, 4));
  exec::args::out_tensor(f, n, to_space(r));
}

// The residual add fused with its layer norm (engine/passes/fusions.cpp).
void add_layer_norm(exec::Frame& f, kiln::ir::NodeId n) {
  const Tensor* w = opt_device_tensor(f, n, 3);
  const Tensor* b = opt_device_tensor(f, n, 4);
  const Tensor hw = w ? to_host(*w) : Tensor{}, hb = b ? to_host(*b) : Tensor{};
  const Tensor sum = kiln::kernels::ref::binary(kiln::kernels::ref::BinaryOp::add, to_host(device_tensor(f, n, 0)),
                                                to_host(device_tensor(f, n, 1)), kiln::DType::float32,
                                                kiln::DType::float32);
  const Tensor r = kiln::kernels::ref::layer_norm(sum, exec::args::ints_arg(f, n, 2), w ? &hw : nullptr,
                                                  b ? &hb : nullptr, exec::args::double_arg(f, n, 5));
  exec::args::out_tensor(f, n, to_space(r));
}

exec::Kernel kernel(const kiln::ir::Graph& g, kiln::ir::NodeId n) {
  if (kiln::ir::is_kind(g, n, "aten::linear")) return linear;
  return kiln::ir::is_kind(g, n, "kiln::add_layer_norm") ? add_layer_norm : layer_norm;
}

const exec::Provider kTestProvider{"test", kSpace, supports, kernel, to_space, to_host};

Tensor read_tensor(const std::filesystem::path& path) {
  const kiln::format::NpyArray a = kiln::format::read_npy(path.string());
  Tensor t = Tensor::empty(a.dtype, a.shape);
  std::memcpy(t.bytes(), a.data.data(), a.data.size());
  return t;
}

}  // namespace

TEST_CASE("providers: a provider with its own memory space runs linear and layer_norm, fixtures still match") {
  int fixtures = 0;
  for (const auto& f : kiln::testing::all_fixtures()) {
    if (!f.manifest.at("transformers").is_string() || f.name.rfind("minilm", 0) == 0) continue;  // tiny models suffice
    INFO(f.generation << "/" << f.name);
    exec::LoadOptions options;
    options.providers = {&kTestProvider, &exec::cpu_provider()};
    const auto program = exec::load_program((f.dir / f.manifest.at("archive").as_string()).string(), options);
    // Placement: every linear and layer_norm on the device, with copies in and out.
    std::map<std::string, int> on_device, copies;
    kiln::ir::walk(program->graph, [&](kiln::ir::NodeId n) {
      const std::string kind(kiln::ir::kind_str(program->graph, n));
      if (kind == "kiln::copy") ++copies[std::get<std::string>(kiln::ir::node(program->graph, n).attrs.at(1).value)];
      const exec::Provider* p = program->placement.at(kiln::ir::idx(n));
      if (p == &kTestProvider) ++on_device[kind];
      if (kind == "aten::linear" || kind == "aten::layer_norm" || kind == "kiln::add_layer_norm")
        CHECK(p == &kTestProvider);
    });
    CHECK(on_device["aten::linear"] > 0);
    CHECK(on_device["aten::layer_norm"] + on_device["kiln::add_layer_norm"] > 0);
    CHECK(copies[kSpace] > 0);
    CHECK(copies["host"] > 0);
    for (const auto& c : f.manifest.at("cases").as_array()) {
      if (c.find("error") || c.at("case").as_string() == "b8_s512_pad") continue;
      INFO(c.at("case").as_string());
      std::vector<Tensor> inputs;
      for (const auto& i : c.at("inputs").as_array()) inputs.push_back(read_tensor(f.dir / i.at("file").as_string()));
      const std::vector<Tensor> outputs = exec::run(*program, inputs);
      const auto& want = c.at("outputs").as_array();
      REQUIRE(outputs.size() == want.size());
      for (std::size_t k = 0; k < want.size(); ++k) {
        const Tensor expected = read_tensor(f.dir / want[k].at("file").as_string());
        CHECK(std::strcmp(outputs[k].buffer->space, "host") == 0);
        REQUIRE(outputs[k].sizes == expected.sizes);
        double worst = 0;
        for (std::int64_t i = 0; i < expected.numel(); ++i)
          worst = std::max(worst, std::fabs(kiln::kernels::load_double(outputs[k], i) - kiln::kernels::load_double(expected, i)));
        CHECK(worst <= 1e-4);
      }
    }
    ++fixtures;
  }
  CHECK(fixtures > 10);
}
