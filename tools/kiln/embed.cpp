// `kiln embed MODEL --vocab FILE [options]`: reads one text per stdin line (or JSON lines)
// and writes one embedding per line, a JSON array of floats, in input order.
#include "tools/kiln/embed.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <utility>

#include "format/json.hpp"
#include "format/utf8.hpp"
#include "kiln/error.hpp"
#include "kiln/text.hpp"
#include "tools/kiln/option_reader.hpp"
#include "tools/kiln/progress.hpp"

namespace kiln::cli {

namespace {

const char* const kEmbedUsage =
    "usage: kiln embed MODEL --vocab FILE [--pooling mean|cls] [--normalize] [--jsonl]\n"
    "                  [--max-length N] [--batch-size N] [--threads N]\n"
    "\n"
    "Embeds each line of stdin with a traced encoder (a BertModel-style archive whose first\n"
    "output is the last hidden state) as sentence-transformers does, and writes one JSON\n"
    "array of floats per line to stdout, in input order. Input must be UTF-8; a trailing CR\n"
    "is dropped from each line.\n"
    "\n"
    "  --vocab FILE        vocab.txt (one token per line) or tokenizer.json of the model\n"
    "  --pooling MODE      mean (default: average over the attention mask, as\n"
    "                      sentence-transformers) or cls (the [CLS] token's vector)\n"
    "  --normalize         scale each embedding to unit length (L2), as the Normalize\n"
    "                      module of all-MiniLM-L6-v2 and most sentence-transformers models\n"
    "  --jsonl             each line is a JSON object with a \"text\" string (other keys are\n"
    "                      ignored)\n"
    "  --max-length N      truncate to N tokens, [CLS] and [SEP] included (default 512;\n"
    "                      sentence-transformers uses the model's max_seq_length: 256 for\n"
    "                      all-MiniLM-L6-v2)\n"
    "  --batch-size N      texts per model run (default 32); texts are sorted by length so\n"
    "                      each batch pads only to its longest\n"
    "  --threads N         kernel threads (default 0: every CPU this process may use)\n"
    "\n"
    "A bad line (invalid UTF-8 or JSON, no \"text\") stops the run with exit 1 and\n"
    "'kiln: error: <stdin>:N: ...' before anything is written. A progress bar goes to\n"
    "stderr when it is a terminal.\n";

// Texts embedded per round: bounds the memory of the embeddings waiting to be written.
constexpr std::size_t kChunk = 4096;

Error usage_error(const std::string& message) { return cli::usage_error("embed", message); }

struct Settings {
  std::string model;
  std::string vocab;
  EmbedOptions embed;
  bool jsonl = false;
};

// Returns the settings, or nullopt when --help was asked for (and printed).
std::optional<Settings> parse_args(const std::vector<std::string_view>& args) {
  Settings s;
  OptionReader r(args, "embed");
  while (r.next()) {
    if (r.is("--help") || r.is("-h")) {
      std::fputs(kEmbedUsage, stdout);
      return std::nullopt;
    } else if (r.is("--vocab")) {
      s.vocab = std::string(r.value());
    } else if (r.is("--pooling")) {
      const std::string_view v = r.value();
      if (v == "mean") s.embed.pooling = Pooling::mean;
      else if (v == "cls") s.embed.pooling = Pooling::cls;
      else throw r.error("--pooling must be mean or cls, not '" + std::string(v) + "'");
    } else if (r.is("--normalize")) {
      r.flag();
      s.embed.normalize = true;
    } else if (r.is("--jsonl")) {
      r.flag();
      s.jsonl = true;
    } else if (r.is("--max-length")) {
      s.embed.max_length = static_cast<std::size_t>(r.number(2, std::int64_t{1} << 20));
    } else if (r.is("--batch-size")) {
      s.embed.batch_size = static_cast<std::size_t>(r.number(1, 65536));
    } else if (r.is("--threads")) {
      s.embed.threads = static_cast<int>(r.number(0, 1024));
    } else if (r.is_option() && r.arg().size() > 1) {
      throw r.error("unknown option '" + std::string(r.arg()) + "'");
    } else if (s.model.empty()) {
      s.model = std::string(r.arg());
    } else {
      throw r.error("unexpected argument '" + std::string(r.arg()) + "' (texts come from stdin)");
    }
  }
  if (s.model.empty()) throw usage_error("no MODEL given");
  if (s.vocab.empty()) throw usage_error("no --vocab FILE given");
  return s;
}

Error line_error(std::size_t line, const std::string& message) {
  return Error::bad_input("<stdin>", std::to_string(line), message);
}

void check_utf8(std::string_view line, std::size_t number) {
  for (std::size_t i = 0; i < line.size();) {
    const std::size_t n = format::utf8_sequence_length(line, i);
    if (n == 0) {
      char byte[8];
      std::snprintf(byte, sizeof byte, "0x%02X", static_cast<unsigned>(static_cast<unsigned char>(line[i])));
      throw line_error(number, std::string("invalid UTF-8 (byte ") + byte + " at column " + std::to_string(i + 1) + ")");
    }
    i += n;
  }
}

std::string parse_jsonl(std::string_view line, std::size_t number) {
  format::JsonValue v;
  try {
    v = format::parse_json(line, "<stdin>");
  } catch (const Error& e) {
    // The parser saw one line; keep its column, put the real line number in front.
    const std::size_t column = e.where().find("column");
    throw line_error(number, "bad JSON" + (column == std::string::npos ? "" : " at " + e.where().substr(column)) +
                                 ": " + e.message());
  }
  if (!v.is_object()) throw line_error(number, "expected a JSON object {\"text\": ...}, got " + std::string(format::json_kind_name(v.kind())));
  const format::JsonValue* text = v.find("text");
  if (!text) throw line_error(number, "missing \"text\"");
  if (!text->is_string()) throw line_error(number, "\"text\" must be a string, not " + std::string(format::json_kind_name(text->kind())));
  return text->as_string();
}

// Every line of stdin as a text. Lines are split by hand rather than with getline so
// that a NUL byte is just another (deleted) control character.
std::vector<std::string> read_texts(bool jsonl) {
  std::vector<std::string> texts;
  std::string buffer;
  char chunk[1 << 16];
  while (true) {
    const std::size_t got = std::fread(chunk, 1, sizeof chunk, stdin);
    if (got == 0) {
      if (std::ferror(stdin)) throw Error::bad_input("<stdin>", "", "read error");
      break;
    }
    buffer.append(chunk, got);
  }
  std::size_t start = 0;
  while (start < buffer.size()) {
    std::size_t newline = buffer.find('\n', start);
    if (newline == std::string::npos) newline = buffer.size();  // a last line without one
    std::string_view line(buffer.data() + start, newline - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const std::size_t number = texts.size() + 1;
    if (jsonl) {
      texts.push_back(parse_jsonl(line, number));
    } else {
      check_utf8(line, number);
      texts.emplace_back(line);
    }
    start = newline + 1;
  }
  return texts;
}

void write_embedding(const std::vector<float>& v, std::string& line) {
  line.clear();
  line += '[';
  char buf[32];
  for (std::size_t k = 0; k < v.size(); ++k) {
    if (k) line += ',';
    if (!std::isfinite(v[k])) {
      line += "null";  // JSON has no NaN or infinity
      continue;
    }
    const int n = std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(v[k]));
    line.append(buf, static_cast<std::size_t>(n));
  }
  line += "]\n";
  std::fwrite(line.data(), 1, line.size(), stdout);
}

}  // namespace

int run_embed(const std::vector<std::string_view>& args) {
  const std::optional<Settings> settings = parse_args(args);
  if (!settings) return 0;
  const Embedder embedder = Embedder::load(settings->model, settings->vocab, settings->embed);
  const std::vector<std::string> texts = read_texts(settings->jsonl);

  Progress progress(texts.size(), "texts", texts.size() > 2 * settings->embed.batch_size);
  std::string line;
  std::vector<std::string> chunk;
  for (std::size_t begin = 0; begin < texts.size(); begin += kChunk) {
    const std::size_t end = std::min(texts.size(), begin + kChunk);
    chunk.assign(texts.begin() + static_cast<std::ptrdiff_t>(begin), texts.begin() + static_cast<std::ptrdiff_t>(end));
    std::vector<std::vector<float>> vectors;
    try {
      vectors = embedder.embed(chunk, [&](std::size_t done, std::size_t) { progress.update(begin + done); });
    } catch (const Error& e) {
      // "text N" of this chunk is line begin + N + 1 of stdin.
      if (e.file().empty() && e.where().starts_with("text ")) {
        const std::size_t n = std::stoul(e.where().substr(5));
        throw Error(e.kind(), "<stdin>", std::to_string(begin + n + 1), e.message());
      }
      throw;
    }
    for (const std::vector<float>& v : vectors) write_embedding(v, line);
  }
  if (std::fflush(stdout) != 0) throw Error::bad_input("<stdout>", "", "write error");
  return 0;
}

}  // namespace kiln::cli
