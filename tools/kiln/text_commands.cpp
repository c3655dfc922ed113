// `kiln fill-mask`, `kiln classify`, `kiln qa` (tools/kiln/text_commands.hpp).
#include "tools/kiln/text_commands.hpp"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <utility>

#include "kiln/error.hpp"
#include "kiln/text.hpp"
#include "tools/kiln/json_writer.hpp"
#include "tools/kiln/option_reader.hpp"
#include "tools/kiln/progress.hpp"
#include "tools/kiln/text_input.hpp"

namespace kiln::cli {

namespace {

const char* const kCommonOptions =
    "  --vocab FILE        vocab.txt (one token per line) or tokenizer.json of the model\n"
    "  --max-length N      truncate each input to N tokens, [CLS] and [SEP] included\n"
    "  --batch-size N      inputs per model run (default 32); inputs are sorted by length\n"
    "                      so each batch pads only to its longest\n"
    "  --threads N         kernel threads (default 0: every CPU this process may use)\n";

const char* const kFillMaskUsage =
    "usage: kiln fill-mask MODEL --vocab FILE [--top-k K] [--jsonl] [--max-length N]\n"
    "                      [--batch-size N] [--threads N]\n"
    "\n"
    "For each line of stdin, the likeliest tokens for each [MASK] in it, as the Transformers\n"
    "fill-mask pipeline gives them, from a traced ...ForMaskedLM archive. Writes one JSON\n"
    "array per line: one array per [MASK], of {\"score\", \"token\", \"token_str\", \"sequence\"}\n"
    "objects, best first.\n"
    "\n"
    "  --top-k K           candidates per [MASK] (default 5)\n"
    "  --jsonl             each line is a JSON object with a \"text\" string\n";

const char* const kClassifyUsage =
    "usage: kiln classify MODEL --vocab FILE [--labels A,B,...] [--function F] [--jsonl]\n"
    "                     [--max-length N] [--batch-size N] [--threads N]\n"
    "\n"
    "For each line of stdin, the score of every label, as the Transformers text-classification\n"
    "pipeline gives them (top_k=None), from a traced ...ForSequenceClassification archive.\n"
    "Writes one JSON array per line of {\"label\", \"score\"} objects, best first.\n"
    "\n"
    "  --labels A,B,...    the labels' names in the model's order (default LABEL_0, LABEL_1,\n"
    "                      ...: a traced archive does not keep the config's id2label)\n"
    "  --function F        softmax, sigmoid (independent labels) or none (logits); default:\n"
    "                      softmax, or sigmoid for a model with one label\n"
    "  --jsonl             each line is a JSON object with a \"text\" string\n";

const char* const kQaUsage =
    "usage: kiln qa MODEL --vocab FILE [--question Q --context C] [--top-k K]\n"
    "               [--max-length N] [--stride N] [--max-answer-length N] [--batch-size N]\n"
    "               [--threads N]\n"
    "\n"
    "Answers questions from a context, as the Transformers question-answering pipeline does,\n"
    "with a traced ...ForQuestionAnswering archive. With --question and --context, answers\n"
    "that one; otherwise reads JSON lines {\"question\": ..., \"context\": ...} from stdin.\n"
    "Writes one JSON object per question, {\"score\", \"start\", \"end\", \"answer\"} (start and\n"
    "end count Unicode characters of the context), or with --top-k above 1 an array of them,\n"
    "best first.\n"
    "\n"
    "  --top-k K           answers per question (default 1)\n"
    "  --max-length N      tokens per window, question included (default 384); longer\n"
    "                      contexts are split into overlapping windows\n"
    "  --stride N          context tokens shared by neighbouring windows (default 128)\n"
    "  --max-answer-length N\n"
    "                      the longest answer, in tokens (default 15)\n";

// Inputs per round: bounds the memory of the results waiting to be written.
constexpr std::size_t kChunk = 4096;

// Runs `run(begin, end)` over [0, total) in rounds of kChunk, with a progress bar when
// there is more than a couple of batches, and stdin's line numbers in errors.
void in_rounds(std::size_t total, std::size_t batch, const char* unit,
               const std::function<void(std::size_t begin, std::size_t end, Progress& progress)>& run) {
  Progress progress(total, unit, total > 2 * batch);
  for (std::size_t begin = 0; begin < total; begin += kChunk) {
    try {
      run(begin, std::min(total, begin + kChunk), progress);
    } catch (const Error& e) {
      throw at_stdin_line(e, begin + 1);
    }
  }
  if (std::fflush(stdout) != 0) throw Error::bad_input("<stdout>", "", "write error");
}

void write_line(const JsonWriter& json) {
  std::string line = json.str();
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stdout);
}

std::vector<std::string> slice(const std::vector<std::string>& v, std::size_t begin, std::size_t end) {
  return {v.begin() + static_cast<std::ptrdiff_t>(begin), v.begin() + static_cast<std::ptrdiff_t>(end)};
}

}  // namespace

