// The C API (include/kiln/kiln.h) against the C++ one: a fixture run through both gives
// the same bytes, from a file and from memory; and every way of calling it wrongly is a
// status and a message, never an abort or an exception.
#include <doctest/doctest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "format/npy.hpp"
#include "kiln/kiln.h"
#include "kiln/kiln.hpp"
#include "tests/support/fixtures.hpp"

namespace {

using Found = kiln::testing::FixtureCases;

Found find(const std::string& generation, const std::string& name) { return kiln::testing::fixture_cases(generation, name); }

std::string last_error() { return kiln_last_error(); }

// The status, and that the message says `part`.
#define CHECK_FAILS(call, status, part)                         \
  do {                                                          \
    CHECK((call) == (status));                                  \
    CHECK_MESSAGE(last_error().find(part) != std::string::npos, \
                  "message: '" << last_error() << "'");         \
  } while (0)

// RAII for tests only: destroys what the C API created.
struct Model {
  kiln_model* m = nullptr;
  ~Model() { kiln_model_destroy(m); }
};
struct Tensors {
  std::vector<kiln_tensor*> t;
  ~Tensors() {
    for (kiln_tensor* x : t) kiln_tensor_destroy(x);
  }
};

Tensors c_tensors(const std::vector<kiln::format::NpyArray>& arrays, bool view) {
  Tensors out;
  for (const auto& a : arrays) {
    kiln_tensor* t = nullptr;
    const auto create = view ? kiln_tensor_create_view : kiln_tensor_create_copy;
    REQUIRE(create(static_cast<kiln_dtype>(a.dtype), a.shape.data(), a.shape.size(), a.data.data(), a.data.size(), &t) ==
            KILN_OK);
    out.t.push_back(t);
  }
  return out;
}

std::vector<kiln::Tensor> cpp_tensors(const std::vector<kiln::format::NpyArray>& arrays) {
  std::vector<kiln::Tensor> out;
  for (const auto& a : arrays) out.push_back(kiln::Tensor::from_bytes(a.dtype, a.shape, a.data.data()));
  return out;
}

// The C outputs are the C++ outputs, byte for byte.
void check_same(const std::vector<kiln_tensor*>& c, const std::vector<kiln::Tensor>& cpp) {
  REQUIRE(c.size() == cpp.size());
  for (std::size_t k = 0; k < c.size(); ++k) {
    INFO("output " << k);
    CHECK(kiln_tensor_dtype(c[k]) == static_cast<kiln_dtype>(cpp[k].dtype()));
    REQUIRE(kiln_tensor_rank(c[k]) == cpp[k].shape().size());
    CHECK(std::vector<std::int64_t>(kiln_tensor_shape(c[k]), kiln_tensor_shape(c[k]) + kiln_tensor_rank(c[k])) ==
          cpp[k].shape());
    REQUIRE(kiln_tensor_nbytes(c[k]) == cpp[k].nbytes());
    CHECK(std::memcmp(kiln_tensor_data(c[k]), cpp[k].data(), cpp[k].nbytes()) == 0);
    std::vector<char> copy(cpp[k].nbytes() + 1, 'z');
    REQUIRE(kiln_tensor_copy_to(c[k], copy.data(), copy.size()) == KILN_OK);
    CHECK(std::memcmp(copy.data(), cpp[k].data(), cpp[k].nbytes()) == 0);
    CHECK(copy.back() == 'z');
  }
}

std::vector<char> file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A t2/bert_tiny_3in model loaded through the C API, and int64 [1, 8] inputs for it.
struct Bert {
  Found f = find("t2", "bert_tiny_3in");
  Model model;
  std::vector<std::int64_t> ids{101, 7, 8, 9, 10, 11, 12, 102}, mask = std::vector<std::int64_t>(8, 1),
                            types = std::vector<std::int64_t>(8, 0);
  std::int64_t shape[2] = {1, 8};
  Tensors in;
  Bert() {
    REQUIRE(kiln_model_load(f.archive.c_str(), nullptr, &model.m) == KILN_OK);
    for (const auto* v : {&ids, &mask, &types}) {
      kiln_tensor* t = nullptr;
      REQUIRE(kiln_tensor_create_view(KILN_INT64, shape, 2, v->data(), v->size() * 8, &t) == KILN_OK);
      in.t.push_back(t);
    }
  }
};

}  // namespace

