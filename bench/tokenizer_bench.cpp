// kiln_bench_tokenizer VOCAB TEXT [--runs N] [--min-mb M] [--lowercase|--no-lowercase]
//
// Single-thread tokenizer throughput: reads TEXT (UTF-8, one text per line), repeats its
// lines until they hold at least M MB (default 4), then encodes every line with the
// default options ([CLS] ... [SEP], no truncation) N times (default 7) after one untimed
// pass, and prints one JSON line:
//   {"engine":"kiln","lines":...,"bytes":...,"tokens":...,"median_s":...,
//    "mb_per_s":...,"tokens_per_s":...,"runs":[...]}
// MB are 10^6 bytes of input text; tokens count everything encode() returns, specials
// included. bench/compare-tokenizer runs this against Hugging Face tokenizers.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/error.hpp"
#include "kiln/tokenizer.hpp"

namespace {

int usage() {
  std::fprintf(stderr, "usage: kiln_bench_tokenizer VOCAB TEXT [--runs N] [--min-mb M] [--lowercase|--no-lowercase]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return usage();
  const std::string vocab = argv[1];
  const std::string text_path = argv[2];
  int runs = 7;
  double min_mb = 4;
  kiln::TokenizerOptions options;
  for (int i = 3; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--runs" && i + 1 < argc) {
      runs = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--min-mb" && i + 1 < argc) {
      min_mb = std::max(0.0, std::atof(argv[++i]));
    } else if (arg == "--lowercase") {
      options.lowercase = true;
    } else if (arg == "--no-lowercase") {
      options.lowercase = false;
    } else {
      return usage();
    }
  }

  std::ifstream f(text_path, std::ios::binary);
  if (!f) {
    std::fprintf(stderr, "kiln_bench_tokenizer: cannot open %s\n", text_path.c_str());
    return 1;
  }
  const std::string all{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
  std::vector<std::string_view> one_copy;
  for (std::size_t start = 0; start < all.size();) {
    std::size_t end = all.find('\n', start);
    if (end == std::string::npos) end = all.size();
    one_copy.emplace_back(all.data() + start, end - start);
    start = end + 1;
  }
  if (one_copy.empty()) {
    std::fprintf(stderr, "kiln_bench_tokenizer: %s has no lines\n", text_path.c_str());
    return 1;
  }
  // Views into `all`, repeated: the same bytes the reference side repeats the same way.
  std::vector<std::string_view> lines;
  std::size_t bytes = 0;
  while (static_cast<double>(bytes) < min_mb * 1e6 || lines.empty()) {
    for (std::string_view line : one_copy) {
      lines.push_back(line);
      bytes += line.size();
    }
  }

  std::vector<double> seconds;
  std::size_t tokens = 0;
  try {
    const kiln::Tokenizer tok = kiln::Tokenizer::from_file(vocab, options);
    for (int run = -1; run < runs; ++run) {  // run -1 warms caches and is not timed
      std::size_t count = 0;
      const auto start = std::chrono::steady_clock::now();
      for (std::string_view line : lines) count += tok.encode(line).ids.size();
      const auto end = std::chrono::steady_clock::now();
      if (run >= 0) seconds.push_back(std::chrono::duration<double>(end - start).count());
      tokens = count;
    }
  } catch (const kiln::Error& e) {
    std::fprintf(stderr, "kiln: error: %s\n", e.what());
    return 1;
  }
  std::vector<double> sorted = seconds;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[sorted.size() / 2];
  std::printf("{\"engine\":\"kiln\",\"lines\":%zu,\"bytes\":%zu,\"tokens\":%zu,\"median_s\":%.6f,"
              "\"mb_per_s\":%.3f,\"tokens_per_s\":%.1f,\"runs\":[",
              lines.size(), bytes, tokens, median, static_cast<double>(bytes) / 1e6 / median,
              static_cast<double>(tokens) / median);
  for (std::size_t i = 0; i < seconds.size(); ++i) std::printf("%s%.6f", i ? "," : "", seconds[i]);
  std::printf("]}\n");
  return 0;
}