int run_fill_mask(const std::vector<std::string_view>& argv) {
  TextArgs args;
  FillMaskOptions options;
  OptionReader r(argv, "fill-mask");
  while (r.next()) {
    if (r.is("--help") || r.is("-h")) {
      std::printf("%s%s", kFillMaskUsage, kCommonOptions);
      return 0;
    } else if (r.is("--top-k")) {
      options.top_k = static_cast<std::size_t>(r.number(1, 1 << 20));
    } else {
      read_text_arg(r, args, options);
    }
  }
  check_text_args(args, "fill-mask");
  const MaskFiller filler = MaskFiller::load(args.model, args.vocab, options);
  const std::vector<std::string> texts = read_texts(args.jsonl);
  in_rounds(texts.size(), options.batch_size, "texts", [&](std::size_t begin, std::size_t end, Progress& progress) {
    const auto results = filler.fill(slice(texts, begin, end),
                                     [&](std::size_t done, std::size_t) { progress.update(begin + done); });
    for (const auto& masks : results) {
      JsonWriter json;
      json.begin_array();
      for (const std::vector<TokenScore>& candidates : masks) {
        json.begin_array();
        for (const TokenScore& c : candidates) {
          json.begin_object()
              .field("score", c.score)
              .field("token", static_cast<std::int64_t>(c.id))
              .field("token_str", c.token)
              .field("sequence", c.sequence)
              .end_object();
        }
        json.end_array();
      }
      json.end_array();
      write_line(json);
    }
  });
  return 0;
}

int run_classify(const std::vector<std::string_view>& argv) {
  TextArgs args;
  ClassifyOptions options;
  OptionReader r(argv, "classify");
  while (r.next()) {
    if (r.is("--help") || r.is("-h")) {
      std::printf("%s%s", kClassifyUsage, kCommonOptions);
      return 0;
    } else if (r.is("--labels")) {
      const std::string list(r.value());
      options.labels.clear();
      for (std::size_t at = 0;;) {
        const std::size_t comma = list.find(',', at);
        options.labels.push_back(list.substr(at, comma == std::string::npos ? std::string::npos : comma - at));
        if (options.labels.back().empty()) throw r.error("--labels has an empty name in '" + list + "'");
        if (comma == std::string::npos) break;
        at = comma + 1;
      }
    } else if (r.is("--function")) {
      const std::string_view f = r.value();
      if (f == "softmax") options.function = ScoreFunction::softmax;
      else if (f == "sigmoid") options.function = ScoreFunction::sigmoid;
      else if (f == "none") options.function = ScoreFunction::none;
      else throw r.error("--function must be softmax, sigmoid or none, not '" + std::string(f) + "'");
    } else {
      read_text_arg(r, args, options);
    }
  }
  check_text_args(args, "classify");
  const Classifier classifier = Classifier::load(args.model, args.vocab, options);
  const std::vector<std::string> texts = read_texts(args.jsonl);
  in_rounds(texts.size(), options.batch_size, "texts", [&](std::size_t begin, std::size_t end, Progress& progress) {
    const auto results = classifier.classify(slice(texts, begin, end),
                                             [&](std::size_t done, std::size_t) { progress.update(begin + done); });
    for (const std::vector<LabelScore>& labels : results) {
      JsonWriter json;
      json.begin_array();
      for (const LabelScore& l : labels) json.begin_object().field("label", l.label).field("score", l.score).end_object();
      json.end_array();
      write_line(json);
    }
  });
  return 0;
}