TEST_CASE("capi: a fixture runs through the C API with the C++ API's bytes") {
  const Found f = find("t2", "bert_tiny_3in");
  Model model;
  REQUIRE(kiln_model_load(f.archive.c_str(), nullptr, &model.m) == KILN_OK);
  CHECK(last_error().empty());
  const kiln::Model cpp = kiln::Model::load(f.archive);
  REQUIRE(!f.cases.empty());
  for (std::size_t c = 0; c < f.cases.size(); ++c) {
    INFO("case " << c);
    const std::vector<kiln::Tensor> expected = cpp.run(cpp_tensors(f.cases[c]));
    for (const bool view : {false, true}) {
      INFO("view " << view);
      const Tensors in = c_tensors(f.cases[c], view);
      if (view) CHECK(kiln_tensor_data(in.t[0]) == static_cast<const void*>(f.cases[c][0].data.data()));
      Tensors out;
      out.t.assign(4, nullptr);
      std::size_t n = 99;
      REQUIRE(kiln_run(model.m, in.t.data(), in.t.size(), nullptr, out.t.data(), out.t.size(), &n) == KILN_OK);
      CHECK(last_error().empty());
      REQUIRE(n == 2);
      CHECK(out.t[2] == nullptr);
      out.t.resize(n);
      check_same(out.t, expected);
    }
  }
}

TEST_CASE("capi: a run by name, in any order, with run options") {
  const Found f = find("t2", "bert_tiny_3in");
  Model model;
  REQUIRE(kiln_model_load(f.archive.c_str(), nullptr, &model.m) == KILN_OK);
  const kiln::Model cpp = kiln::Model::load(f.archive);
  {
    const Tensors in = c_tensors(f.cases[0], false);
    const char* names[] = {"token_type_ids", "input_ids", "attention_mask"};
    kiln_tensor* const by_name[] = {in.t[2], in.t[0], in.t[1]};
    kiln_run_options* options = nullptr;
    REQUIRE(kiln_run_options_create(&options) == KILN_OK);
    CHECK(kiln_run_options_set_threads(options, 1) == KILN_OK);
    CHECK(kiln_run_options_set_max_memory(options, 0) == KILN_OK);
    CHECK(kiln_run_options_set_strict_shapes(options, 1) == KILN_OK);
    Tensors out;
    out.t.assign(2, nullptr);
    std::size_t n = 0;
    REQUIRE(kiln_run_named(model.m, names, by_name, 3, options, out.t.data(), 2, &n) == KILN_OK);
    kiln_run_options_destroy(options);
    REQUIRE(n == 2);
    check_same(out.t, cpp.run(cpp_tensors(f.cases[0])));
  }
}

TEST_CASE("capi: load options choose the providers") {
  const Found f = find("t2", "bert_tiny_3in");
  {
    kiln_options* options = nullptr;
    REQUIRE(kiln_options_create(&options) == KILN_OK);
    const char* providers[] = {"cpu-reference"};
    CHECK(kiln_options_set_providers(options, providers, 1) == KILN_OK);
    CHECK(kiln_options_set_threads(options, 2) == KILN_OK);
    CHECK(kiln_options_set_max_memory(options, 1 << 30) == KILN_OK);
    Model reference;
    REQUIRE(kiln_model_load(f.archive.c_str(), options, &reference.m) == KILN_OK);
    kiln_options_destroy(options);  // the model does not need them any more
    kiln::LoadOptions o;
    o.providers = {"cpu-reference"};
    const Tensors in = c_tensors(f.cases[0], false);
    Tensors out;
    out.t.assign(2, nullptr);
    std::size_t n = 0;
    REQUIRE(kiln_run(reference.m, in.t.data(), 3, nullptr, out.t.data(), 2, &n) == KILN_OK);
    check_same(out.t, kiln::Model::load(f.archive, o).run(cpp_tensors(f.cases[0])));
  }
}

TEST_CASE("capi: a model loaded from memory runs like one loaded from its file") {
  const Found f = find("t2", "bert_tiny_3in");
  const std::vector<char> bytes = file_bytes(f.archive);
  REQUIRE(!bytes.empty());
  Model model;
  REQUIRE(kiln_model_load_from_memory(bytes.data(), bytes.size(), nullptr, &model.m) == KILN_OK);
  CHECK(kiln_model_input_count(model.m) == 3);
  const Tensors in = c_tensors(f.cases.at(0), true);
  Tensors out;
  out.t.assign(2, nullptr);
  std::size_t n = 0;
  REQUIRE(kiln_run(model.m, in.t.data(), 3, nullptr, out.t.data(), 2, &n) == KILN_OK);
  check_same(out.t, kiln::Model::load(f.archive).run(cpp_tensors(f.cases.at(0))));
  // Outputs outlive their model.
  kiln_model_destroy(model.m);
  model.m = nullptr;
  CHECK(kiln_tensor_nbytes(out.t[0]) > 0);

  kiln_model* bad = reinterpret_cast<kiln_model*>(&n);  // overwritten with NULL on failure
  const std::vector<char> junk(100, 'x');
  CHECK_FAILS(kiln_model_load_from_memory(junk.data(), junk.size(), nullptr, &bad), KILN_ERROR_BAD_INPUT, "<memory>");
  CHECK(bad == nullptr);
  CHECK_FAILS(kiln_model_load_from_memory(nullptr, 10, nullptr, &bad), KILN_ERROR_USAGE,
              "kiln_model_load_from_memory: data is NULL but size is 10");
  CHECK_FAILS(kiln_model_load_from_memory(nullptr, 0, nullptr, &bad), KILN_ERROR_BAD_INPUT, "<memory>");
  CHECK_FAILS(kiln_model_load_from_memory(bytes.data(), bytes.size(), nullptr, nullptr), KILN_ERROR_USAGE,
              "kiln_model_load_from_memory: out is NULL");
}

