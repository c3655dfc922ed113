// The C API (include/kiln/kiln.h) over the C++ one. Handles wrap kiln::Model, kiln::Tensor
// and the option structs; every entry point runs its body in call(), which catches
// everything and turns it into a status and this thread's message, so no exception
// crosses into C. Checks made here throw kiln::Error like the engine's do.
#include "kiln/kiln.h"

#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "kiln/kiln.hpp"

struct kiln_options {
  kiln::LoadOptions options;
};

struct kiln_run_options {
  kiln::RunOptions options;
};

struct kiln_model {
  kiln::Model model;
  // Asked once at load: names and symbols handed out as const char* live here.
  std::vector<kiln::TensorInfo> inputs;
  std::vector<kiln::TensorInfo> outputs;
};

struct kiln_tensor {
  kiln::Tensor tensor;
};

namespace {

using kiln::DType;
using kiln::ErrorKind;

static_assert(KILN_FLOAT32 == static_cast<int>(DType::float32) && KILN_FLOAT64 == static_cast<int>(DType::float64) &&
              KILN_FLOAT16 == static_cast<int>(DType::float16) && KILN_BFLOAT16 == static_cast<int>(DType::bfloat16) &&
              KILN_INT8 == static_cast<int>(DType::int8) && KILN_INT16 == static_cast<int>(DType::int16) &&
              KILN_INT32 == static_cast<int>(DType::int32) && KILN_INT64 == static_cast<int>(DType::int64) &&
              KILN_UINT8 == static_cast<int>(DType::uint8) && KILN_BOOL == static_cast<int>(DType::bool_),
              "kiln_dtype mirrors kiln::DType");

// This thread's last message: "" after a success. t_error points into t_message, or at a
// static string when even the message could not be allocated.
thread_local std::string t_message;
thread_local const char* t_error = "";

void set_error(const char* function, const char* message) noexcept {
  try {
    t_message.assign(function);
    t_message += ": ";
    t_message += message;
    t_error = t_message.c_str();
  } catch (...) {
    t_error = "out of memory (while describing an error)";
  }
}

kiln_status status_of(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::bad_input: return KILN_ERROR_BAD_INPUT;
    case ErrorKind::usage: return KILN_ERROR_USAGE;
    case ErrorKind::internal: return KILN_ERROR_INTERNAL;
  }
  return KILN_ERROR_INTERNAL;
}

// Runs `body` for the C function `function`: KILN_OK and "" when it returns, else the
// status and message of what it threw. Errors that name no file get the function's name
// in front ("kiln_run: inputs[1] is NULL"); the engine's name the model file instead.
template <class F>
kiln_status call(const char* function, F&& body) noexcept {
  t_error = "";
  try {
    body();
    return KILN_OK;
  } catch (const kiln::Error& e) {
    if (e.file().empty()) {
      set_error(function, e.what());
    } else {
      // The message as the C++ API gives it: "<file>[:<where>]: <message>".
      try {
        t_message = e.what();
        t_error = t_message.c_str();
      } catch (...) {
        t_error = "out of memory (while describing an error)";
      }
    }
    return status_of(e.kind());
  } catch (const std::bad_alloc&) {
    set_error(function, "out of memory");
    return KILN_ERROR_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    set_error(function, (std::string("internal error: ") + e.what()).c_str());
    return KILN_ERROR_INTERNAL;
  } catch (...) {
    set_error(function, "internal error: an unknown exception");
    return KILN_ERROR_INTERNAL;
  }
}

// call() for functions that return a value: `fallback` on failure.
template <class T, class F>
T get(const char* function, T fallback, F&& body) noexcept {
  T result = fallback;
  call(function, [&] { result = body(); });
  return result;
}

[[noreturn]] void usage(const std::string& message) { throw kiln::Error(ErrorKind::usage, "", "", message); }
[[noreturn]] void bad_input(const std::string& message) { throw kiln::Error(ErrorKind::bad_input, "", "", message); }

template <class P>
void require(const P* p, const char* name) {
  if (!p) usage(std::string(name) + " is NULL");
}

bool known_dtype(kiln_dtype dtype) { return dtype >= KILN_FLOAT32 && dtype <= KILN_BOOL; }

