// libFuzzer target: the data-only unpickler over arbitrary bytes.
//
// Unpickles with the default PickleLimits (those the archive loader uses), then checks the
// promises pickle.hpp makes about the result: no container nested deeper than max_depth
// and no tensor of a rank over max_dims. Anything the VM refuses must be a bad_input Error;
// a GLOBAL outside the allowlist can only ever be refused, never called.
#include <cstddef>
#include <cstdint>
#include <span>
#include <unordered_map>

#include "format/pickle.hpp"
#include "tests/fuzz/fuzz_common.hpp"

using kiln::format::PickleLimits;
using kiln::format::PickleRef;
using kiln::format::PickleValue;

namespace {

// Depth of a value as the VM counts it (1 for a leaf). Values are shared (memo), so the
// walk memoizes by identity to stay linear; the VM rules out cycles, and a cycle here
// would show as unbounded recursion (a stack overflow ASan reports).
std::size_t depth(const PickleRef& v, std::unordered_map<const PickleValue*, std::size_t>& seen,
                  const PickleLimits& limits) {
  if (!v) return 0;
  if (auto it = seen.find(v.get()); it != seen.end()) return it->second;
  std::size_t d = 0;
  auto child = [&](const PickleRef& c) {
    const std::size_t cd = depth(c, seen, limits);
    if (cd > d) d = cd;
  };
  for (const PickleRef& item : v->items) child(item);
  for (const auto& [key, value] : v->entries) {
    child(key);
    child(value);
  }
  child(v->state);
  child(v->tensor.storage);
  child(v->tensor.qparams);
  if (v->kind == PickleValue::Kind::tensor) {
    if (v->tensor.sizes.size() > limits.max_dims || v->tensor.sizes.size() != v->tensor.strides.size()) {
      kiln::fuzz::finding("tensor rank over max_dims, or sizes and strides of different ranks");
    }
  }
  ++d;
  if (d > limits.max_depth) kiln::fuzz::finding("value nested deeper than max_depth");
  seen.emplace(v.get(), d);
  return d;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  const PickleLimits limits;
  kiln::fuzz::expect_bad_input_only([&] {
    PickleRef root = kiln::format::unpickle(bytes, "fuzz", "data.pkl", limits);
    if (!root) kiln::fuzz::finding("unpickle() returned null");
    std::unordered_map<const PickleValue*, std::size_t> seen;
    depth(root, seen, limits);
  });
  return 0;
}
