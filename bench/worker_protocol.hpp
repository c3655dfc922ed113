// The line protocol between bench/compare and its C++ workers (kiln_bench_worker,
// torch_bench_worker); bench/ort_worker.py speaks the same in Python. One request a line
// on stdin, one reply a line on stdout, "ok {json}" or "error MESSAGE":
//
//   (after loading)   ok {"engine":...,"version":...,"load_ms":...[,"ready_ms":...]}
//                     ready_ms: load plus the engine's own preparation, when it has one
//   inputs B S FILE   ok {}                 FILE: B*S int64 input_ids (native byte order);
//                                           attention_mask is ones, other inputs zeros
//   run               ok {"ms":...}         one forward pass, timed inside the worker
//   output FILE       ok {"shape":[...]}    the first output, float32, written to FILE
//   quit              (exits)
//
// Each engine lives in its own process because two OpenMP/oneDNN builds in one process
// distort each other; timing inside the worker keeps the pipe's latency out of the numbers.
#pragma once

#include <chrono>
#include <cstdlib>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace bench {

// What a worker's engine must do; serve() does the rest.
class Engine {
 public:
  virtual ~Engine() = default;
  // input_ids has batch * seq values; the engine makes the other inputs it takes.
  virtual void set_inputs(std::int64_t batch, std::int64_t seq, std::vector<std::int64_t> input_ids) = 0;
  // One forward pass on the inputs; keeps the outputs so the work cannot be skipped.
  virtual void run() = 0;
  // The last run's first output as float32 values, and its shape.
  virtual std::vector<std::int64_t> first_output(std::vector<float>& values) = 0;
};

inline double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

inline std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += (c == '\n' || c == '\r') ? ' ' : c;
  }
  return out;
}

inline void reply(const std::string& json) {
  std::printf("ok %s\n", json.c_str());
  std::fflush(stdout);
}

inline std::vector<std::int64_t> read_ids(const std::string& path, std::int64_t count) {
  std::vector<std::int64_t> ids(static_cast<std::size_t>(count));
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(ids.data()), static_cast<std::streamsize>(count * sizeof(std::int64_t)));
  if (!in || in.gcount() != static_cast<std::streamsize>(count * sizeof(std::int64_t)))
    throw std::runtime_error("cannot read " + std::to_string(count) + " int64 ids from " + path);
  return ids;
}

inline std::string shape_json(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

// `hello` is the start line's JSON fields without braces (engine, version, ...); a
// negative ready_ms is left out.
inline int serve(Engine& engine, const std::string& hello, double load_ms, double ready_ms) {
  char times[96];
  if (ready_ms >= 0)
    std::snprintf(times, sizeof times, "\"load_ms\":%.3f,\"ready_ms\":%.3f", load_ms, ready_ms);
  else
    std::snprintf(times, sizeof times, "\"load_ms\":%.3f", load_ms);
  reply("{" + hello + "," + times + "}");
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream words(line);
    std::string verb;
    words >> verb;
    try {
      if (verb == "quit") return 0;
      if (verb == "inputs") {
        std::int64_t batch = 0, seq = 0;
        std::string path;
        if (!(words >> batch >> seq >> path) || batch <= 0 || seq <= 0) throw std::runtime_error("usage: inputs B S FILE");
        engine.set_inputs(batch, seq, read_ids(path, batch * seq));
        reply("{}");
      } else if (verb == "run") {
        const auto start = std::chrono::steady_clock::now();
        engine.run();
        char ms[64];
        std::snprintf(ms, sizeof ms, "{\"ms\":%.4f}", ms_since(start));
        reply(ms);
      } else if (verb == "output") {
        std::string path;
        if (!(words >> path)) throw std::runtime_error("usage: output FILE");
        std::vector<float> values;
        const auto shape = engine.first_output(values);
        std::ofstream out(path, std::ios::binary);
        out.write(reinterpret_cast<const char*>(values.data()), static_cast<std::streamsize>(values.size() * sizeof(float)));
        if (!out) throw std::runtime_error("cannot write " + path);
        reply("{\"shape\":" + shape_json(shape) + "}");
      } else {
        throw std::runtime_error("unknown request: " + line);
      }
    } catch (const std::exception& e) {
      std::printf("error %s\n", json_escape(e.what()).c_str());
      std::fflush(stdout);
    }
  }
  return 0;
}

// What a worker's loader returns: the engine, the start line's JSON fields without braces
// (engine, version, ...), how long loading took and, for an engine that prepares itself
// after loading, how long loading and preparing took.
struct Loaded {
  std::unique_ptr<Engine> engine;
  std::string hello;
  double load_ms = 0;
  double ready_ms = -1;
};

// A worker's whole main: `name MODEL [--threads T]`; load(model, threads) -> Loaded, timed
// by the loader itself (what counts as loading differs by engine).
template <class Load>
int worker_main(int argc, char** argv, const char* name, Load load) {
  std::string model;
  int threads = 1;
  bool ok = true;
  for (int i = 1; i < argc && ok; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if (model.empty() && a.rfind("--", 0) != 0) {
      model = a;
    } else {
      ok = false;
    }
  }
  if (!ok || model.empty() || threads < 1) {
    std::fprintf(stderr, "usage: %s MODEL [--threads T]\n", name);
    return 2;
  }
  try {
    Loaded loaded = load(model, threads);
    return serve(*loaded.engine, loaded.hello, loaded.load_ms, loaded.ready_ms);
  } catch (const std::exception& e) {
    std::printf("error %s\n", json_escape(e.what()).c_str());
    return 1;
  }
}

}  // namespace bench
