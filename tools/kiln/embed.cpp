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

#include "kiln/error.hpp"
#include "kiln/text.hpp"
#include "tools/kiln/option_reader.hpp"
#include "tools/kiln/progress.hpp"
#include "tools/kiln/text_input.hpp"

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

struct Settings {
  TextArgs args;
  EmbedOptions embed;
};

// Returns the settings, or nullopt when --help was asked for (and printed).
std::optional<Settings> parse_args(const std::vector<std::string_view>& args) {
  Settings s;
  OptionReader r(args, "embed");
  while (r.next()) {
    if (r.is("--help") || r.is("-h")) {
      std::fputs(kEmbedUsage, stdout);
      return std::nullopt;
    } else if (r.is("--pooling")) {
      const std::string_view v = r.value();
      if (v == "mean") s.embed.pooling = Pooling::mean;
      else if (v == "cls") s.embed.pooling = Pooling::cls;
      else throw r.error("--pooling must be mean or cls, not '" + std::string(v) + "'");
    } else if (r.is("--normalize")) {
      r.flag();
      s.embed.normalize = true;
    } else {
      read_text_arg(r, s.args, s.embed);
    }
  }
  check_text_args(s.args, "embed");
  return s;
}

void write_embedding(const std::vector<float>& v, std::string& line) {
  line.clear();
  line += '[';
  for (std::size_t k = 0; k < v.size(); ++k) {
    if (k) line += ',';
    line += json_float(v[k]);
  }
  line += "]\n";
  std::fwrite(line.data(), 1, line.size(), stdout);
}

}  // namespace

int run_embed(const std::vector<std::string_view>& args) {
  const std::optional<Settings> settings = parse_args(args);
  if (!settings) return 0;
  const Embedder embedder = Embedder::load(settings->args.model, settings->args.vocab, settings->embed);
  const std::vector<std::string> texts = read_texts(settings->args.jsonl);

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
      throw at_stdin_line(e, begin + 1);
    }
    for (const std::vector<float>& v : vectors) write_embedding(v, line);
  }
  if (std::fflush(stdout) != 0) throw Error::bad_input("<stdout>", "", "write error");
  return 0;
}

}  // namespace kiln::cli
