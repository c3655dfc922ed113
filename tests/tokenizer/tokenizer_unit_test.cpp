// Unit tests of kiln's BERT WordPiece tokenizer (tokenizer/).
//
// Every expected encoding below was produced by the reference, Hugging Face `tokenizers`
// 0.23.3 (Rust; BertWordPieceTokenizer for vocab.txt, Tokenizer.from_file for
// tokenizer.json), and pasted here; none is made up. The vocabularies are the Hub files
// kept in tests/tokenizer/vocab (see its PROVENANCE.md).
#include <doctest/doctest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "kiln/error.hpp"
#include "kiln/tokenizer.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::string_view_literals;

const std::string kVocab = KILN_SOURCE_ROOT "/tests/tokenizer/vocab/";

const kiln::Tokenizer& uncased() {
  static const kiln::Tokenizer t = kiln::Tokenizer::from_file(kVocab + "bert-base-uncased/vocab.txt");
  return t;
}
const kiln::Tokenizer& cased() {
  static const kiln::Tokenizer t = kiln::Tokenizer::from_file(kVocab + "bert-base-cased/vocab.txt", {false, {}});
  return t;
}
const kiln::Tokenizer& multilingual() {
  static const kiln::Tokenizer t = kiln::Tokenizer::from_file(kVocab + "bert-base-multilingual-cased/tokenizer.json");
  return t;
}
// Lowercasing without accent stripping: BertWordPieceTokenizer(lowercase=True, strip_accents=False).
const kiln::Tokenizer& multilingual_lower() {
  static const kiln::Tokenizer t =
      kiln::Tokenizer::from_file(kVocab + "bert-base-multilingual-cased/vocab.txt", {true, false});
  return t;
}
const kiln::Tokenizer& uncased_json() {
  static const kiln::Tokenizer t = kiln::Tokenizer::from_file(kVocab + "bert-base-uncased/tokenizer.json");
  return t;
}
const kiln::Tokenizer& cased_json() {
  static const kiln::Tokenizer t = kiln::Tokenizer::from_file(kVocab + "bert-base-cased/tokenizer.json");
  return t;
}

using Offsets = std::vector<std::pair<std::size_t, std::size_t>>;

struct Expected {
  std::vector<std::int32_t> ids;
  std::vector<std::string> tokens;
  Offsets offsets;
  // Left empty when not spelled out: then type ids must be 0, sequence ids 0 or -1 (for
  // [CLS]/[SEP]), attention 1.
  std::vector<std::int32_t> type_ids = {};
  std::vector<std::int8_t> sequence_ids = {};
  std::vector<std::int32_t> attention_mask = {};
};

void check_encoding(const kiln::Encoding& e, const Expected& x) {
  CHECK(e.ids == x.ids);
  CHECK(e.tokens == x.tokens);
  CHECK(e.offsets == x.offsets);
  const std::size_t n = e.ids.size();
  REQUIRE(e.type_ids.size() == n);
  REQUIRE(e.sequence_ids.size() == n);
  REQUIRE(e.attention_mask.size() == n);
  REQUIRE(e.tokens.size() == n);
  REQUIRE(e.offsets.size() == n);
  if (!x.type_ids.empty()) {
    CHECK(e.type_ids == x.type_ids);
    CHECK(e.sequence_ids == x.sequence_ids);
    CHECK(e.attention_mask == x.attention_mask);
  } else {
    for (std::size_t i = 0; i < n; ++i) {
      const bool special = i < x.tokens.size() && (x.tokens[i] == "[CLS]" || x.tokens[i] == "[SEP]") &&
                           x.offsets[i] == std::pair<std::size_t, std::size_t>{0, 0};
      CHECK(e.type_ids[i] == 0);
      CHECK(e.sequence_ids[i] == (special ? -1 : 0));
      CHECK(e.attention_mask[i] == 1);
    }
  }
}

// What a call threw, for checks on kind, place and message.
struct Failure {
  bool thrown = false;
  kiln::ErrorKind kind = kiln::ErrorKind::internal;
  std::string file, where, message;
};

template <typename F>
Failure failure_of(F&& f) {
  try {
    f();
  } catch (const kiln::Error& e) {
    return {true, e.kind(), e.file(), e.where(), e.message()};
  }
  return {};
}

bool contains(const std::string& s, std::string_view part) { return s.find(part) != std::string::npos; }

using kiln::testing::TempDir;

// The uncased tokenizer.json with one part replaced, for the unsupported-type tests.
std::string uncased_json_with(std::string_view from, std::string_view to) {
  std::ifstream in(kVocab + "bert-base-uncased/tokenizer.json", std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::size_t at = text.find(from);
  REQUIRE(at != std::string::npos);
  text.replace(at, from.size(), to);
  return text;
}

}  // namespace

