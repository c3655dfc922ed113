// Golden test of kiln::Tokenizer against Hugging Face `tokenizers` (the Rust reference).
//
// tests/tokenizer/make_corpus.py ran the reference over every line of
// tests/tokenizer/corpus.jsonl, for three vocabularies and seven option sets (six applied to
// every line, and "edges", whose records each carry their own small max_length), and wrote
// what it got to $KILN_FIXTURES/tokenizer-golden.<vocab>.<options>.jsonl (tools/make-fixtures
// makes them; docs/tokenizer.md). Here kiln loads each vocabulary both ways (tokenizer.json and vocab.txt),
// encodes every line with the same options, and must give the same ids, type ids,
// attention mask, offsets and tokens; where the reference refused (a truncation it cannot
// do), kiln must throw kiln::Error. Mismatches are counted all, printed only up to a cap,
// each with its line, the text escaped, and where the two outputs part.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "format/json.hpp"
#include "kiln/error.hpp"
#include "kiln/tokenizer.hpp"
#include "tests/support/fixtures.hpp"
#include "tests/support/sha256.hpp"

namespace fs = std::filesystem;
using kiln::format::JsonValue;

namespace {

constexpr std::size_t kMinLines = 2000;        // the corpus promises at least this many
constexpr int kMaxPrintedPerFile = 8;          // enough to see a pattern, not a flood
constexpr int kMaxPrintedPerVocab = 25;

std::string read_file(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  REQUIRE_MESSAGE(f.good(), "cannot open " << path.string());
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

std::string file_sha256(const fs::path& path) {
  const std::string bytes = read_file(path);
  return kiln::testing::sha256_hex({reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()});
}

// One reference result, kept compact: the parsed JSON of a whole file would be many times
// its size, and each file is checked against two tokenizers.
struct Expected {
  std::size_t line = 0;
  std::string text;
  std::optional<std::string> text_pair;
  std::optional<kiln::EncodeOptions> options;  // the "edges" set: each record names its own
  std::optional<std::string> error;
  std::vector<std::int32_t> ids, type_ids, attention_mask;
  std::vector<std::pair<std::size_t, std::size_t>> offsets;
  std::vector<std::int32_t> word_ids;
  std::vector<std::string> tokens;
};

std::vector<std::int32_t> int_array(const JsonValue& v) {
  std::vector<std::int32_t> out;
  out.reserve(v.size());
  for (const JsonValue& x : v.as_array()) out.push_back(static_cast<std::int32_t>(x.as_int()));
  return out;
}

kiln::Truncation truncation_from(const std::string& s) {
  if (s == "longest_first") return kiln::Truncation::longest_first;
  if (s == "only_first") return kiln::Truncation::only_first;
  if (s == "only_second") return kiln::Truncation::only_second;
  FAIL("unknown truncation strategy in tokenizer-golden.json: " << s);
  return kiln::Truncation::longest_first;
}

kiln::EncodeOptions options_from(const JsonValue& o) {
  kiln::EncodeOptions options;
  options.add_special_tokens = o.at("add_special_tokens").as_bool();
  if (!o.at("max_length").is_null()) {
    options.max_length = static_cast<std::size_t>(o.at("max_length").as_int());
    options.truncation = truncation_from(o.at("truncation").as_string());
  }
  options.pad_to_max_length = o.at("padding").as_bool();
  return options;
}

std::vector<Expected> read_expected(const fs::path& path) {
  const std::string bytes = read_file(path);
  std::vector<Expected> out;
  std::size_t start = 0;
  while (start < bytes.size()) {
    std::size_t end = bytes.find('\n', start);
    if (end == std::string::npos) end = bytes.size();
    const JsonValue v = kiln::format::parse_json(std::string_view(bytes).substr(start, end - start),
                                                 path.string() + ":" + std::to_string(out.size() + 1));
    start = end + 1;
    Expected e;
    e.line = static_cast<std::size_t>(v.at("line").as_int());
    e.text = v.at("text").as_string();
    if (const JsonValue* p = v.find("text_pair")) e.text_pair = p->as_string();
    if (const JsonValue* o = v.find("options")) e.options = options_from(*o);
    if (const JsonValue* err = v.find("error")) {
      e.error = err->as_string();
    } else {
      e.ids = int_array(v.at("input_ids"));
      e.type_ids = int_array(v.at("token_type_ids"));
      e.attention_mask = int_array(v.at("attention_mask"));
      for (const JsonValue& o : v.at("offsets").as_array()) {
        e.offsets.emplace_back(static_cast<std::size_t>(o.at(std::size_t{0}).as_int()),
                               static_cast<std::size_t>(o.at(std::size_t{1}).as_int()));
      }
      for (const JsonValue& t : v.at("tokens").as_array()) e.tokens.push_back(t.as_string());
      e.word_ids = int_array(v.at("word_ids"));
    }
    out.push_back(std::move(e));
  }
  return out;
}

// The text as a reader can see it: invisible, control and space-like characters become
// \u{...}; everything else stays UTF-8.
std::string escaped(const std::string& s) {
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4;
    if (i + n > s.size()) n = s.size() - i;
    std::uint32_t cp = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
    for (std::size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    const bool invisible = cp < 0x20 || (cp >= 0x7F && cp <= 0xA0) || cp == 0xAD || cp == 0x34F ||
                           cp == 0x61C || cp == 0x180E || (cp >= 0x2000 && cp <= 0x200F) ||
                           (cp >= 0x2028 && cp <= 0x202F) || (cp >= 0x205F && cp <= 0x206F) || cp == 0x3000 ||
                           (cp >= 0xFE00 && cp <= 0xFE0F) || cp == 0xFEFF || (cp >= 0xFFF0 && cp <= 0xFFFF) ||
                           cp >= 0xE0000;
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (invisible) {
      char buf[16];
      std::snprintf(buf, sizeof buf, "\\u{%X}", static_cast<unsigned>(cp));
      out += buf;
    } else {
      out.append(s, i, n);
    }
    i += n;
  }
  return out + "\"";
}

std::string show(std::int32_t v) { return std::to_string(v); }
// Built by appending: gcc 12 at -O3 warns (-Wrestrict, a false positive) on
// "literal" + std::string chains here.
std::string show(const std::pair<std::size_t, std::size_t>& o) {
  std::string s = "[";
  s += std::to_string(o.first);
  s += ',';
  s += std::to_string(o.second);
  s += ']';
  return s;
}
std::string show(const std::string& t) { return escaped(t); }

// Empty when equal; else where the two sequences part, with a few elements either side.
template <typename T>
std::string diff(const char* field, const std::vector<T>& kiln, const std::vector<T>& ref) {
  if (kiln == ref) return "";
  std::size_t at = 0;
  while (at < kiln.size() && at < ref.size() && kiln[at] == ref[at]) ++at;
  const std::size_t from = at > 3 ? at - 3 : 0;
  auto window = [&](const std::vector<T>& v) {
    std::string s = from > 0 ? "... " : "";
    for (std::size_t i = from; i < v.size() && i < at + 6; ++i) {
      if (i == at) s += '>';
      s += show(v[i]);
      s += ' ';
    }
    if (v.size() > at + 6) s += "...";
    return s;
  };
  std::ostringstream out;
  out << "    " << field << ": part at index " << at << " (kiln " << kiln.size() << " entries, reference "
      << ref.size() << ")\n      kiln:      " << window(kiln) << "\n      reference: " << window(ref) << "\n";
  return out.str();
}

struct OptionSet {
  std::string name;
  kiln::EncodeOptions options;  // unless per_line
  bool per_line = false;
};

std::vector<OptionSet> option_sets(const JsonValue& index) {
  std::vector<OptionSet> out;
  for (const auto& [name, o] : index.at("option_sets").as_object()) {
    if (o.find("per_line")) {
      out.push_back({name, {}, true});
    } else {
      out.push_back({name, options_from(o), false});
    }
  }
  return out;
}

std::string describe(const kiln::EncodeOptions& o) {
  static const char* const kStrategy[] = {"longest_first", "only_first", "only_second"};
  std::string s = o.add_special_tokens ? "special tokens" : "no special tokens";
  if (o.max_length) {
    s += ", max_length " + std::to_string(*o.max_length) + " " + kStrategy[static_cast<int>(o.truncation)];
  }
  if (o.pad_to_max_length) s += ", padding";
  return s;
}

// Compares one line; returns a description of the mismatch, or "" when kiln agrees.
std::string check_line(const kiln::Tokenizer& tok, const kiln::EncodeOptions& options, const Expected& e) {
  kiln::Encoding got;
  try {
    got = e.text_pair ? tok.encode_pair(e.text, *e.text_pair, options) : tok.encode(e.text, options);
  } catch (const kiln::Error& err) {
    if (e.error) return "";
    return "    kiln threw: " + std::string(err.what()) + "\n    reference: no error (tokens " +
           std::to_string(e.tokens.size()) + ")\n";
  }
  if (e.error) {
    return "    kiln: no error (tokens " + std::to_string(got.tokens.size()) + ")\n    reference: " + *e.error + "\n";
  }
  return diff("input_ids", got.ids, e.ids) + diff("token_type_ids", got.type_ids, e.type_ids) +
         diff("attention_mask", got.attention_mask, e.attention_mask) + diff("offsets", got.offsets, e.offsets) +
         diff("tokens", got.tokens, e.tokens) + diff("word_ids", got.word_ids, e.word_ids);
}

struct Golden {
  fs::path root;
  JsonValue index;
};

Golden golden_index() {
  Golden g{kiln::testing::fixtures_root(), {}};
  const fs::path path = g.root / "tokenizer-golden.json";
  REQUIRE_MESSAGE(fs::is_regular_file(path), path.string() << " missing: make it with tools/make-fixtures");
  g.index = kiln::format::read_json_file(path.string());
  return g;
}

void check_vocab(const std::string& vocab) {
  const Golden g = golden_index();
  const JsonValue* entry = nullptr;
  for (const JsonValue& v : g.index.at("vocabs").as_array()) {
    if (v.at("name").as_string() == vocab) entry = &v;
  }
  REQUIRE_MESSAGE(entry != nullptr, "tokenizer-golden.json has no vocabulary " << vocab);
  const fs::path dir = fs::path(g.index.at("vocab_dir").as_string()) / vocab;

  // Both load paths: tokenizer.json says how to normalize; vocab.txt alone does not, so it
  // gets the model's lowercasing, as the reference's BertWordPieceTokenizer did.
  kiln::TokenizerOptions txt_options;
  txt_options.lowercase = entry->at("lowercase").as_bool();
  const std::vector<std::pair<std::string, kiln::Tokenizer>> loads = {
      {"tokenizer.json", kiln::Tokenizer::from_file((dir / "tokenizer.json").string())},
      {"vocab.txt", kiln::Tokenizer::from_file((dir / "vocab.txt").string(), txt_options)},
  };

  const std::size_t lines = static_cast<std::size_t>(g.index.at("lines").as_int());
  std::size_t total_mismatches = 0, total_checked = 0;
  int printed = 0;
  for (const OptionSet& set : option_sets(g.index)) {
    const std::string key = vocab + "." + set.name;
    const fs::path file = g.root / g.index.at("files").at(key).as_string();
    const std::vector<Expected> expected = read_expected(file);
    REQUIRE(expected.size() == static_cast<std::size_t>(g.index.at("file_lines").at(key).as_int()));
    if (!set.per_line) REQUIRE(expected.size() == lines);
    for (const auto& load : loads) {  // no structured binding: clang 14 cannot capture one
      std::size_t mismatches = 0;
      int printed_here = 0;
      for (const Expected& e : expected) {
        const kiln::EncodeOptions& options = e.options ? *e.options : set.options;
        const std::string problem = check_line(load.second, options, e);
        if (problem.empty()) continue;
        ++mismatches;
        if (printed_here < kMaxPrintedPerFile && printed < kMaxPrintedPerVocab) {
          ++printed_here;
          ++printed;
          FAIL_CHECK(vocab << "/" << load.first << ", " << set.name << " (" << describe(options) << "), corpus line "
                           << e.line << ": text " << escaped(e.text)
                           << (e.text_pair ? ", pair " + escaped(*e.text_pair) : "") << "\n"
                           << problem);
        }
      }
      std::printf("tokenizer golden: %s via %s, %s: %zu lines, %zu mismatches\n", vocab.c_str(), load.first.c_str(),
                  set.name.c_str(), expected.size(), mismatches);
      total_mismatches += mismatches;
      total_checked += expected.size();
    }
  }
  std::printf("tokenizer golden: %s: %zu encodings checked, %zu mismatches\n", vocab.c_str(), total_checked,
              total_mismatches);
  std::fflush(stdout);
  CHECK_MESSAGE(total_mismatches == 0, vocab << ": " << total_mismatches << " of " << total_checked
                                             << " encodings differ from the reference (first ones above)");
}

}  // namespace

TEST_CASE("tokenizer golden: the expected files are current and cover the corpus") {
  const Golden g = golden_index();
  const fs::path corpus = fs::path(KILN_SOURCE_ROOT) / g.index.at("corpus").as_string();
  CHECK_MESSAGE(g.index.at("corpus_sha256").as_string() == file_sha256(corpus),
                corpus.string() << " changed since the expected files were made: run tools/make-fixtures");
  for (const auto& entry : g.index.at("vocab_sha256").as_object()) {
    const fs::path path = fs::path(g.index.at("vocab_dir").as_string()) / entry.first;
    CHECK_MESSAGE(entry.second.as_string() == file_sha256(path), path.string() << " changed since the expected files were made");
  }
  CHECK(static_cast<std::size_t>(g.index.at("lines").as_int()) >= kMinLines);
  CHECK(g.index.at("vocabs").size() == 3);
  CHECK(g.index.at("files").size() == g.index.at("vocabs").size() * g.index.at("option_sets").size());
  for (const auto& entry : g.index.at("files").as_object()) {
    const fs::path file = g.root / entry.second.as_string();
    CHECK_MESSAGE(fs::is_regular_file(file), file.string());
  }
}

TEST_CASE("tokenizer golden: bert-base-uncased") { check_vocab("bert-base-uncased"); }
TEST_CASE("tokenizer golden: bert-base-cased") { check_vocab("bert-base-cased"); }
TEST_CASE("tokenizer golden: bert-base-multilingual-cased") { check_vocab("bert-base-multilingual-cased"); }
