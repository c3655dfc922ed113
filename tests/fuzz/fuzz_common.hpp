// Shared by kiln's libFuzzer targets: what counts as a finding, and oracles the targets
// check beyond "no sanitizer report".
//
// A kiln::Error of kind bad_input is the expected answer to a malformed file and is
// swallowed. Anything else escapes and crashes the run, so that libFuzzer records the
// input: another exception type (std::length_error, std::bad_alloc, ...), a kiln::Error of
// kind internal or usage (kiln says "this is a bug in kiln"), or a failed oracle below.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>

#include "kiln/error.hpp"

namespace kiln::fuzz {

[[noreturn]] inline void finding(const char* what) {
  std::fprintf(stderr, "fuzz finding: %s\n", what);
  std::abort();
}

// Runs `body`; a bad_input Error is the expected outcome for hostile bytes.
template <typename Body>
void expect_bad_input_only(Body&& body) {
  try {
    body();
  } catch (const kiln::Error& e) {
    if (e.kind() != kiln::ErrorKind::bad_input) {
      std::fprintf(stderr, "fuzz finding: kiln::Error of kind %s: %s\n",
                   e.kind() == kiln::ErrorKind::internal ? "internal" : "usage", e.what());
      std::abort();
    }
  }
}

// Every view kiln hands out into a borrowed buffer must lie inside it. An out-of-range
// view is UB even before it is read, and ASan only sees the read, so check the bounds
// explicitly, then touch the first and last byte so ASan checks them too.
inline void check_view(std::span<const std::byte> view, const std::uint8_t* data, std::size_t size,
                       const char* what) {
  if (view.empty()) return;
  const auto begin = reinterpret_cast<std::uintptr_t>(view.data());
  const auto lo = reinterpret_cast<std::uintptr_t>(data);
  if (begin < lo || begin - lo > size || view.size() > size - (begin - lo)) finding(what);
  volatile std::byte sink = view.front();
  sink = view.back();
  (void)sink;
}

}  // namespace kiln::fuzz