TEST_CASE("tokenizer unit: docs example, pair, every field") {
  check_encoding(uncased().encode_pair("Who was Jim Henson?"sv, "Jim Henson was a puppeteer"sv, {}),
    {{101, 2040, 2001, 3958, 27227, 1029, 102, 3958, 27227, 2001, 1037, 13997, 11510, 102},
     {"[CLS]", "who", "was", "jim", "henson", "?", "[SEP]", "jim", "henson", "was", "a", "puppet", "##eer", "[SEP]"},
     {{0, 0}, {0, 3}, {4, 7}, {8, 11}, {12, 18}, {18, 19}, {0, 0}, {0, 3}, {4, 10}, {11, 14}, {15, 16}, {17, 23}, {23, 26}, {0, 0}},
     {0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1},
     {-1, 0, 0, 0, 0, 0, -1, 1, 1, 1, 1, 1, 1, -1},
     {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}});
  // The same from tokenizer.json.
  check_encoding(uncased_json().encode_pair("Who was Jim Henson?"sv, "Jim Henson was a puppeteer"sv, {}),
    {{101, 2040, 2001, 3958, 27227, 1029, 102, 3958, 27227, 2001, 1037, 13997, 11510, 102},
     {"[CLS]", "who", "was", "jim", "henson", "?", "[SEP]", "jim", "henson", "was", "a", "puppet", "##eer", "[SEP]"},
     {{0, 0}, {0, 3}, {4, 7}, {8, 11}, {12, 18}, {18, 19}, {0, 0}, {0, 3}, {4, 10}, {11, 14}, {15, 16}, {17, 23}, {23, 26}, {0, 0}},
     {0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1},
     {-1, 0, 0, 0, 0, 0, -1, 1, 1, 1, 1, 1, 1, -1},
     {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}});
}

TEST_CASE("tokenizer unit: accents, uncased strips and cased keeps") {
  // Uncased: NFD, marks dropped, lowercased.
  check_encoding(uncased().encode("Caf\u00e9 na\u00efve \u00c5ngstr\u00f6m e\u0301"sv, {}),
    {{101, 7668, 15743, 17076, 15687, 1041, 102},
     {"[CLS]", "cafe", "naive", "ang", "##strom", "e", "[SEP]"},
     {{0, 0}, {0, 4}, {5, 10}, {11, 14}, {14, 19}, {20, 21}, {0, 0}}});
  // Cased: precomposed letters stay whole; a decomposed mark is a piece of its own.
  check_encoding(cased().encode("Caf\u00e9 na\u00efve \u00c5ngstr\u00f6m e\u0301"sv, {}),
    {{101, 21036, 9468, 28203, 2707, 230, 2118, 2050, 26370, 174, 28310, 102},
     {"[CLS]", "Caf\u00e9", "na", "##\u00ef", "##ve", "\u00c5", "##ng", "##st", "##r\u00f6m", "e", "##\u0301", "[SEP]"},
     {{0, 0}, {0, 4}, {5, 7}, {7, 8}, {8, 10}, {11, 12}, {12, 14}, {14, 16}, {16, 19}, {20, 21}, {21, 22}, {0, 0}}});
  check_encoding(multilingual().encode("Caf\u00e9 e\u0301"sv, {}),
    {{101, 37065, 173, 82091, 102},
     {"[CLS]", "Caf\u00e9", "e", "##\u0301", "[SEP]"},
     {{0, 0}, {0, 4}, {5, 6}, {6, 7}, {0, 0}}});
}

TEST_CASE("tokenizer unit: CJK ideographs are words of their own") {
  check_encoding(multilingual().encode("\u5317\u4eac\u5927\u5b66abc\u4e00x"sv, {}),
    {{101, 2650, 2172, 3197, 3365, 11357, 10350, 2072, 192, 102},
     {"[CLS]", "\u5317", "\u4eac", "\u5927", "\u5b66", "ab", "##c", "\u4e00", "x", "[SEP]"},
     {{0, 0}, {0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 6}, {6, 7}, {7, 8}, {8, 9}, {0, 0}}});
  // U+2B81F and U+2B920 are CJK for the reference; U+2B820..U+2B91F (which Python's
  // tokenizer counts) are not, so they stay glued to their neighbours.
  check_encoding(multilingual().encode("a\U0002b81fb\U0002b820c\U0002b91fd\U0002b920e"sv, {}),
    {{101, 169, 100, 100, 100, 173, 102},
     {"[CLS]", "a", "[UNK]", "[UNK]", "[UNK]", "e", "[SEP]"},
     {{0, 0}, {0, 1}, {1, 2}, {2, 7}, {7, 8}, {8, 9}, {0, 0}}});
}

TEST_CASE("tokenizer unit: control and zero-width characters are deleted, not spaces") {
  // ZWSP and VT glue words; tab, newline and CR split; NUL and U+FFFD vanish; NBSP and
  // the ideographic space split.
  check_encoding(uncased().encode("foo\u200bbar a\013b tab\011new\012line\015\012x\000y\ufffdz \u00a0nb\u3000sp"sv, {}),
    {{101, 29379, 8237, 11113, 21628, 2047, 2240, 1060, 2100, 2480, 1050, 2497, 11867, 102},
     {"[CLS]", "foo", "##bar", "ab", "tab", "new", "line", "x", "##y", "##z", "n", "##b", "sp", "[SEP]"},
     {{0, 0}, {0, 3}, {4, 7}, {8, 11}, {12, 15}, {16, 19}, {20, 24}, {26, 27}, {28, 29}, {30, 31}, {33, 34}, {34, 35}, {36, 38}, {0, 0}}});
}