TEST_CASE("capi: introspection names inputs and outputs, their dtypes and symbolic sizes") {
  Bert b;
  kiln_model* m = b.model.m;
  REQUIRE(kiln_model_input_count(m) == 3);
  REQUIRE(kiln_model_output_count(m) == 2);
  CHECK(std::string(kiln_model_input_name(m, 0)) == "input_ids");
  CHECK(std::string(kiln_model_input_name(m, 1)) == "attention_mask");
  CHECK(std::string(kiln_model_input_name(m, 2)) == "token_type_ids");
  CHECK(std::string(kiln_model_output_name(m, 1)) == "output_1");
  kiln_dtype dtype = KILN_BOOL;
  REQUIRE(kiln_model_input_dtype(m, 0, &dtype) == KILN_OK);
  CHECK(dtype == KILN_INT64);
  REQUIRE(kiln_model_output_dtype(m, 0, &dtype) == KILN_OK);
  CHECK(dtype == KILN_FLOAT32);
  int32_t rank = 0;
  REQUIRE(kiln_model_input_rank(m, 1, &rank) == KILN_OK);
  CHECK(rank == 2);
  REQUIRE(kiln_model_output_rank(m, 0, &rank) == KILN_OK);
  CHECK(rank == 3);
  int64_t size = 0;
  const char* symbol = nullptr;
  REQUIRE(kiln_model_input_dim(m, 0, 1, &size, &symbol) == KILN_OK);
  CHECK(size == -1);
  CHECK(std::string(symbol) == "seq");
  REQUIRE(kiln_model_output_dim(m, 0, 0, &size, &symbol) == KILN_OK);
  CHECK(std::string(symbol) == "batch");
  REQUIRE(kiln_model_output_dim(m, 0, 2, &size, nullptr) == KILN_OK);
  CHECK(size == 32);  // hidden size, fixed
  REQUIRE(kiln_model_output_dim(m, 0, 2, &size, &symbol) == KILN_OK);
  CHECK(std::string(symbol).empty());

  CHECK(kiln_dtype_size(KILN_INT64) == 8);
  CHECK(kiln_dtype_size(KILN_BOOL) == 1);
  CHECK(kiln_dtype_size(static_cast<kiln_dtype>(42)) == 0);
  CHECK(std::string(kiln_dtype_name(KILN_BFLOAT16)) == "bfloat16");
  CHECK(std::string(kiln_dtype_name(KILN_DTYPE_UNKNOWN)) == "unknown");
  CHECK(std::string(kiln_version()) == kiln::build_info().version);
}

