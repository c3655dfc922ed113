// `kiln tokenize --vocab FILE [options]`: reads UTF-8 lines from stdin and writes, for each,
// one compact JSON object with the encoding Hugging Face `tokenizers` would give.
#include "tools/kiln/tokenize.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <utility>

#include "format/json.hpp"
#include "kiln/error.hpp"
#include "kiln/tokenizer.hpp"
#include "tools/kiln/option_reader.hpp"
#include "tools/kiln/json_writer.hpp"

namespace kiln::cli {

namespace {

const char* const kTokenizeUsage =
    "usage: kiln tokenize --vocab FILE [--lowercase|--no-lowercase] [--pair] [--jsonl]\n"
    "                     [--max-length N [--truncation STRATEGY] [--padding]]\n"
    "                     [--no-special-tokens]\n"
    "\n"
    "Tokenizes each line of stdin as Hugging Face's BERT tokenizer does (BertTokenizerFast,\n"
    "the Rust `tokenizers`) and writes one JSON object per line to stdout:\n"
    "  {\"input_ids\":[...],\"token_type_ids\":[...],\"attention_mask\":[...],\n"
    "   \"offsets\":[[start,end],...],\"tokens\":[...]}\n"
    "Offsets count Unicode code points of the text the token came from; [0,0] for [CLS],\n"
    "[SEP] and [PAD]. Input must be UTF-8; a trailing CR is dropped from each line.\n"
    "\n"
    "  --vocab FILE            vocab.txt (one token per line) or tokenizer.json\n"
    "  --lowercase             lowercase and strip accents (uncased models)\n"
    "  --no-lowercase          keep case and accents (cased models); without either, a\n"
    "                          tokenizer.json says, and for vocab.txt a tokenizer_config.json\n"
    "                          beside it does, else lowercasing is on\n"
    "  --pair                  each line is two texts separated by the first TAB\n"
    "  --jsonl                 each line is {\"text\": ..., \"text_pair\": ...} (text_pair optional)\n"
    "  --max-length N          truncate to N tokens, special tokens included\n"
    "  --truncation STRATEGY   longest_first (default), only_first or only_second\n"
    "  --padding               pad with [PAD] to --max-length\n"
    "  --no-special-tokens     no [CLS] and [SEP]\n"
    "\n"
    "The first bad line (invalid UTF-8 or JSON, no TAB with --pair, a truncation the\n"
    "strategy cannot do) stops the run with exit 1 and 'kiln: error: <stdin>:line N, ...';\n"
    "the lines before it have been written.\n";

Error usage_error(const std::string& message) { return cli::usage_error("tokenize", message); }

struct Settings {
  std::string vocab;
  TokenizerOptions tokenizer;
  EncodeOptions encode;
  bool pair = false;
  bool jsonl = false;
};

Truncation parse_truncation(std::string_view s) {
  if (s == "longest_first") return Truncation::longest_first;
  if (s == "only_first") return Truncation::only_first;
  if (s == "only_second") return Truncation::only_second;
  throw usage_error("--truncation must be longest_first, only_first or only_second, not '" + std::string(s) + "'");
}

std::size_t parse_max_length(std::string_view s) {
  std::size_t n = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  // An upper bound keeps a typo from asking for a multi-gigabyte padded encoding.
  if (ec != std::errc() || end != s.data() + s.size() || n == 0 || n > (std::size_t{1} << 24)) {
    throw usage_error("--max-length needs a whole number from 1 to 16777216, not '" + std::string(s) + "'");
  }
  return n;
}

// Returns the settings, or nullopt when --help was asked for (and printed).
std::optional<Settings> parse_args(const std::vector<std::string_view>& args) {
  Settings s;
  std::optional<std::string_view> max_length, truncation;
  bool padding = false, lowercase = false, no_lowercase = false;
  OptionReader r(args, "tokenize");
  while (r.next()) {
    if (r.is("--help") || r.is("-h")) {
      std::fputs(kTokenizeUsage, stdout);
      return std::nullopt;
    } else if (r.is("--vocab")) {
      s.vocab = std::string(r.value());
    } else if (r.is("--max-length")) {
      max_length = r.value();
    } else if (r.is("--truncation")) {
      truncation = r.value();
    } else if (r.is("--lowercase")) {
      r.flag();
      lowercase = true;
    } else if (r.is("--no-lowercase")) {
      r.flag();
      no_lowercase = true;
    } else if (r.is("--pair")) {
      r.flag();
      s.pair = true;
    } else if (r.is("--jsonl")) {
      r.flag();
      s.jsonl = true;
    } else if (r.is("--padding")) {
      r.flag();
      padding = true;
    } else if (r.is("--no-special-tokens")) {
      r.flag();
      s.encode.add_special_tokens = false;
    } else if (r.is_option()) {
      throw usage_error("unknown option '" + std::string(r.arg()) + "'");
    } else {
      throw usage_error("unexpected argument '" + std::string(r.arg()) + "' (text comes from stdin)");
    }
  }
  if (s.vocab.empty()) throw usage_error("no --vocab FILE given");
  if (lowercase && no_lowercase) throw usage_error("--lowercase and --no-lowercase contradict each other");
  if (lowercase || no_lowercase) s.tokenizer.lowercase = lowercase;
  if (s.pair && s.jsonl) throw usage_error("--pair and --jsonl: with --jsonl, give text_pair in the object");
  if (padding && !max_length) throw usage_error("--padding needs --max-length");
  if (truncation && !max_length) throw usage_error("--truncation needs --max-length");
  if (max_length) s.encode.max_length = parse_max_length(*max_length);
  if (truncation) s.encode.truncation = parse_truncation(*truncation);
  s.encode.pad_to_max_length = padding;
  return s;
}

// Byte offset of the first byte that is not part of valid UTF-8 (overlong forms,
// surrogates and code points past U+10FFFF included), or npos. The CLI checks before the
// tokenizer does so that its error names a column of the input line, not of one text.
std::size_t invalid_utf8_at(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    const std::size_t n = (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return i;
    std::uint32_t cp = n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
    for (std::size_t k = 1; k < n; ++k) {
      const unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc >> 6) != 2) return i;
      cp = (cp << 6) | (cc & 0x3F);
    }
    static constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += n;
  }
  return std::string_view::npos;
}