int run_qa(const std::vector<std::string_view>& argv) {
  TextArgs args;
  QaOptions options;
  std::optional<std::string> question, context;
  OptionReader r(argv, "qa");
  while (r.next()) {
    if (r.is("--help") || r.is("-h")) {
      std::printf("%s%s", kQaUsage, kCommonOptions);
      return 0;
    } else if (r.is("--question")) {
      question = std::string(r.value());
    } else if (r.is("--context")) {
      context = std::string(r.value());
    } else if (r.is("--top-k")) {
      options.top_k = static_cast<std::size_t>(r.number(1, 1 << 20));
    } else if (r.is("--stride")) {
      options.stride = static_cast<std::size_t>(r.number(0, std::int64_t{1} << 20));
    } else if (r.is("--max-answer-length")) {
      options.max_answer_length = static_cast<std::size_t>(r.number(1, std::int64_t{1} << 20));
    } else if (r.is("--jsonl")) {
      throw r.error("--jsonl is how qa always reads stdin; leave it out");
    } else {
      read_text_arg(r, args, options);
    }
  }
  check_text_args(args, "qa");
  if (question.has_value() != context.has_value()) {
    throw usage_error("qa", question ? "--question needs --context" : "--context needs --question");
  }
  if (options.stride >= options.max_length) {
    throw usage_error("qa", "--stride (" + std::to_string(options.stride) + ") must be less than --max-length (" +
                                std::to_string(options.max_length) + ")");
  }
  const QuestionAnswerer answerer = QuestionAnswerer::load(args.model, args.vocab, options);

  std::vector<std::pair<std::string, std::string>> questions;
  if (question) {
    for (const std::string* s : {&*question, &*context}) {
      try {
        check_utf8(*s, 1);
      } catch (const Error& e) {
        throw Error::bad_input(s == &*question ? "--question" : "--context", "", e.message());
      }
    }
    questions.emplace_back(*question, *context);
  } else {
    const std::vector<std::string> lines = read_stdin_lines();
    for (std::size_t i = 0; i < lines.size(); ++i) {
      std::vector<std::string> f = json_line_fields(lines[i], i + 1, {"question", "context"});
      questions.emplace_back(std::move(f[0]), std::move(f[1]));
    }
  }
  in_rounds(questions.size(), options.batch_size, "questions",
            [&](std::size_t begin, std::size_t end, Progress& progress) {
              const std::vector<std::pair<std::string, std::string>> round(
                  questions.begin() + static_cast<std::ptrdiff_t>(begin),
                  questions.begin() + static_cast<std::ptrdiff_t>(end));
              // The library counts windows; the bar shows the same fraction of questions.
              const auto windows = [&](std::size_t done, std::size_t total) {
                progress.update(begin + done * (end - begin) / std::max<std::size_t>(total, 1));
              };
              for (const std::vector<Answer>& answers : answerer.answer(round, windows)) {
                JsonWriter json;
                if (options.top_k > 1) json.begin_array();
                for (const Answer& a : answers) {
                  json.begin_object()
                      .field("score", a.score)
                      .field("start", static_cast<std::uint64_t>(a.start))
                      .field("end", static_cast<std::uint64_t>(a.end))
                      .field("answer", a.text)
                      .end_object();
                }
                if (options.top_k > 1) json.end_array();
                if (answers.empty() && options.top_k == 1) json.null();
                write_line(json);
              }
            });
  return 0;
}

}  // namespace kiln::cli
