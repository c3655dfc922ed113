// Byte buffers for tests: string literals that hand-build file images, and whole files.
#pragma once

#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
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

// A whole file's bytes; an unreadable file gives an empty buffer, which tests then reject.
inline std::vector<std::byte> read_file_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return bytes_of(s);
}

}  // namespace kiln::testing
