// libFuzzer target: kiln::Tokenizer (bert-base-uncased) over arbitrary bytes.
//
// The first byte picks the options, the rest is the text (with bit 0, two texts split at
// the first TAB, as `kiln tokenize --pair` reads them):
//   bit 0  pair            bit 1  no special tokens
//   bit 2  max_length = 1 + (byte 1 % 48), byte 1 then not part of the text
//   bits 3-4  truncation: 0, 1 longest_first, 2 only_first, 3 only_second
//   bit 5  pad to max_length
//   bit 6  replace invalid UTF-8 by U+FFFD first, so mutations that break UTF-8 still
//          reach the normalizer; without it they test the UTF-8 check
// The text is encoded by the tokenizer loaded from vocab.txt (lowercase on) and by the one
// loaded from tokenizer.json: both must agree exactly, or both refuse with bad_input. An
// encoding must be self-consistent (equal lengths, tokens spelled as their ids, offsets
// inside the text they point into, specials and padding at [0, 0], the mask marking
// padding) and respect max_length once it leaves room for the special tokens.
//
// The vocabulary folder is $KILN_FUZZ_VOCAB_DIR, else the committed
// tests/tokenizer/vocab/bert-base-uncased of the source tree this was built from.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "kiln/tokenizer.hpp"
#include "tests/fuzz/fuzz_common.hpp"

namespace {

struct Tokenizers {
  kiln::Tokenizer from_txt;
  kiln::Tokenizer from_json;
};

const Tokenizers& tokenizers() {
  static const Tokenizers t = [] {
    const char* env = std::getenv("KILN_FUZZ_VOCAB_DIR");
    const std::string dir = env && *env ? env : KILN_SOURCE_ROOT "/tests/tokenizer/vocab/bert-base-uncased";
    kiln::TokenizerOptions lower;
    lower.lowercase = true;
    return Tokenizers{kiln::Tokenizer::from_file(dir + "/vocab.txt", lower),
                      kiln::Tokenizer::from_file(dir + "/tokenizer.json")};
  }();
  return t;
}

// Valid UTF-8 with each byte that does not start a valid sequence replaced by U+FFFD.
std::string repair_utf8(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n > 1) {
      std::uint32_t cp = n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
      for (std::size_t k = 1; k < n && n; ++k) {
        const unsigned char cc = i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0;
        if ((cc >> 6) != 2) n = 0;
        else cp = (cp << 6) | (cc & 0x3F);
      }
      static constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
      if (n && (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))) n = 0;
    }
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

std::size_t code_points(std::string_view s) {
  std::size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

void check(const kiln::Tokenizer& tok, const kiln::Encoding& e, std::string_view first,
           std::optional<std::string_view> second, const kiln::EncodeOptions& options) {
  const std::size_t n = e.ids.size();
  if (e.type_ids.size() != n || e.attention_mask.size() != n || e.offsets.size() != n || e.tokens.size() != n ||
      e.sequence_ids.size() != n) {
    kiln::fuzz::finding("encoding fields of different lengths");
  }
  const std::size_t len[2] = {code_points(first), second ? code_points(*second) : 0};
  std::size_t padding = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (e.ids[i] < 0 || static_cast<std::size_t>(e.ids[i]) >= tok.vocab_size()) kiln::fuzz::finding("id out of range");
    if (tok.id_to_token(e.ids[i]) != e.tokens[i]) kiln::fuzz::finding("token is not the spelling of its id");
    const auto [start, end] = e.offsets[i];
    const int seq = e.sequence_ids[i];
    if (seq == 0 || seq == 1) {
      if (seq == 1 && !second) kiln::fuzz::finding("sequence id 1 for a single text");
      if (start > end || end > len[seq]) kiln::fuzz::finding("offsets outside the text");
      if (e.attention_mask[i] != 1) kiln::fuzz::finding("a text token masked out");
      if (padding) kiln::fuzz::finding("a text token after padding");
    } else if (seq == -1) {
      if (start != 0 || end != 0) kiln::fuzz::finding("special token or padding with offsets other than [0, 0]");
      if (e.attention_mask[i] == 0) {
        ++padding;
      } else if (padding) {
        kiln::fuzz::finding("a special token after padding");
      }
    } else {
      kiln::fuzz::finding("sequence id not -1, 0 or 1");
    }
  }
  if (padding && !options.pad_to_max_length) kiln::fuzz::finding("padding that was not asked for");
  if (options.max_length) {
    const std::size_t specials = options.add_special_tokens ? (second ? 3 : 2) : 0;
    // Below the special tokens' own count the reference does not truncate at all.
    if (*options.max_length >= specials && n - padding > *options.max_length) {
      kiln::fuzz::finding("longer than max_length");
    }
    if (options.pad_to_max_length && n < *options.max_length) kiln::fuzz::finding("padded short of max_length");
  }
}

bool same(const kiln::Encoding& a, const kiln::Encoding& b) {
  return a.ids == b.ids && a.type_ids == b.type_ids && a.attention_mask == b.attention_mask &&
         a.offsets == b.offsets && a.tokens == b.tokens && a.sequence_ids == b.sequence_ids;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t flags = data[0];
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  kiln::EncodeOptions options;
  options.add_special_tokens = !(flags & 0x02);
  if (flags & 0x04) {
    if (rest.empty()) return 0;
    options.max_length = 1 + static_cast<unsigned char>(rest[0]) % 48;
    rest.remove_prefix(1);
    const int strategy = (flags >> 3) & 3;
    options.truncation = strategy == 2   ? kiln::Truncation::only_first
                         : strategy == 3 ? kiln::Truncation::only_second
                                         : kiln::Truncation::longest_first;
    options.pad_to_max_length = flags & 0x20;
  }
  const std::string text = flags & 0x40 ? repair_utf8(rest) : std::string(rest);
  std::string_view first = text;
  std::optional<std::string_view> second;
  if (flags & 0x01) {
    const std::size_t tab = first.find('\t');
    second = tab == std::string_view::npos ? std::string_view() : first.substr(tab + 1);
    first = tab == std::string_view::npos ? first : first.substr(0, tab);
  }

  const Tokenizers& t = tokenizers();
  std::optional<kiln::Encoding> results[2];
  const kiln::Tokenizer* toks[2] = {&t.from_txt, &t.from_json};
  for (int k = 0; k < 2; ++k) {
    kiln::fuzz::expect_bad_input_only([&] {
      results[k] = second ? toks[k]->encode_pair(first, *second, options) : toks[k]->encode(first, options);
    });
    if (results[k]) check(*toks[k], *results[k], first, second, options);
  }
  if (results[0].has_value() != results[1].has_value()) {
    kiln::fuzz::finding("vocab.txt and tokenizer.json loads disagree on whether the text is acceptable");
  }
  if (results[0] && !same(*results[0], *results[1])) {
    kiln::fuzz::finding("vocab.txt and tokenizer.json loads encode the text differently");
  }
  return 0;
}