TEST_CASE("tokenizer unit: lowercasing is per character") {
  // Capital sigma always becomes σ, never final ς; İ becomes i + U+0307 without accent
  // stripping (so the word is unknown) and plain i with it.
  check_encoding(multilingual_lower().encode("\u03a3\u038a\u03a3\u03a5\u03a6\u039f\u03a3 \u0130stanbul"sv, {}),
    {{101, 483, 16853, 111053, 14669, 54772, 111053, 100, 102},
     {"[CLS]", "\u03c3", "##\u03af", "##\u03c3", "##\u03c5", "##\u03c6\u03bf", "##\u03c3", "[UNK]", "[SEP]"},
     {{0, 0}, {0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 6}, {6, 7}, {8, 16}, {0, 0}}});
  check_encoding(uncased().encode("\u03a3\u038a\u03a3\u03a5\u03a6\u039f\u03a3 \u0130stanbul"sv, {}),
    {{101, 1173, 18199, 29733, 29735, 29736, 29730, 29733, 9960, 102},
     {"[CLS]", "\u03c3", "##\u03b9", "##\u03c3", "##\u03c5", "##\u03c6", "##\u03bf", "##\u03c3", "istanbul", "[SEP]"},
     {{0, 0}, {0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}, {5, 6}, {6, 7}, {8, 16}, {0, 0}}});
  // Cased keeps the capitals.
  check_encoding(multilingual().encode("\u03a3\u038a\u03a3\u03a5\u03a6\u039f\u03a3"sv, {}),
    {{101, 454, 111027, 85362, 111047, 111048, 111043, 85362, 102},
     {"[CLS]", "\u03a3", "##\u038a", "##\u03a3", "##\u03a5", "##\u03a6", "##\u039f", "##\u03a3", "[SEP]"},
     {{0, 0}, {0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}, {5, 6}, {6, 7}, {0, 0}}});
}

TEST_CASE("tokenizer unit: words over 100 code points after normalization are [UNK]") {
  // Reference: "a" x 100 is aaa, 48 x ##aa, ##a (13360, 11057, 2050), offsets
  // stepping by 2; "a" x 101 is one [UNK] over [0, 101).
  const kiln::Encoding e100 = uncased().encode(std::string(100, 'a') + " ok");
  std::vector<std::int32_t> ids = {101, 13360};
  ids.insert(ids.end(), 48, 11057);
  ids.insert(ids.end(), {2050, 7929, 102});
  CHECK(e100.ids == ids);
  REQUIRE(e100.offsets.size() == 53);
  CHECK(e100.offsets[1] == std::pair<std::size_t, std::size_t>{0, 3});
  CHECK(e100.offsets[2] == std::pair<std::size_t, std::size_t>{3, 5});
  CHECK(e100.offsets[50] == std::pair<std::size_t, std::size_t>{99, 100});
  CHECK(e100.offsets[51] == std::pair<std::size_t, std::size_t>{101, 103});
  check_encoding(uncased().encode(std::string(101, 'a') + " ok"),
    {{101, 100, 7929, 102},
     {"[CLS]", "[UNK]", "ok", "[SEP]"},
     {{0, 0}, {0, 101}, {102, 104}, {0, 0}}});
  // 200 code points of text, 100 after accent stripping: still split, into ee and 49 x ##ee
  // (25212, 4402), each over two "e + U+0301" pairs.
  std::string accented;
  for (int i = 0; i < 100; ++i) accented += "e\u0301";
  const kiln::Encoding eacc = uncased().encode(accented);
  std::vector<std::int32_t> acc_ids = {101, 25212};
  acc_ids.insert(acc_ids.end(), 49, 4402);
  acc_ids.push_back(102);
  CHECK(eacc.ids == acc_ids);
  REQUIRE(eacc.offsets.size() == 52);
  CHECK(eacc.offsets[1] == std::pair<std::size_t, std::size_t>{0, 3});
  CHECK(eacc.offsets[50] == std::pair<std::size_t, std::size_t>{196, 199});
  // Cased strips nothing: 50 x é + 26 x (e + U+0301) is 102 code points.
  std::string cased_text;
  for (int i = 0; i < 50; ++i) cased_text += "\u00e9";
  for (int i = 0; i < 26; ++i) cased_text += "e\u0301";
  check_encoding(cased().encode(cased_text),
    {{101, 100, 102},
     {"[CLS]", "[UNK]", "[SEP]"},
     {{0, 0}, {0, 102}, {0, 0}}});
}

TEST_CASE("tokenizer unit: special tokens in the text are matched case-sensitively and kept whole") {
  check_encoding(uncased().encode("[CLS]hello[SEP] [MASK]x [cls] [UNK] [PAD]"sv, {}),
    {{101, 101, 7592, 102, 103, 1060, 1031, 18856, 2015, 1033, 100, 0, 102},
     {"[CLS]", "[CLS]", "hello", "[SEP]", "[MASK]", "x", "[", "cl", "##s", "]", "[UNK]", "[PAD]", "[SEP]"},
     {{0, 0}, {0, 5}, {5, 10}, {10, 15}, {16, 22}, {22, 23}, {24, 25}, {25, 27}, {27, 28}, {28, 29}, {30, 35}, {36, 41}, {0, 0}}});
  // Still matched without add_special_tokens; they then belong to the text.
  check_encoding(uncased().encode("[CLS] hi"sv, [] { kiln::EncodeOptions o; o.add_special_tokens = false; return o; }()),
    {{101, 7632},
     {"[CLS]", "hi"},
     {{0, 5}, {6, 8}},
     {0, 0},
     {0, 0},
     {1, 1}});
  check_encoding(uncased_json().encode("[CLS]hello[SEP] [MASK]x [cls] [UNK] [PAD]"sv, {}),
    {{101, 101, 7592, 102, 103, 1060, 1031, 18856, 2015, 1033, 100, 0, 102},
     {"[CLS]", "[CLS]", "hello", "[SEP]", "[MASK]", "x", "[", "cl", "##s", "]", "[UNK]", "[PAD]", "[SEP]"},
     {{0, 0}, {0, 5}, {5, 10}, {10, 15}, {16, 22}, {22, 23}, {24, 25}, {25, 27}, {27, 28}, {28, 29}, {30, 35}, {36, 41}, {0, 0}}});
}