TEST_CASE("capi: introspection with a NULL model or an index out of range") {
  Bert b;
  kiln_model* m = b.model.m;
  CHECK(kiln_model_input_count(nullptr) == 0);
  CHECK(last_error() == "kiln_model_input_count: model is NULL");
  CHECK(kiln_model_output_count(nullptr) == 0);
  CHECK(last_error() == "kiln_model_output_count: model is NULL");
  CHECK(kiln_model_input_name(nullptr, 0) == nullptr);
  CHECK(last_error() == "kiln_model_input_name: model is NULL");
  CHECK(kiln_model_input_name(m, 3) == nullptr);
  CHECK(last_error() == "kiln_model_input_name: input index 3 is out of range: the model has 3 inputs");
  CHECK(kiln_model_output_name(m, 2) == nullptr);
  CHECK(last_error() == "kiln_model_output_name: output index 2 is out of range: the model has 2 outputs");
  kiln_dtype dtype = KILN_BOOL;
  CHECK_FAILS(kiln_model_input_dtype(nullptr, 0, &dtype), KILN_ERROR_USAGE, "kiln_model_input_dtype: model is NULL");
  CHECK_FAILS(kiln_model_input_dtype(m, 0, nullptr), KILN_ERROR_USAGE, "kiln_model_input_dtype: dtype is NULL");
  CHECK_FAILS(kiln_model_output_dtype(m, 5, &dtype), KILN_ERROR_USAGE, "output index 5 is out of range");
  CHECK(dtype == KILN_BOOL);  // untouched on failure
  int32_t rank = 0;
  CHECK_FAILS(kiln_model_input_rank(m, 0, nullptr), KILN_ERROR_USAGE, "kiln_model_input_rank: rank is NULL");
  CHECK_FAILS(kiln_model_output_rank(m, 9, &rank), KILN_ERROR_USAGE, "output index 9 is out of range");
  int64_t size = 0;
  CHECK_FAILS(kiln_model_input_dim(m, 0, 2, &size, nullptr), KILN_ERROR_USAGE,
              "kiln_model_input_dim: dim 2 is out of range: input 'input_ids' has 2 dimensions");
  CHECK_FAILS(kiln_model_input_dim(m, 0, 0, nullptr, nullptr), KILN_ERROR_USAGE, "kiln_model_input_dim: size is NULL");
  CHECK_FAILS(kiln_model_output_dim(m, 7, 0, &size, nullptr), KILN_ERROR_USAGE, "output index 7 is out of range");
  CHECK(kiln_model_input_count(m) == 3);
  CHECK(last_error().empty());
}

TEST_CASE("capi: loading refuses NULL arguments, missing files and bad options") {
  const Found f = find("t2", "bert_tiny_3in");
  kiln_model* m = nullptr;
  CHECK_FAILS(kiln_model_load(nullptr, nullptr, &m), KILN_ERROR_USAGE, "kiln_model_load: path is NULL");
  CHECK_FAILS(kiln_model_load(f.archive.c_str(), nullptr, nullptr), KILN_ERROR_USAGE, "kiln_model_load: out is NULL");
  CHECK_FAILS(kiln_model_load("/no/such/model.pt", nullptr, &m), KILN_ERROR_BAD_INPUT, "/no/such/model.pt");
  CHECK(m == nullptr);

  kiln_options* options = nullptr;
  CHECK_FAILS(kiln_options_create(nullptr), KILN_ERROR_USAGE, "kiln_options_create: out is NULL");
  REQUIRE(kiln_options_create(&options) == KILN_OK);
  const char* gpu[] = {"gpu"};
  REQUIRE(kiln_options_set_providers(options, gpu, 1) == KILN_OK);
  CHECK_FAILS(kiln_model_load(f.archive.c_str(), options, &m), KILN_ERROR_USAGE,
              "kiln_model_load: unknown provider 'gpu' (kiln has: cpu, cpu-reference)");
  CHECK(m == nullptr);
  CHECK_FAILS(kiln_options_set_providers(options, gpu, 0), KILN_ERROR_USAGE, "count is 0");
  CHECK_FAILS(kiln_options_set_providers(options, nullptr, 1), KILN_ERROR_USAGE,
              "kiln_options_set_providers: names is NULL");
  const char* with_null[] = {"cpu", nullptr};
  CHECK_FAILS(kiln_options_set_providers(options, with_null, 2), KILN_ERROR_USAGE,
              "kiln_options_set_providers: names[1] is NULL");
  CHECK_FAILS(kiln_options_set_providers(nullptr, gpu, 1), KILN_ERROR_USAGE, "kiln_options_set_providers: options is NULL");
  CHECK_FAILS(kiln_options_set_threads(options, -1), KILN_ERROR_USAGE, "kiln_options_set_threads: threads is -1");
  CHECK_FAILS(kiln_options_set_threads(nullptr, 1), KILN_ERROR_USAGE, "options is NULL");
  CHECK_FAILS(kiln_options_set_max_memory(options, -1), KILN_ERROR_USAGE, "kiln_options_set_max_memory: bytes is -1");
  CHECK_FAILS(kiln_options_set_max_memory(nullptr, 1), KILN_ERROR_USAGE, "options is NULL");
  kiln_options_destroy(options);
  kiln_options_destroy(nullptr);
  kiln_model_destroy(nullptr);
  CHECK(last_error().empty());
}

