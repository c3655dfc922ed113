// Where the fixture archives made by tests/fixtures/make_fixtures.py live, for tests.
//
// The root is $KILN_FIXTURES, else <source>/.fixtures. Every generation folder under it
// (t1 = torch 1.13, t2 = torch 2.x, ...) is enumerated, so a test that loops over
// all_fixtures() covers every generation without naming one.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "format/json.hpp"
#include "format/npy.hpp"

namespace kiln::testing {

// Throws kiln::Error telling how to make fixtures when the folder is missing: tests that
// need fixtures fail rather than skip, since the test command always makes them.
std::filesystem::path fixtures_root();

struct Fixture {
  std::string generation;      // "t1"
  std::string name;            // "bert_tiny_3in"
  std::filesystem::path dir;   // <root>/<generation>/<name>
  format::JsonValue manifest;  // parsed manifest.json
};

// Every <root>/<generation>/<name>/manifest.json, sorted by generation then name.
std::vector<Fixture> all_fixtures();

// One fixture's archive path and the inputs of every case PyTorch ran without error, in
// manifest order. Throws kiln::Error when the fixture is missing.
struct FixtureCases {
  std::string archive;
  std::vector<std::vector<format::NpyArray>> cases;
};
FixtureCases fixture_cases(const std::string& generation, const std::string& name);

}  // namespace kiln::testing