TEST_CASE("tokenizer unit: truncation") {
  const std::string a = "the quick brown fox jumps over the lazy dog";
  const std::string b = "hello world how are you today my friend";
  SUBCASE("longest_first on a pair splits evenly, the odd token to the longer") {
  check_encoding(uncased().encode_pair(a, b, [] { kiln::EncodeOptions o; o.max_length = 10; return o; }()),
    {{101, 1996, 4248, 2829, 4419, 102, 7592, 2088, 2129, 102},
     {"[CLS]", "the", "quick", "brown", "fox", "[SEP]", "hello", "world", "how", "[SEP]"},
     {{0, 0}, {0, 3}, {4, 9}, {10, 15}, {16, 19}, {0, 0}, {0, 5}, {6, 11}, {12, 15}, {0, 0}},
     {0, 0, 0, 0, 0, 0, 1, 1, 1, 1},
     {-1, 0, 0, 0, 0, -1, 1, 1, 1, -1},
     {1, 1, 1, 1, 1, 1, 1, 1, 1, 1}});
  check_encoding(uncased().encode_pair(a, b, [] { kiln::EncodeOptions o; o.max_length = 11; return o; }()),
    {{101, 1996, 4248, 2829, 4419, 102, 7592, 2088, 2129, 2024, 102},
     {"[CLS]", "the", "quick", "brown", "fox", "[SEP]", "hello", "world", "how", "are", "[SEP]"},
     {{0, 0}, {0, 3}, {4, 9}, {10, 15}, {16, 19}, {0, 0}, {0, 5}, {6, 11}, {12, 15}, {16, 19}, {0, 0}},
     {0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1},
     {-1, 0, 0, 0, 0, -1, 1, 1, 1, 1, -1},
     {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}});
  }
  SUBCASE("longest_first keeps a short text whole") {
  check_encoding(uncased().encode_pair("hi"sv, b, [] { kiln::EncodeOptions o; o.max_length = 10; return o; }()),
    {{101, 7632, 102, 7592, 2088, 2129, 2024, 2017, 2651, 102},
     {"[CLS]", "hi", "[SEP]", "hello", "world", "how", "are", "you", "today", "[SEP]"},
     {{0, 0}, {0, 2}, {0, 0}, {0, 5}, {6, 11}, {12, 15}, {16, 19}, {20, 23}, {24, 29}, {0, 0}},
     {0, 0, 0, 1, 1, 1, 1, 1, 1, 1},
     {-1, 0, -1, 1, 1, 1, 1, 1, 1, -1},
     {1, 1, 1, 1, 1, 1, 1, 1, 1, 1}});
  }
  SUBCASE("single text") {
  check_encoding(uncased().encode(a, [] { kiln::EncodeOptions o; o.max_length = 5; return o; }()),
    {{101, 1996, 4248, 2829, 102},
     {"[CLS]", "the", "quick", "brown", "[SEP]"},
     {{0, 0}, {0, 3}, {4, 9}, {10, 15}, {0, 0}}});
  }
  SUBCASE("only_first and only_second") {
  check_encoding(uncased().encode_pair(a, b, [] { kiln::EncodeOptions o; o.max_length = 14; o.truncation = kiln::Truncation::only_first; return o; }()),
    {{101, 1996, 4248, 2829, 102, 7592, 2088, 2129, 2024, 2017, 2651, 2026, 2767, 102},
     {"[CLS]", "the", "quick", "brown", "[SEP]", "hello", "world", "how", "are", "you", "today", "my", "friend", "[SEP]"},
     {{0, 0}, {0, 3}, {4, 9}, {10, 15}, {0, 0}, {0, 5}, {6, 11}, {12, 15}, {16, 19}, {20, 23}, {24, 29}, {30, 32}, {33, 39}, {0, 0}},
     {0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1},
     {-1, 0, 0, 0, -1, 1, 1, 1, 1, 1, 1, 1, 1, -1},
     {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}});
  check_encoding(uncased().encode_pair(a, b, [] { kiln::EncodeOptions o; o.max_length = 14; o.truncation = kiln::Truncation::only_second; return o; }()),
    {{101, 1996, 4248, 2829, 4419, 14523, 2058, 1996, 13971, 3899, 102, 7592, 2088, 102},
     {"[CLS]", "the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", "[SEP]", "hello", "world", "[SEP]"},
     {{0, 0}, {0, 3}, {4, 9}, {10, 15}, {16, 19}, {20, 25}, {26, 30}, {31, 34}, {35, 39}, {40, 43}, {0, 0}, {0, 5}, {6, 11}, {0, 0}},
     {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1},
     {-1, 0, 0, 0, 0, 0, 0, 0, 0, 0, -1, 1, 1, -1},
     {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}});
  }
  SUBCASE("only_second with one text fails unless it fits") {
    // Reference: "Truncation error: Second sequence not provided".
    const Failure f = failure_of([&] { uncased().encode(a, [] { kiln::EncodeOptions o; o.max_length = 5; o.truncation = kiln::Truncation::only_second; return o; }()); });
    CHECK(f.thrown);
    CHECK(f.kind == kiln::ErrorKind::bad_input);
    CHECK(contains(f.message, "second text"));
  check_encoding(uncased().encode("hi"sv, [] { kiln::EncodeOptions o; o.max_length = 5; o.truncation = kiln::Truncation::only_second; return o; }()),
    {{101, 7632, 102},
     {"[CLS]", "hi", "[SEP]"},
     {{0, 0}, {0, 2}, {0, 0}}});
  }
  SUBCASE("only_first fails when the first text is too short to absorb the cut") {
    // Reference: "Truncation error: Sequence to truncate too short to respect the provided max_length".
    const Failure f = failure_of([&] { uncased().encode_pair("hi there", b, [] { kiln::EncodeOptions o; o.max_length = 6; o.truncation = kiln::Truncation::only_first; return o; }()); });
    CHECK(f.thrown);
    CHECK(f.kind == kiln::ErrorKind::bad_input);
    CHECK(contains(f.message, "too few"));
  }
  SUBCASE("max_length below the special tokens truncates nothing; equal to them keeps only them") {
  check_encoding(uncased().encode(a, [] { kiln::EncodeOptions o; o.max_length = 1; return o; }()),
    {{101, 1996, 4248, 2829, 4419, 14523, 2058, 1996, 13971, 3899, 102},
     {"[CLS]", "the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", "[SEP]"},
     {{0, 0}, {0, 3}, {4, 9}, {10, 15}, {16, 19}, {20, 25}, {26, 30}, {31, 34}, {35, 39}, {40, 43}, {0, 0}}});
  check_encoding(uncased().encode_pair("a b"sv, "c d"sv, [] { kiln::EncodeOptions o; o.max_length = 2; return o; }()),
    {{101, 1037, 1038, 102, 1039, 1040, 102},
     {"[CLS]", "a", "b", "[SEP]", "c", "d", "[SEP]"},
     {{0, 0}, {0, 1}, {2, 3}, {0, 0}, {0, 1}, {2, 3}, {0, 0}},
     {0, 0, 0, 0, 1, 1, 1},
     {-1, 0, 0, -1, 1, 1, -1},
     {1, 1, 1, 1, 1, 1, 1}});
  check_encoding(uncased().encode(a, [] { kiln::EncodeOptions o; o.max_length = 2; return o; }()),
    {{101, 102},
     {"[CLS]", "[SEP]"},
     {{0, 0}, {0, 0}}});
  }
  SUBCASE("without special tokens max_length counts text tokens only") {
  check_encoding(uncased().encode(a, [] { kiln::EncodeOptions o; o.add_special_tokens = false; o.max_length = 3; return o; }()),
    {{1996, 4248, 2829},
     {"the", "quick", "brown"},
     {{0, 3}, {4, 9}, {10, 15}}});
  }
}