TEST_CASE("capi: tensors refuse bad dtypes, shapes, byte counts and pointers") {
  const std::int64_t shape[2] = {2, 4};
  const std::vector<std::int64_t> data(8, 1);
  kiln_tensor* t = nullptr;
  for (const auto create : {kiln_tensor_create_copy, kiln_tensor_create_view}) {
    CHECK(create(KILN_INT64, shape, 2, data.data(), 64, &t) == KILN_OK);
    CHECK(last_error().empty());
    kiln_tensor_destroy(t);
    CHECK_FAILS(create(KILN_INT64, shape, 2, data.data(), 64, nullptr), KILN_ERROR_USAGE, "out is NULL");
    CHECK_FAILS(create(static_cast<kiln_dtype>(42), shape, 2, data.data(), 64, &t), KILN_ERROR_USAGE,
                "dtype 42 is not a kiln_dtype");
    CHECK(t == nullptr);
    CHECK_FAILS(create(KILN_DTYPE_UNKNOWN, shape, 2, data.data(), 64, &t), KILN_ERROR_USAGE, "dtype -1 is not a kiln_dtype");
    CHECK_FAILS(create(KILN_INT64, nullptr, 2, data.data(), 64, &t), KILN_ERROR_USAGE, "shape is NULL but rank is 2");
    const std::int64_t negative[2] = {2, -3};
    CHECK_FAILS(create(KILN_INT64, negative, 2, data.data(), 64, &t), KILN_ERROR_BAD_INPUT,
                "shape[1] is -3: sizes must be 0 or more");
    CHECK_FAILS(create(KILN_INT64, shape, 2, data.data(), 40, &t), KILN_ERROR_BAD_INPUT,
                "data_bytes is 40, but an int64 tensor of shape [2, 4] takes 64 bytes");
    CHECK_FAILS(create(KILN_FLOAT32, shape, 2, data.data(), 64, &t), KILN_ERROR_BAD_INPUT,
                "but a float32 tensor of shape [2, 4] takes 32 bytes");
    CHECK_FAILS(create(KILN_INT64, shape, 2, nullptr, 64, &t), KILN_ERROR_USAGE, "data is NULL");
    const std::int64_t huge[3] = {1 << 30, 1 << 30, 1 << 30};
    CHECK_FAILS(create(KILN_INT64, huge, 3, data.data(), 64, &t), KILN_ERROR_BAD_INPUT, "more bytes than memory can hold");
    CHECK(t == nullptr);
  }
  CHECK(last_error().find("kiln_tensor_create_view: ") == 0);
  // A view must be aligned to its elements; a copy may come from anywhere.
  const char* odd = reinterpret_cast<const char*>(data.data()) + 1;
  CHECK_FAILS(kiln_tensor_create_view(KILN_INT32, shape, 2, odd, 32, &t), KILN_ERROR_BAD_INPUT,
              "kiln_tensor_create_view: data is not aligned to 4 bytes, the size of an int32 element");
  REQUIRE(kiln_tensor_create_copy(KILN_INT32, shape, 2, odd, 32, &t) == KILN_OK);
  kiln_tensor_destroy(t);
  // Empty tensors and scalars need no data or shape.
  const std::int64_t empty[2] = {0, 4};
  REQUIRE(kiln_tensor_create_copy(KILN_FLOAT32, empty, 2, nullptr, 0, &t) == KILN_OK);
  CHECK(kiln_tensor_nbytes(t) == 0);
  CHECK(kiln_tensor_copy_to(t, nullptr, 0) == KILN_OK);
  kiln_tensor_destroy(t);
  const float pi = 3.14f;
  REQUIRE(kiln_tensor_create_copy(KILN_FLOAT32, nullptr, 0, &pi, 4, &t) == KILN_OK);
  CHECK(kiln_tensor_rank(t) == 0);
  CHECK(kiln_tensor_nbytes(t) == 4);
  CHECK(*static_cast<const float*>(kiln_tensor_data(t)) == pi);
  CHECK(kiln_tensor_data(t) != static_cast<const void*>(&pi));  // a copy

  float out[2] = {0, 0};
  CHECK_FAILS(kiln_tensor_copy_to(t, out, 3), KILN_ERROR_BAD_INPUT,
              "kiln_tensor_copy_to: dst_bytes is 3, but the tensor has 4 bytes");
  CHECK(out[0] == 0);
  CHECK_FAILS(kiln_tensor_copy_to(t, nullptr, 4), KILN_ERROR_USAGE, "kiln_tensor_copy_to: dst is NULL");
  CHECK_FAILS(kiln_tensor_copy_to(nullptr, out, 8), KILN_ERROR_USAGE, "kiln_tensor_copy_to: tensor is NULL");
  CHECK(kiln_tensor_copy_to(t, out, sizeof out) == KILN_OK);
  CHECK(out[0] == pi);
  CHECK(out[1] == 0);
  kiln_tensor_destroy(t);
  kiln_tensor_destroy(nullptr);

  CHECK(kiln_tensor_dtype(nullptr) == KILN_DTYPE_UNKNOWN);
  CHECK(last_error() == "kiln_tensor_dtype: tensor is NULL");
  CHECK(kiln_tensor_rank(nullptr) == 0);
  CHECK(last_error() == "kiln_tensor_rank: tensor is NULL");
  CHECK(kiln_tensor_shape(nullptr) == nullptr);
  CHECK(last_error() == "kiln_tensor_shape: tensor is NULL");
  CHECK(kiln_tensor_data(nullptr) == nullptr);
  CHECK(last_error() == "kiln_tensor_data: tensor is NULL");
  CHECK(kiln_tensor_nbytes(nullptr) == 0);
  CHECK(last_error() == "kiln_tensor_nbytes: tensor is NULL");
}

