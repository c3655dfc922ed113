#include "tests/support/fixtures.hpp"

#include <algorithm>
#include <cstdlib>

#include "kiln/error.hpp"

namespace kiln::testing {

namespace fs = std::filesystem;

fs::path fixtures_root() {
  const char* env = std::getenv("KILN_FIXTURES");
  fs::path root = (env && *env) ? fs::path(env) : fs::path(KILN_SOURCE_ROOT) / ".fixtures";
  if (!fs::is_directory(root)) {
    throw Error::bad_input(root.string(), "",
                           "fixture folder missing; make it with tools/make-fixtures "
                           "(or run the test command, tools/check)");
  }
  return root;
}

std::vector<Fixture> all_fixtures() {
  std::vector<Fixture> out;
  fs::path root = fixtures_root();
  for (const auto& gen : fs::directory_iterator(root)) {
    if (!gen.is_directory()) continue;
    for (const auto& model : fs::directory_iterator(gen.path())) {
      fs::path manifest = model.path() / "manifest.json";
      if (!fs::is_regular_file(manifest)) continue;
      out.push_back({gen.path().filename().string(), model.path().filename().string(), model.path(),
                     format::read_json_file(manifest.string())});
    }
  }
  std::sort(out.begin(), out.end(), [](const Fixture& a, const Fixture& b) {
    return std::tie(a.generation, a.name) < std::tie(b.generation, b.name);
  });
  return out;
}

FixtureCases fixture_cases(const std::string& generation, const std::string& name) {
  for (const Fixture& f : all_fixtures()) {
    if (f.generation != generation || f.name != name) continue;
    FixtureCases r{(f.dir / f.manifest.at("archive").as_string()).string(), {}};
    for (const auto& c : f.manifest.at("cases").as_array()) {
      if (c.find("error")) continue;
      r.cases.emplace_back();
      for (const auto& i : c.at("inputs").as_array())
        r.cases.back().push_back(format::read_npy((f.dir / i.at("file").as_string()).string()));
    }
    return r;
  }
  throw Error::bad_input(fixtures_root().string(), generation + "/" + name, "no such fixture");
}

}  // namespace kiln::testing