TEST_CASE("tokenizer unit: padding") {
  check_encoding(uncased().encode("hello world"sv, [] { kiln::EncodeOptions o; o.max_length = 8; o.pad_to_max_length = true; return o; }()),
    {{101, 7592, 2088, 102, 0, 0, 0, 0},
     {"[CLS]", "hello", "world", "[SEP]", "[PAD]", "[PAD]", "[PAD]", "[PAD]"},
     {{0, 0}, {0, 5}, {6, 11}, {0, 0}, {0, 0}, {0, 0}, {0, 0}, {0, 0}},
     {0, 0, 0, 0, 0, 0, 0, 0},
     {-1, 0, 0, -1, -1, -1, -1, -1},
     {1, 1, 1, 1, 0, 0, 0, 0}});
  check_encoding(uncased().encode_pair("hello"sv, "world"sv, [] { kiln::EncodeOptions o; o.max_length = 8; o.pad_to_max_length = true; return o; }()),
    {{101, 7592, 102, 2088, 102, 0, 0, 0},
     {"[CLS]", "hello", "[SEP]", "world", "[SEP]", "[PAD]", "[PAD]", "[PAD]"},
     {{0, 0}, {0, 5}, {0, 0}, {0, 5}, {0, 0}, {0, 0}, {0, 0}, {0, 0}},
     {0, 0, 0, 1, 1, 0, 0, 0},
     {-1, 0, -1, 1, -1, -1, -1, -1},
     {1, 1, 1, 1, 1, 0, 0, 0}});
  // Nothing to pad to without max_length.
  kiln::EncodeOptions o;
  o.pad_to_max_length = true;
  CHECK(uncased().encode("hello world", o).ids.size() == 4);
}