TEST_CASE("capi: runs refuse NULL arguments, wrong counts, dtypes and shapes, small output arrays") {
  Bert b;
  kiln_model* m = b.model.m;
  kiln_tensor* const* in = b.in.t.data();
  kiln_tensor* sentinel = reinterpret_cast<kiln_tensor*>(&b);
  std::vector<kiln_tensor*> out(3, sentinel);
  std::size_t n = 77;

  CHECK_FAILS(kiln_run(nullptr, in, 3, nullptr, out.data(), 3, &n), KILN_ERROR_USAGE, "kiln_run: model is NULL");
  CHECK(n == 0);
  CHECK_FAILS(kiln_run(m, in, 3, nullptr, out.data(), 3, nullptr), KILN_ERROR_USAGE, "kiln_run: n_outputs is NULL");
  CHECK_FAILS(kiln_run(m, nullptr, 3, nullptr, out.data(), 3, &n), KILN_ERROR_USAGE,
              "kiln_run: inputs is NULL but n_inputs is 3");
  kiln_tensor* const with_null[] = {in[0], nullptr, in[2]};
  CHECK_FAILS(kiln_run(m, with_null, 3, nullptr, out.data(), 3, &n), KILN_ERROR_USAGE, "kiln_run: inputs[1] is NULL");
  CHECK_FAILS(kiln_run(m, in, 3, nullptr, nullptr, 3, &n), KILN_ERROR_USAGE,
              "kiln_run: outputs is NULL but outputs_capacity is 3");

  // Too small an array: the count needed, nothing run or created.
  n = 77;
  CHECK_FAILS(kiln_run(m, in, 3, nullptr, out.data(), 1, &n), KILN_ERROR_BAD_INPUT,
              "kiln_run: outputs_capacity is 1, but the model returns 2 outputs");
  CHECK(n == 2);
  CHECK_FAILS(kiln_run(m, in, 3, nullptr, nullptr, 0, &n), KILN_ERROR_BAD_INPUT, "outputs_capacity is 0");
  CHECK(n == 2);
  CHECK(out[0] == sentinel);

  // What the engine refuses, with its message: the model file and the input.
  CHECK_FAILS(kiln_run(m, in, 2, nullptr, out.data(), 3, &n), KILN_ERROR_BAD_INPUT, "the model takes 3 inputs");
  CHECK(n == 0);
  CHECK_FAILS(kiln_run(m, nullptr, 0, nullptr, out.data(), 3, &n), KILN_ERROR_BAD_INPUT, "got 0");
  const std::vector<float> floats(8, 1.0f);
  kiln_tensor* f32 = nullptr;
  REQUIRE(kiln_tensor_create_view(KILN_FLOAT32, b.shape, 2, floats.data(), 32, &f32) == KILN_OK);
  kiln_tensor* const wrong_dtype[] = {f32, in[1], in[2]};
  CHECK_FAILS(kiln_run(m, wrong_dtype, 3, nullptr, out.data(), 3, &n), KILN_ERROR_BAD_INPUT,
              "input_ids: expected an integer tensor (int64 or int32), got float32");
  CHECK(last_error().find(b.f.archive + ":input_ids: ") == 0);
  kiln_tensor_destroy(f32);
  kiln_tensor* flat = nullptr;
  REQUIRE(kiln_tensor_create_view(KILN_INT64, b.shape + 1, 1, b.ids.data(), 64, &flat) == KILN_OK);
  kiln_tensor* const wrong_rank[] = {flat, in[1], in[2]};
  CHECK_FAILS(kiln_run(m, wrong_rank, 3, nullptr, out.data(), 3, &n), KILN_ERROR_BAD_INPUT, "input_ids: expected 2 dimensions");
  kiln_tensor_destroy(flat);
  kiln_tensor* shorter = nullptr;
  const std::int64_t seq4[2] = {1, 4};
  REQUIRE(kiln_tensor_create_view(KILN_INT64, seq4, 2, b.mask.data(), 32, &shorter) == KILN_OK);
  kiln_tensor* const wrong_size[] = {in[0], shorter, in[2]};
  CHECK_FAILS(kiln_run(m, wrong_size, 3, nullptr, out.data(), 3, &n), KILN_ERROR_BAD_INPUT, "attention_mask: dimension 1 (seq)");
  kiln_tensor_destroy(shorter);
  std::vector<std::int64_t> big_ids = b.ids;
  big_ids[3] = 100000;
  kiln_tensor* out_of_range = nullptr;
  REQUIRE(kiln_tensor_create_view(KILN_INT64, b.shape, 2, big_ids.data(), 64, &out_of_range) == KILN_OK);
  kiln_tensor* const bad_ids[] = {out_of_range, in[1], in[2]};
  CHECK_FAILS(kiln_run(m, bad_ids, 3, nullptr, out.data(), 3, &n), KILN_ERROR_BAD_INPUT, "id 100000");
  kiln_tensor_destroy(out_of_range);
  CHECK(out[0] == sentinel);

  // Run options.
  kiln_run_options* options = nullptr;
  CHECK_FAILS(kiln_run_options_create(nullptr), KILN_ERROR_USAGE, "kiln_run_options_create: out is NULL");
  REQUIRE(kiln_run_options_create(&options) == KILN_OK);
  CHECK_FAILS(kiln_run_options_set_threads(options, -2), KILN_ERROR_USAGE, "kiln_run_options_set_threads: threads is -2");
  CHECK_FAILS(kiln_run_options_set_max_memory(options, -2), KILN_ERROR_USAGE, "kiln_run_options_set_max_memory: bytes is -2");
  CHECK_FAILS(kiln_run_options_set_threads(nullptr, 1), KILN_ERROR_USAGE, "options is NULL");
  CHECK_FAILS(kiln_run_options_set_max_memory(nullptr, 1), KILN_ERROR_USAGE, "options is NULL");
  CHECK_FAILS(kiln_run_options_set_strict_shapes(nullptr, 1), KILN_ERROR_USAGE, "options is NULL");
  REQUIRE(kiln_run_options_set_max_memory(options, 1000) == KILN_OK);
  CHECK_FAILS(kiln_run(m, in, 3, options, out.data(), 3, &n), KILN_ERROR_BAD_INPUT, "this run needs");
  kiln_run_options_destroy(options);
  kiln_run_options_destroy(nullptr);
  CHECK(out[0] == sentinel);

  // By name.
  const char* names[] = {"input_ids", "attention_mask", "token_type_ids"};
  CHECK_FAILS(kiln_run_named(m, nullptr, in, 3, nullptr, out.data(), 3, &n), KILN_ERROR_USAGE,
              "kiln_run_named: names is NULL but n_inputs is 3");
  const char* null_name[] = {"input_ids", nullptr, "token_type_ids"};
  CHECK_FAILS(kiln_run_named(m, null_name, in, 3, nullptr, out.data(), 3, &n), KILN_ERROR_USAGE,
              "kiln_run_named: names[1] is NULL");
  const char* unknown[] = {"input_ids", "mask", "token_type_ids"};
  CHECK_FAILS(kiln_run_named(m, unknown, in, 3, nullptr, out.data(), 3, &n), KILN_ERROR_BAD_INPUT,
              "the model has no input 'mask' (its inputs: input_ids, attention_mask, token_type_ids)");
  CHECK_FAILS(kiln_run_named(m, names, in, 2, nullptr, out.data(), 3, &n), KILN_ERROR_BAD_INPUT, "token_type_ids: input missing");
  const char* twice[] = {"input_ids", "input_ids", "token_type_ids"};
  CHECK_FAILS(kiln_run_named(m, twice, in, 3, nullptr, out.data(), 3, &n), KILN_ERROR_BAD_INPUT, "input given twice");
  CHECK_FAILS(kiln_run_named(m, names, in, 3, nullptr, out.data(), 1, &n), KILN_ERROR_BAD_INPUT, "outputs_capacity is 1");
  CHECK(n == 2);
  CHECK(out[0] == sentinel);

  // And a good run after all that.
  REQUIRE(kiln_run_named(m, names, in, 3, nullptr, out.data(), 3, &n) == KILN_OK);
  CHECK(last_error().empty());
  REQUIRE(n == 2);
  CHECK(out[2] == sentinel);
  kiln_tensor_destroy(out[0]);
  kiln_tensor_destroy(out[1]);
}