DType to_dtype(kiln_dtype dtype) {
  if (!known_dtype(dtype))
    usage("dtype " + std::to_string(static_cast<int>(dtype)) + " is not a kiln_dtype (KILN_FLOAT32 = 0 ... KILN_BOOL = 9)");
  return static_cast<DType>(dtype);
}

std::string shape_str(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// A tensor from the C arguments, checked: sizes, byte count, pointers.
kiln::Tensor make_tensor(kiln_dtype dtype, const int64_t* shape, size_t rank, const void* data, size_t data_bytes,
                         bool copy) {
  const DType t = to_dtype(dtype);
  if (!shape && rank > 0) usage("shape is NULL but rank is " + std::to_string(rank));
  std::vector<std::int64_t> sizes(shape, shape + rank);
  std::uint64_t bytes = kiln::dtype_size(t);
  bool overflow = false;
  for (std::size_t i = 0; i < rank; ++i) {
    if (sizes[i] < 0)
      bad_input("shape[" + std::to_string(i) + "] is " + std::to_string(sizes[i]) + ": sizes must be 0 or more");
    overflow = overflow || __builtin_mul_overflow(bytes, static_cast<std::uint64_t>(sizes[i]), &bytes);
  }
  if (overflow || bytes > static_cast<std::uint64_t>(INT64_MAX) || static_cast<size_t>(bytes) != bytes)
    bad_input("a tensor of shape " + shape_str(sizes) + " has more bytes than memory can hold");
  const std::string name(kiln::dtype_name(t));
  const std::string a_name = (name[0] == 'i' || name[0] == 'u' ? "an " : "a ") + name;  // "an int64"
  if (data_bytes != bytes)
    bad_input("data_bytes is " + std::to_string(data_bytes) + ", but " + a_name + " tensor of shape " +
              shape_str(sizes) + " takes " + std::to_string(bytes) + " bytes");
  if (!data && bytes > 0) usage("data is NULL");
  // Kernels read elements through typed pointers; a copy is aligned by kiln.
  if (!copy && reinterpret_cast<std::uintptr_t>(data) % kiln::dtype_size(t) != 0)
    bad_input("data is not aligned to " + std::to_string(kiln::dtype_size(t)) + " bytes, the size of " + a_name +
              " element (kiln_tensor_create_copy takes any address)");
  return copy ? kiln::Tensor::from_bytes(t, std::move(sizes), data) : kiln::Tensor::view(t, std::move(sizes), data);
}

const kiln::TensorInfo& info(const std::vector<kiln::TensorInfo>& all, size_t index, const char* what) {
  if (index >= all.size())
    usage(std::string(what) + " index " + std::to_string(index) + " is out of range: the model has " +
          std::to_string(all.size()) + " " + what + (all.size() == 1 ? "" : "s"));
  return all[index];
}

const kiln::Dim& dim_of(const kiln::TensorInfo& i, size_t dim, const char* what) {
  if (!i.shape) usage(std::string(what) + " '" + i.name + "' has no known shape (its rank is -1)");
  if (dim >= i.shape->size())
    usage("dim " + std::to_string(dim) + " is out of range: " + what + " '" + i.name + "' has " +
          std::to_string(i.shape->size()) + " dimensions");
  return (*i.shape)[dim];
}

// kiln_model_load and _from_memory: `make` checks its arguments and loads.
template <class Make>
kiln_status load(const char* function, kiln_model** out, const kiln_options* options, Make&& make) {
  if (out) *out = nullptr;
  return call(function, [&] {
    require(out, "out");
    auto m = std::make_unique<kiln_model>();
    const kiln::LoadOptions defaults;
    m->model = make(options ? options->options : defaults);
    m->inputs = m->model.inputs();
    m->outputs = m->model.outputs();
    *out = m.release();
  });
}

// The run both kiln_run and kiln_run_named come to: `run` calls the C++ API.
// `named`: kiln_run_named, whose `names` are checked with the other pointers.
template <class Run>
kiln_status run_model(const char* function, const kiln_model* model, bool named, const char* const* names,
                      kiln_tensor* const* inputs, size_t n_inputs, kiln_tensor** outputs, size_t outputs_capacity,
                      size_t* n_outputs, Run&& run) {
  if (n_outputs) *n_outputs = 0;
  return call(function, [&] {
    require(model, "model");
    require(n_outputs, "n_outputs");
    if (named && !names && n_inputs > 0) usage("names is NULL but n_inputs is " + std::to_string(n_inputs));
    if (!inputs && n_inputs > 0) usage("inputs is NULL but n_inputs is " + std::to_string(n_inputs));
    for (size_t i = 0; i < n_inputs; ++i) {
      if (named && !names[i]) usage("names[" + std::to_string(i) + "] is NULL");
      if (!inputs[i]) usage("inputs[" + std::to_string(i) + "] is NULL");
    }
    if (!outputs && outputs_capacity > 0) usage("outputs is NULL but outputs_capacity is " + std::to_string(outputs_capacity));
    const auto too_small = [&](size_t needed) {
      *n_outputs = needed;
      bad_input("outputs_capacity is " + std::to_string(outputs_capacity) + ", but the model returns " +
                std::to_string(needed) + " output" + (needed == 1 ? "" : "s"));
    };
    if (outputs_capacity < model->outputs.size()) too_small(model->outputs.size());
    std::vector<kiln::Tensor> result = run();
    if (outputs_capacity < result.size()) too_small(result.size());
    // Every handle first, so that running out of memory half way leaves nothing behind.
    std::vector<std::unique_ptr<kiln_tensor>> handles;
    for (kiln::Tensor& t : result) handles.push_back(std::make_unique<kiln_tensor>(kiln_tensor{std::move(t)}));
    for (size_t i = 0; i < handles.size(); ++i) outputs[i] = handles[i].release();
    *n_outputs = handles.size();
  });
}

}  // namespace