TEST_CASE("tokenizer unit: offsets are code points of the original text") {
  // İ is two UTF-8 bytes but one code point; the emoji is four bytes; x + U+0301 loses
  // its mark; CJK characters are single-character words.
  check_encoding(uncased().encode("\u0130stanbul\u2019s na\u00efve \U0001f600 x\u0301y \u5317\u4eac"sv, {}),
    {{101, 9960, 1521, 1055, 15743, 100, 1060, 2100, 1781, 1755, 102},
     {"[CLS]", "istanbul", "\u2019", "s", "naive", "[UNK]", "x", "##y", "\u5317", "\u4eac", "[SEP]"},
     {{0, 0}, {0, 8}, {8, 9}, {9, 10}, {11, 16}, {17, 18}, {19, 20}, {21, 22}, {23, 24}, {24, 25}, {0, 0}}});
  check_encoding(cased().encode("\u0130stanbul\u2019s na\u00efve \U0001f600 x\u0301y"sv, {}),
    {{101, 300, 13946, 27515, 787, 188, 9468, 28203, 2707, 100, 193, 28310, 1183, 102},
     {"[CLS]", "\u0130", "##stan", "##bul", "\u2019", "s", "na", "##\u00ef", "##ve", "[UNK]", "x", "##\u0301", "##y", "[SEP]"},
     {{0, 0}, {0, 1}, {1, 5}, {5, 8}, {8, 9}, {9, 10}, {11, 13}, {13, 14}, {14, 16}, {17, 18}, {19, 20}, {20, 21}, {21, 22}, {0, 0}}});
  check_encoding(uncased().encode(""sv, {}),
    {{101, 102},
     {"[CLS]", "[SEP]"},
     {{0, 0}, {0, 0}},
     {0, 0},
     {-1, -1},
     {1, 1}});
  check_encoding(uncased().encode_pair(""sv, ""sv, {}),
    {{101, 102, 102},
     {"[CLS]", "[SEP]", "[SEP]"},
     {{0, 0}, {0, 0}, {0, 0}},
     {0, 0, 1},
     {-1, -1, -1},
     {1, 1, 1}});
}

TEST_CASE("tokenizer unit: invalid UTF-8 names the byte") {
  struct Case {
    std::string text;
    std::string where;
  };
  const std::vector<Case> cases = {
      {"ab\xff" "cd", "byte 2"},          // never valid
      {"ab\x80", "byte 2"},               // stray continuation
      {"\xc3(", "byte 0"},                 // missing continuation
      {"abc\xe2\x82", "byte 3"},          // truncated at the end
      {"\xc0\xaf", "byte 0"},              // overlong '/'
      {"x\xe0\x80\xaf", "byte 1"},        // overlong, three bytes
      {"\xed\xa0\x80", "byte 0"},          // UTF-16 surrogate
      {"\xf4\x90\x80\x80", "byte 0"},      // above U+10FFFF
  };
  for (const Case& c : cases) {
    const Failure f = failure_of([&] { uncased().encode(c.text); });
    INFO(c.where << ": " << f.message);
    CHECK(f.thrown);
    CHECK(f.kind == kiln::ErrorKind::bad_input);
    CHECK(f.file.empty());
    CHECK(f.where == c.where);
    CHECK(contains(f.message, "invalid UTF-8"));
  }
  const Failure f = failure_of([&] { uncased().encode_pair("fine", "also \xff"); });
  CHECK(f.where == "byte 5");
  CHECK(contains(f.message, "second text"));
  // Valid multi-byte text at the edges of each length is accepted.
  CHECK_NOTHROW(uncased().encode("\u0080\u07ff\u0800\uffff\U00010000\U0010ffff"));
}