TEST_CASE("capi: threads share one model and its input tensors") {
  Bert b;
  std::vector<kiln_tensor*> expected(2, nullptr);
  std::size_t n = 0;
  REQUIRE(kiln_run(b.model.m, b.in.t.data(), 3, nullptr, expected.data(), 2, &n) == KILN_OK);
  constexpr int kThreads = 4, kRuns = 25;
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRuns; ++r) {
        kiln_tensor* out[2] = {nullptr, nullptr};
        std::size_t count = 0;
        if (kiln_run(b.model.m, b.in.t.data(), 3, nullptr, out, 2, &count) != KILN_OK || count != 2) {
          ++mismatches[t];
          continue;
        }
        for (int k = 0; k < 2; ++k) {
          if (kiln_tensor_nbytes(out[k]) != kiln_tensor_nbytes(expected[k]) ||
              std::memcmp(kiln_tensor_data(out[k]), kiln_tensor_data(expected[k]), kiln_tensor_nbytes(out[k])) != 0)
            ++mismatches[t];
          kiln_tensor_destroy(out[k]);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int t = 0; t < kThreads; ++t) CHECK(mismatches[t] == 0);
  kiln_tensor_destroy(expected[0]);
  kiln_tensor_destroy(expected[1]);
}

TEST_CASE("capi: error messages are per thread and cleared by a success") {
  CHECK(kiln_tensor_copy_to(nullptr, nullptr, 0) == KILN_ERROR_USAGE);
  const char* mine = kiln_last_error();
  CHECK(std::string(mine) == "kiln_tensor_copy_to: tensor is NULL");
  std::string other = "unset";
  std::thread([&] {
    other = kiln_last_error();
    kiln_tensor_nbytes(nullptr);
  }).join();
  CHECK(other.empty());
  CHECK(last_error() == "kiln_tensor_copy_to: tensor is NULL");  // the other thread's error is its own
  CHECK(kiln_dtype_size(KILN_INT8) == 1);                        // leaves the message alone
  CHECK(last_error() == "kiln_tensor_copy_to: tensor is NULL");
  kiln_run_options* options = nullptr;
  REQUIRE(kiln_run_options_create(&options) == KILN_OK);
  CHECK(std::string(kiln_last_error()).empty());
  kiln_run_options_destroy(options);
}