extern "C" {

const char* kiln_last_error(void) { return t_error; }

size_t kiln_dtype_size(kiln_dtype dtype) { return known_dtype(dtype) ? kiln::dtype_size(static_cast<DType>(dtype)) : 0; }

const char* kiln_dtype_name(kiln_dtype dtype) {
  // dtype_name's views are of string literals, so they end in a NUL.
  return known_dtype(dtype) ? kiln::dtype_name(static_cast<DType>(dtype)).data() : "unknown";
}

// ---- Load options

kiln_status kiln_options_create(kiln_options** out) {
  if (out) *out = nullptr;
  return call(__func__, [&] {
    require(out, "out");
    *out = new kiln_options();
  });
}

void kiln_options_destroy(kiln_options* options) {
  call(__func__, [&] { delete options; });
}

kiln_status kiln_options_set_threads(kiln_options* options, int32_t threads) {
  return call(__func__, [&] {
    require(options, "options");
    if (threads < 0) usage("threads is " + std::to_string(threads) + ": give 0 (every CPU) or more");
    options->options.threads = threads;
  });
}

kiln_status kiln_options_set_max_memory(kiln_options* options, int64_t bytes) {
  return call(__func__, [&] {
    require(options, "options");
    if (bytes < 0) usage("bytes is " + std::to_string(bytes) + ": give 0 (no limit) or more");
    options->options.max_memory = bytes;
  });
}

kiln_status kiln_options_set_providers(kiln_options* options, const char* const* names, size_t count) {
  return call(__func__, [&] {
    require(options, "options");
    if (count == 0) usage("count is 0: give at least one provider (\"cpu\")");
    require(names, "names");
    std::vector<std::string> providers;
    for (size_t i = 0; i < count; ++i) {
      if (!names[i]) usage("names[" + std::to_string(i) + "] is NULL");
      providers.emplace_back(names[i]);
    }
    options->options.providers = std::move(providers);
  });
}

kiln_status kiln_options_set_prepare(kiln_options* options, int32_t prepare) {
  return call(__func__, [&] {
    require(options, "options");
    options->options.prepare = prepare != 0;
  });
}

// ---- Models

kiln_status kiln_model_load(const char* path, const kiln_options* options, kiln_model** out) {
  return load(__func__, out, options, [&](const kiln::LoadOptions& o) {
    require(path, "path");
    return kiln::Model::load(path, o);
  });
}

kiln_status kiln_model_load_from_memory(const void* data, size_t size, const kiln_options* options, kiln_model** out) {
  return load(__func__, out, options, [&](const kiln::LoadOptions& o) {
    if (!data && size > 0) usage("data is NULL but size is " + std::to_string(size));
    return kiln::Model::load_from_memory(data, size, o);
  });
}

void kiln_model_destroy(kiln_model* model) {
  call(__func__, [&] { delete model; });
}

kiln_status kiln_model_prepare(const kiln_model* model) {
  return call(__func__, [&] {
    require(model, "model");
    model->model.prepare();
  });
}

size_t kiln_model_input_count(const kiln_model* model) {
  return get(__func__, size_t{0}, [&] {
    require(model, "model");
    return model->inputs.size();
  });
}

size_t kiln_model_output_count(const kiln_model* model) {
  return get(__func__, size_t{0}, [&] {
    require(model, "model");
    return model->outputs.size();
  });
}

const char* kiln_model_input_name(const kiln_model* model, size_t index) {
  return get(__func__, static_cast<const char*>(nullptr), [&] {
    require(model, "model");
    return info(model->inputs, index, "input").name.c_str();
  });
}

const char* kiln_model_output_name(const kiln_model* model, size_t index) {
  return get(__func__, static_cast<const char*>(nullptr), [&] {
    require(model, "model");
    return info(model->outputs, index, "output").name.c_str();
  });
}

namespace {

kiln_status io_dtype(const char* function, const kiln_model* model, bool output, size_t index, kiln_dtype* dtype) {
  return call(function, [&] {
    require(model, "model");
    require(dtype, "dtype");
    const kiln::TensorInfo& i =
        output ? info(model->outputs, index, "output") : info(model->inputs, index, "input");
    *dtype = i.dtype ? static_cast<kiln_dtype>(*i.dtype) : KILN_DTYPE_UNKNOWN;
  });
}

kiln_status io_rank(const char* function, const kiln_model* model, bool output, size_t index, int32_t* rank) {
  return call(function, [&] {
    require(model, "model");
    require(rank, "rank");
    const kiln::TensorInfo& i =
        output ? info(model->outputs, index, "output") : info(model->inputs, index, "input");
    *rank = i.shape ? static_cast<int32_t>(i.shape->size()) : -1;
  });
}

kiln_status io_dim(const char* function, const kiln_model* model, bool output, size_t index, size_t dim,
                   int64_t* size, const char** symbol) {
  return call(function, [&] {
    require(model, "model");
    require(size, "size");
    const char* what = output ? "output" : "input";
    const kiln::Dim& d = dim_of(output ? info(model->outputs, index, what) : info(model->inputs, index, what), dim, what);
    *size = d.symbol.empty() ? d.size : -1;
    if (symbol) *symbol = d.symbol.c_str();
  });
}

}  // namespace

kiln_status kiln_model_input_dtype(const kiln_model* model, size_t index, kiln_dtype* dtype) {
  return io_dtype(__func__, model, false, index, dtype);
}
kiln_status kiln_model_output_dtype(const kiln_model* model, size_t index, kiln_dtype* dtype) {
  return io_dtype(__func__, model, true, index, dtype);
}
kiln_status kiln_model_input_rank(const kiln_model* model, size_t index, int32_t* rank) {
  return io_rank(__func__, model, false, index, rank);
}
kiln_status kiln_model_output_rank(const kiln_model* model, size_t index, int32_t* rank) {
  return io_rank(__func__, model, true, index, rank);
}
kiln_status kiln_model_input_dim(const kiln_model* model, size_t index, size_t dim, int64_t* size,
                                 const char** symbol) {
  return io_dim(__func__, model, false, index, dim, size, symbol);
}
kiln_status kiln_model_output_dim(const kiln_model* model, size_t index, size_t dim, int64_t* size,
                                  const char** symbol) {
  return io_dim(__func__, model, true, index, dim, size, symbol);
}

// ---- Tensors

kiln_status kiln_tensor_create_copy(kiln_dtype dtype, const int64_t* shape, size_t rank, const void* data,
                                    size_t data_bytes, kiln_tensor** out) {
  if (out) *out = nullptr;
  return call(__func__, [&] {
    require(out, "out");
    *out = new kiln_tensor{make_tensor(dtype, shape, rank, data, data_bytes, true)};
  });
}

kiln_status kiln_tensor_create_view(kiln_dtype dtype, const int64_t* shape, size_t rank, const void* data,
                                    size_t data_bytes, kiln_tensor** out) {
  if (out) *out = nullptr;
  return call(__func__, [&] {
    require(out, "out");
    *out = new kiln_tensor{make_tensor(dtype, shape, rank, data, data_bytes, false)};
  });
}

void kiln_tensor_destroy(kiln_tensor* tensor) {
  call(__func__, [&] { delete tensor; });
}

kiln_dtype kiln_tensor_dtype(const kiln_tensor* tensor) {
  return get(__func__, KILN_DTYPE_UNKNOWN, [&] {
    require(tensor, "tensor");
    return static_cast<kiln_dtype>(tensor->tensor.dtype());
  });
}

size_t kiln_tensor_rank(const kiln_tensor* tensor) {
  return get(__func__, size_t{0}, [&] {
    require(tensor, "tensor");
    return tensor->tensor.shape().size();
  });
}

const int64_t* kiln_tensor_shape(const kiln_tensor* tensor) {
  return get(__func__, static_cast<const int64_t*>(nullptr), [&] {
    require(tensor, "tensor");
    return tensor->tensor.shape().data();
  });
}

const void* kiln_tensor_data(const kiln_tensor* tensor) {
  return get(__func__, static_cast<const void*>(nullptr), [&] {
    require(tensor, "tensor");
    return tensor->tensor.data();
  });
}

size_t kiln_tensor_nbytes(const kiln_tensor* tensor) {
  return get(__func__, size_t{0}, [&] {
    require(tensor, "tensor");
    return tensor->tensor.nbytes();
  });
}

kiln_status kiln_tensor_copy_to(const kiln_tensor* tensor, void* dst, size_t dst_bytes) {
  return call(__func__, [&] {
    require(tensor, "tensor");
    const size_t n = tensor->tensor.nbytes();
    if (!dst && n > 0) usage("dst is NULL");
    if (dst_bytes < n)
      bad_input("dst_bytes is " + std::to_string(dst_bytes) + ", but the tensor has " + std::to_string(n) + " bytes");
    if (n > 0) std::memcpy(dst, tensor->tensor.data(), n);
  });
}

// ---- Run options

kiln_status kiln_run_options_create(kiln_run_options** out) {
  if (out) *out = nullptr;
  return call(__func__, [&] {
    require(out, "out");
    *out = new kiln_run_options();
  });
}

void kiln_run_options_destroy(kiln_run_options* options) {
  call(__func__, [&] { delete options; });
}

kiln_status kiln_run_options_set_threads(kiln_run_options* options, int32_t threads) {
  return call(__func__, [&] {
    require(options, "options");
    if (threads < -1)
      usage("threads is " + std::to_string(threads) + ": give -1 (the model's), 0 (every CPU) or more");
    options->options.threads = threads;
  });
}

kiln_status kiln_run_options_set_max_memory(kiln_run_options* options, int64_t bytes) {
  return call(__func__, [&] {
    require(options, "options");
    if (bytes < -1) usage("bytes is " + std::to_string(bytes) + ": give -1 (the model's), 0 (no limit) or more");
    options->options.max_memory = bytes;
  });
}

kiln_status kiln_run_options_set_strict_shapes(kiln_run_options* options, int32_t strict) {
  return call(__func__, [&] {
    require(options, "options");
    options->options.strict_shapes = strict != 0;
  });
}

// ---- Running

kiln_status kiln_run(const kiln_model* model, kiln_tensor* const* inputs, size_t n_inputs,
                     const kiln_run_options* options, kiln_tensor** outputs, size_t outputs_capacity,
                     size_t* n_outputs) {
  return run_model(__func__, model, false, nullptr, inputs, n_inputs, outputs, outputs_capacity, n_outputs, [&] {
    std::vector<kiln::Tensor> in;
    for (size_t i = 0; i < n_inputs; ++i) in.push_back(inputs[i]->tensor);
    const kiln::RunOptions defaults;
    return model->model.run(in, options ? options->options : defaults);
  });
}

kiln_status kiln_run_named(const kiln_model* model, const char* const* names, kiln_tensor* const* inputs,
                           size_t n_inputs, const kiln_run_options* options, kiln_tensor** outputs,
                           size_t outputs_capacity, size_t* n_outputs) {
  return run_model(__func__, model, true, names, inputs, n_inputs, outputs, outputs_capacity, n_outputs, [&] {
    std::vector<std::pair<std::string, kiln::Tensor>> in;
    for (size_t i = 0; i < n_inputs; ++i) in.emplace_back(names[i], inputs[i]->tensor);
    const kiln::RunOptions defaults;
    return model->model.run(in, options ? options->options : defaults);
  });
}

}  // extern "C"