std::string line_where(std::size_t line) { return "line " + std::to_string(line); }

// One input line as the text (and pair) to encode.
struct Texts {
  std::string first;
  std::optional<std::string> second;
};

Texts parse_jsonl(std::string_view line, std::size_t number) {
  format::JsonValue v;
  try {
    v = format::parse_json(line, "<stdin>");
  } catch (const Error& e) {
    // The parser saw one line; put the real line number in front of its column.
    const std::size_t column = e.where().find("column");
    throw Error::bad_input("<stdin>",
                           line_where(number) + (column == std::string::npos ? "" : ", " + e.where().substr(column)),
                           e.message());
  }
  auto bad = [&](const std::string& message) { return Error::bad_input("<stdin>", line_where(number), message); };
  if (!v.is_object()) throw bad("expected a JSON object {\"text\": ..., \"text_pair\": ...}");
  Texts t;
  bool have_text = false;
  for (const auto& [key, value] : v.as_object()) {
    if (key == "text") {
      if (!value.is_string()) throw bad("\"text\" must be a string");
      t.first = value.as_string();
      have_text = true;
    } else if (key == "text_pair") {
      if (value.is_null()) continue;
      if (!value.is_string()) throw bad("\"text_pair\" must be a string or null");
      t.second = value.as_string();
    } else {
      // Strict, so that a misspelt "text_pair" is an error rather than a silent single text.
      throw bad("unknown key \"" + key + "\" (expected \"text\" and optionally \"text_pair\")");
    }
  }
  if (!have_text) throw bad("missing \"text\"");
  return t;
}