TEST_CASE("capi: the status values are the ABI") {
  CHECK(KILN_OK == 0);
  CHECK(KILN_ERROR_BAD_INPUT == 1);
  CHECK(KILN_ERROR_USAGE == 2);
  CHECK(KILN_ERROR_INTERNAL == 3);
  CHECK(KILN_ERROR_OUT_OF_MEMORY == 4);
  CHECK(sizeof(kiln_dtype) == 4);
  CHECK(KILN_INT64 == 7);
}

TEST_CASE("capi: a model loaded unprepared runs, and is prepared later") {
  const Found f = find("t2", "bert_tiny_3in");
  kiln_options* options = nullptr;
  REQUIRE(kiln_options_create(&options) == KILN_OK);
  CHECK(kiln_options_set_prepare(options, 0) == KILN_OK);
  Model model;
  REQUIRE(kiln_model_load(f.archive.c_str(), options, &model.m) == KILN_OK);
  kiln_options_destroy(options);
  const Tensors in = c_tensors(f.cases.at(0), false);
  const auto run = [&](const std::vector<kiln::Tensor>& expected) {
    Tensors out;
    out.t.assign(2, nullptr);
    std::size_t n = 0;
    REQUIRE(kiln_run(model.m, in.t.data(), 3, nullptr, out.t.data(), 2, &n) == KILN_OK);
    REQUIRE(n == 2);
    check_same(out.t, expected);
  };
  // Unprepared, it reads its weights in place, as a C++ model loaded the same way does.
  kiln::LoadOptions lazy;
  lazy.prepare = false;
  run(kiln::Model::load(f.archive, lazy).run(cpp_tensors(f.cases.at(0))));
  // Prepared (twice: the second call does nothing), it runs as a model prepared at load.
  CHECK(kiln_model_prepare(model.m) == KILN_OK);
  CHECK(kiln_model_prepare(model.m) == KILN_OK);
  run(kiln::Model::load(f.archive).run(cpp_tensors(f.cases.at(0))));

  CHECK_FAILS(kiln_model_prepare(nullptr), KILN_ERROR_USAGE, "kiln_model_prepare: model is NULL");
  CHECK_FAILS(kiln_options_set_prepare(nullptr, 1), KILN_ERROR_USAGE, "kiln_options_set_prepare: options is NULL");
}
