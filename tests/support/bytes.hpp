// Byte buffers written as string literals, for tests that hand-build file images.
#pragma once

#include <cstddef>
#include <cstring>
#include <string_view>
#include <vector>

namespace kiln::testing {

inline std::vector<std::byte> bytes_of(std::string_view s) {
  std::vector<std::byte> out(s.size());
  if (!s.empty()) std::memcpy(out.data(), s.data(), s.size());
  return out;
}

// A string literal's bytes, embedded NULs included ("a\0b" is three bytes).
template <std::size_t N>
std::string_view lit(const char (&s)[N]) {
  return {s, N - 1};
}

}  // namespace kiln::testing
