// sha256_hex — SHA-256 (FIPS 180-4) for tests that compare data with a manifest's digest.
//
// Written here rather than taken from a crypto library so tests need no extra dependency;
// it is for checking fixtures, not for anything security-sensitive.
#pragma once

#include <cstddef>
#include <span>
#include <string>

namespace kiln::testing {

// Lowercase hex digest of `data`.
std::string sha256_hex(std::span<const std::byte> data);

}  // namespace kiln::testing