TEST_CASE("tokenizer unit: vocab.txt loading") {
  TempDir dir;
  SUBCASE("the Hub vocabularies") {
    CHECK(uncased().vocab_size() == 30522);
    CHECK(uncased().lowercase());
    CHECK(uncased().strip_accents());
    CHECK(cased().vocab_size() == 28996);
    CHECK_FALSE(cased().lowercase());
    CHECK_FALSE(cased().strip_accents());
    CHECK(uncased().token_to_id("[PAD]") == 0);
    CHECK(uncased().token_to_id("the") == 1996);
    CHECK(uncased().token_to_id("##eer") == 11510);
    CHECK_FALSE(uncased().token_to_id("The").has_value());
    CHECK(uncased().id_to_token(101) == "[CLS]");
    CHECK(uncased().id_to_token(30521) == "##\uff5e");
    CHECK_THROWS_AS(uncased().id_to_token(30522), kiln::Error);
    CHECK_THROWS_AS(uncased().id_to_token(-1), kiln::Error);
  }
  SUBCASE("a token seen twice keeps its later id; trailing whitespace and CR are trimmed") {
    const std::string path = dir.write("vocab.txt", "[PAD]\012[UNK]\012[CLS]\012[SEP]\012[MASK]\012hello\012world \012\u3000x\u3000\012hello\012\012  \012ab\015\012c\012##c\012[MASK]\012tail");
    const kiln::Tokenizer t = kiln::Tokenizer::from_file(path);
    // Reference: vocab size 13; id 5 has no token; "hello" -> 8, "" -> 10.
    CHECK(t.vocab_size() == 13);
    CHECK(t.token_to_id("hello") == 8);
    CHECK(t.token_to_id("") == 10);
    CHECK(t.token_to_id("[MASK]") == 14);
    CHECK_THROWS_AS(t.id_to_token(5), kiln::Error);
    check_encoding(t.encode("hello world x ab c cc tail [MASK]"),
      {{2, 8, 6, 1, 11, 12, 12, 13, 15, 14, 3},
     {"[CLS]", "hello", "world", "[UNK]", "ab", "c", "c", "##c", "tail", "[MASK]", "[SEP]"},
     {{0, 0}, {0, 5}, {6, 11}, {12, 13}, {14, 16}, {17, 18}, {19, 20}, {20, 21}, {22, 26}, {27, 33}, {0, 0}}});
  }
  SUBCASE("tokenizer_config.json beside vocab.txt decides lowercasing") {
    std::ifstream in(kVocab + "bert-base-uncased/vocab.txt", std::ios::binary);
    const std::string vocab((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string path = dir.write("vocab.txt", vocab);
    dir.write("tokenizer_config.json", R"({"do_lower_case": false, "model_max_length": 512})");
    const kiln::Tokenizer t = kiln::Tokenizer::from_file(path);
    CHECK_FALSE(t.lowercase());
    CHECK_FALSE(t.strip_accents());
    // As BertWordPieceTokenizer(vocab, lowercase=False).
    check_encoding(t.encode("Hello Caf\u00e9"),
      {{101, 100, 100, 102},
     {"[CLS]", "[UNK]", "[UNK]", "[SEP]"},
     {{0, 0}, {0, 5}, {6, 10}, {0, 0}}});
    // An explicit option wins over the file.
    const kiln::Tokenizer lower = kiln::Tokenizer::from_file(path, {true, {}});
    CHECK(lower.lowercase());
    CHECK(lower.strip_accents());
    dir.write("tokenizer_config.json", R"({"do_lower_case": "yes"})");
    const Failure f = failure_of([&] { kiln::Tokenizer::from_file(path); });
    CHECK(f.thrown);
    CHECK(contains(f.file, "tokenizer_config.json"));
    CHECK(f.where == "do_lower_case");
  }
  SUBCASE("malformed vocabularies") {
    struct Case {
      std::string bytes;
      std::string where;
      std::string message;
    };
    const std::vector<Case> cases = {
        {"", "", "empty vocabulary"},
        {"[PAD]\n[UNK]\n[CLS]\nab\xff\n[SEP]\n", "line 4", "invalid UTF-8"},
        {"[PAD]\n[UNK]\n[CLS]\nhello\n", "", "no [SEP]"},
        {"[PAD]\n[UNK]\n[SEP]\nhello\n", "", "no [CLS]"},
    };
    for (const Case& c : cases) {
      const std::string path = dir.write("vocab.txt", c.bytes);
      const Failure f = failure_of([&] { kiln::Tokenizer::from_file(path); });
      INFO(c.message << ": " << f.message);
      CHECK(f.thrown);
      CHECK(f.kind == kiln::ErrorKind::bad_input);
      CHECK(f.file == path);
      CHECK(f.where == c.where);
      CHECK(contains(f.message, c.message));
    }
    const Failure missing = failure_of([&] { kiln::Tokenizer::from_file(dir.path.string() + "/nope.txt"); });
    CHECK(missing.thrown);
    CHECK(missing.kind == kiln::ErrorKind::bad_input);
  }
  SUBCASE("a word that needs [UNK] when the vocabulary has none") {
    // Reference: "WordPiece error: Missing [UNK] token from the vocabulary", at encode time.
    const std::string path = dir.write("vocab.txt", "[CLS]\n[SEP]\nhello\n");
    const kiln::Tokenizer t = kiln::Tokenizer::from_file(path);
    CHECK(t.encode("hello").ids == std::vector<std::int32_t>{0, 2, 1});
    const Failure f = failure_of([&] { t.encode("hello zzz"); });
    CHECK(f.thrown);
    CHECK(contains(f.message, "[UNK]"));
    // Padding needs [PAD].
    const Failure pad = failure_of([&] { t.encode("hello", [] { kiln::EncodeOptions o; o.max_length = 8; o.pad_to_max_length = true; return o; }()); });
    CHECK(pad.thrown);
    CHECK(contains(pad.message, "[PAD]"));
  }
}

TEST_CASE("tokenizer unit: tokenizer.json loading") {
  CHECK(uncased_json().vocab_size() == 30522);
  CHECK(uncased_json().lowercase());
  CHECK(uncased_json().strip_accents());
  CHECK_FALSE(cased_json().lowercase());
  CHECK(multilingual().vocab_size() == 119547);
  CHECK_FALSE(multilingual().lowercase());
  CHECK_FALSE(multilingual().strip_accents());
  check_encoding(cased_json().encode("Hello, Caf\u00e9! \u5317\u4eac [MASK]"sv, {}),
    {{101, 8667, 117, 21036, 106, 993, 984, 103, 102},
     {"[CLS]", "Hello", ",", "Caf\u00e9", "!", "\u5317", "\u4eac", "[MASK]", "[SEP]"},
     {{0, 0}, {0, 5}, {5, 6}, {7, 11}, {11, 12}, {13, 14}, {14, 15}, {16, 22}, {0, 0}}});
  SUBCASE("lowercasing can be overridden, accent stripping follows it") {
    const kiln::Tokenizer t = kiln::Tokenizer::from_file(kVocab + "bert-base-multilingual-cased/tokenizer.json", {true, {}});
    CHECK(t.lowercase());
    CHECK(t.strip_accents());
  }
  SUBCASE("added tokens: lstrip, rstrip, single_word, normalized; ids assigned as the reference does") {
    TempDir dir;
    const std::string json = uncased_json_with(R"("special":true,"content":"[MASK]","single_word":false,"lstrip":false,"rstrip":false,"normalized":false}])",
        R"("special":true,"content":"[MASK]","single_word":false,"lstrip":false,"rstrip":false,"normalized":false},{"id":0,"content":"<l>","single_word":false,"lstrip":true,"rstrip":false,"normalized":false,"special":false},{"id":0,"content":"<r>","single_word":false,"lstrip":false,"rstrip":true,"normalized":false,"special":false},{"id":0,"content":"<q>","single_word":true,"lstrip":false,"rstrip":false,"normalized":false,"special":false},{"id":0,"content":"Straße","single_word":false,"lstrip":false,"rstrip":false,"normalized":true,"special":false},{"id":0,"content":"hello","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":false}])");
    const kiln::Tokenizer t = kiln::Tokenizer::from_file(dir.write("tokenizer.json", json));
    CHECK(t.vocab_size() == 30526);
    CHECK(t.token_to_id("<l>") == 30522);
    CHECK(t.token_to_id("<q>") == 30524);
    CHECK(t.token_to_id("Stra\u00dfe") == 30525);
    CHECK(t.token_to_id("hello") == 7592);
    CHECK(t.id_to_token(30525) == "stra\u00dfe");  // normalized content, as the reference
    check_encoding(t.encode("a  <l>  b  <r>  c x<q> <q>! STRASSE stra\u00dfe HELLO hello"),
      {{101, 1037, 30522, 1038, 30523, 1039, 1060, 1026, 1053, 1028, 30524, 999, 2358, 8180, 3366, 30525, 7592, 7592, 102},
     {"[CLS]", "a", "  <l>", "b", "<r>  ", "c", "x", "<", "q", ">", "<q>", "!", "st", "##ras", "##se", "stra\u00dfe", "hello", "hello", "[SEP]"},
     {{0, 0}, {0, 1}, {1, 6}, {8, 9}, {11, 16}, {16, 17}, {18, 19}, {19, 20}, {20, 21}, {21, 22}, {23, 26}, {26, 27}, {28, 30}, {30, 33}, {33, 35}, {36, 42}, {43, 48}, {49, 54}, {0, 0}}});
  }
}

TEST_CASE("tokenizer unit: unsupported or malformed tokenizer.json is refused by name") {
  TempDir dir;
  struct Case {
    std::string from, to;
    std::string where, message;
  };
  const std::vector<Case> cases = {
      {R"("model":{"unk_token")", R"("model":{"type":"BPE","unk_token")", "model.type", "unsupported model \"BPE\""},
      {R"("model":{"unk_token")", R"("model":{"merges":[],"unk_token")", "model", "does not look like WordPiece"},
      {R"("normalizer":{"type":"BertNormalizer")", R"("normalizer":{"type":"Lowercase")", "normalizer.type",
       "unsupported normalizer \"Lowercase\""},
      {R"("pre_tokenizer":{"type":"BertPreTokenizer"})", R"("pre_tokenizer":{"type":"Whitespace"})",
       "pre_tokenizer.type", "unsupported pre-tokenizer \"Whitespace\""},
      {R"("post_processor":{"type":"TemplateProcessing")", R"("post_processor":{"type":"RobertaProcessing")",
       "post_processor.type", "unsupported post-processor \"RobertaProcessing\""},
      {R"("normalizer":{"type":"BertNormalizer","clean_text":true)", R"("normalizer":{"type":"BertNormalizer","clean_text":1)",
       "normalizer.clean_text", "expected true or false"},
      {R"("[PAD]":0,)", R"("[PAD]":-1,)", "model.vocab.[PAD]", "out of range"},
  };
  for (const Case& c : cases) {
    const std::string path = dir.write("tokenizer.json", uncased_json_with(c.from, c.to));
    const Failure f = failure_of([&] { kiln::Tokenizer::from_file(path); });
    INFO(c.message << ": " << f.message);
    CHECK(f.thrown);
    CHECK(f.kind == kiln::ErrorKind::bad_input);
    CHECK(f.file == path);
    CHECK(f.where == c.where);
    CHECK(contains(f.message, c.message));
  }
  // Not JSON after all: the JSON parser's line and column.
  const std::string broken = dir.write("tokenizer.json", "{\"model\": [1, 2,]}");
  const Failure f = failure_of([&] { kiln::Tokenizer::from_file(broken); });
  CHECK(f.thrown);
  CHECK(f.file == broken);
  CHECK(contains(f.where, "line 1"));
}

TEST_CASE("tokenizer unit: one tokenizer encodes from many threads") {
  const kiln::Tokenizer& t = multilingual();
  const std::vector<std::string> texts = {"Who was Jim Henson?", "北京大学 Café", "ΣΊΣΥΦΟΣ [MASK] x", "naïve e\u0301 \U0001f600"};
  std::vector<kiln::Encoding> expected;
  for (const std::string& s : texts) expected.push_back(t.encode(s));
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&] {
      for (int rep = 0; rep < 200; ++rep) {
        for (std::size_t i = 0; i < texts.size(); ++i) {
          const kiln::Encoding e = t.encode(texts[i]);
          if (e.ids != expected[i].ids || e.offsets != expected[i].offsets) ++mismatches;
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  CHECK(mismatches == 0);
}