Texts parse_plain(std::string_view line, std::size_t number, bool pair) {
  if (const std::size_t bad = invalid_utf8_at(line); bad != std::string_view::npos) {
    char byte[8];
    std::snprintf(byte, sizeof byte, "0x%02X", static_cast<unsigned>(static_cast<unsigned char>(line[bad])));
    throw Error::bad_input("<stdin>", line_where(number) + ", column " + std::to_string(bad + 1),
                           std::string("invalid UTF-8 (byte ") + byte + ")");
  }
  if (!pair) return {std::string(line), std::nullopt};
  const std::size_t tab = line.find('\t');
  if (tab == std::string_view::npos) {
    throw Error::bad_input("<stdin>", line_where(number), "--pair: no TAB between the two texts");
  }
  return {std::string(line.substr(0, tab)), std::string(line.substr(tab + 1))};
}

void write_encoding(const Encoding& e, std::FILE* out) {
  JsonWriter j;
  j.begin_object();
  j.key("input_ids").begin_array();
  for (std::int32_t id : e.ids) j.value(id);
  j.end_array();
  j.key("token_type_ids").begin_array();
  for (std::int32_t t : e.type_ids) j.value(t);
  j.end_array();
  j.key("attention_mask").begin_array();
  for (std::int32_t m : e.attention_mask) j.value(m);
  j.end_array();
  j.key("offsets").begin_array();
  for (const auto& [start, end] : e.offsets) {
    j.begin_array().value(static_cast<std::uint64_t>(start)).value(static_cast<std::uint64_t>(end)).end_array();
  }
  j.end_array();
  j.key("tokens").begin_array();
  for (const std::string& t : e.tokens) j.value(t);
  j.end_array();
  j.end_object();
  const std::string& s = j.str();
  std::fwrite(s.data(), 1, s.size(), out);
  std::fputc('\n', out);
}

}  // namespace

int run_tokenize(const std::vector<std::string_view>& args) {
  const std::optional<Settings> settings = parse_args(args);
  if (!settings) return 0;
  const Tokenizer tok = Tokenizer::from_file(settings->vocab, settings->tokenizer);

  // Lines are split by hand rather than with fgets or getline: a line may hold NUL bytes,
  // which the tokenizer deletes like any other control character.
  std::string buffer;        // unread input; buffer[start..] is not yet consumed
  std::size_t start = 0;
  std::size_t scanned = 0;   // no '\n' in buffer[start..scanned): long lines are scanned once
  std::size_t line_number = 0;
  bool eof = false;
  char chunk[1 << 16];
  while (true) {
    std::size_t newline = buffer.find('\n', scanned);
    if (newline == std::string::npos && !eof) {
      buffer.erase(0, start);
      start = 0;
      scanned = buffer.size();
      const std::size_t got = std::fread(chunk, 1, sizeof chunk, stdin);
      if (got == 0) {
        if (std::ferror(stdin)) throw Error::bad_input("<stdin>", "", "read error");
        eof = true;
      }
      buffer.append(chunk, got);
      continue;
    }
    if (newline == std::string::npos) {
      if (start == buffer.size()) break;  // input ended with a newline, or was empty
      newline = buffer.size();            // a last line without one
    }
    std::string_view line(buffer.data() + start, newline - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    ++line_number;

    const Texts texts = settings->jsonl ? parse_jsonl(line, line_number)
                                        : parse_plain(line, line_number, settings->pair);
    Encoding e;
    try {
      e = texts.second ? tok.encode_pair(texts.first, *texts.second, settings->encode)
                       : tok.encode(texts.first, settings->encode);
    } catch (const Error& err) {
      const std::string inner = err.where().empty() ? err.message() : err.where() + ": " + err.message();
      throw Error(err.kind(), "<stdin>", line_where(line_number), inner);
    }
    write_encoding(e, stdout);
    start = scanned = std::min(newline + 1, buffer.size());
  }
  if (std::fflush(stdout) != 0) throw Error::bad_input("<stdout>", "", "write error");
  return 0;
}

}  // namespace kiln::cli
