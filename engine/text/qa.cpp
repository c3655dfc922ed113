// kiln::QuestionAnswerer (include/kiln/text.hpp): the Transformers question-answering
// pipeline on a traced ...ForQuestionAnswering archive. Its steps, which decide the
// answers and so are followed exactly:
//   - [CLS] question [SEP] context [SEP]; a context that does not fit in max_length is
//     split into windows overlapping by `stride` tokens (the tokenizer's overflow);
//   - per window, softmax over start and end logits of the context tokens and [CLS]
//     (everything else masked to -10000), then [CLS]'s probabilities set to 0;
//   - the 2 * top_k + 10 best spans (start <= end < start + max_answer_length) by
//     P(start) x P(end), widened to whole words of the context;
//   - windows in order, spans best first: a span whose text equals (ignoring case) an
//     answer already found adds its score to it; then the best top_k.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "engine/text/text_model.hpp"
#include "kiln/text.hpp"
#include "tokenizer/unicode.hpp"
#include "tokenizer/utf8.hpp"

namespace kiln {

struct QuestionAnswerer::Impl {
  text::TextModel text;
  QaOptions options;
  std::int32_t cls_id = -1;  // -1: the vocabulary has no [CLS]
};

namespace {

void check_qa_options(const QaOptions& options) {
  text::check_options(options);
  if (options.top_k == 0) throw Error(ErrorKind::usage, "", "", "top_k must be at least 1");
  if (options.max_answer_length == 0) throw Error(ErrorKind::usage, "", "", "max_answer_length must be at least 1");
  if (options.stride >= options.max_length) {
    throw Error(ErrorKind::usage, "", "",
                "stride (" + std::to_string(options.stride) + ") must be less than max_length (" +
                    std::to_string(options.max_length) + ")");
  }
}

QuestionAnswerer make_answerer(Model model, Tokenizer tokenizer, const QaOptions& options, const std::string& path,
                               const std::string& name) {
  check_qa_options(options);
  text::require_task(model, path, name, tokenizer.vocab_size(), TextTask::question_answering);
  const std::int32_t cls = tokenizer.token_to_id("[CLS]").value_or(-1);
  return QuestionAnswerer(std::make_shared<QuestionAnswerer::Impl>(QuestionAnswerer::Impl{
      text::make_text_model(std::move(model), std::move(tokenizer), options, name), options, cls}));
}

// One window of one question: the model's input, and what maps its tokens back.
struct Window {
  std::size_t item = 0;
  Encoding encoding;
};

// The windows of one question and context, as the tokenizer's only_second truncation with
// overflow makes them: the context part of the pair is cut into pieces of the room left
// by the question and the special tokens, each starting `stride` tokens before the end of
// the one before.
void add_windows(const Encoding& full, std::size_t item, const QaOptions& options, std::vector<Window>& windows) {
  const std::size_t n = full.ids.size();
  if (n <= options.max_length) {
    windows.push_back(Window{item, full});
    return;
  }
  std::size_t c0 = n, c1 = n;
  for (std::size_t t = 0; t < n; ++t) {
    if (full.sequence_ids[t] == 1) {
      if (c0 == n) c0 = t;
      c1 = t + 1;
    }
  }
  const std::size_t fixed = n - (c1 - c0);
  if (fixed >= options.max_length || options.max_length - fixed <= options.stride) {
    throw Error::bad_input("", "question " + std::to_string(item),
                           "the question and special tokens take " + std::to_string(fixed) +
                               " tokens, leaving " +
                               std::to_string(fixed < options.max_length ? options.max_length - fixed : 0) +
                               " of max_length " + std::to_string(options.max_length) +
                               " for the context: not more than the stride (" + std::to_string(options.stride) +
                               "); shorten the question or raise max_length");
  }
  const std::size_t room = options.max_length - fixed;
  const auto copy = [&](Encoding& w, std::size_t t) {
    w.ids.push_back(full.ids[t]);
    w.type_ids.push_back(full.type_ids[t]);
    w.attention_mask.push_back(full.attention_mask[t]);
    w.offsets.push_back(full.offsets[t]);
    w.tokens.push_back(full.tokens[t]);
    w.sequence_ids.push_back(full.sequence_ids[t]);
    w.word_ids.push_back(full.word_ids[t]);
  };
  for (std::size_t start = c0;; start += room - options.stride) {
    const std::size_t stop = std::min(start + room, c1);
    Window w{item, {}};
    for (std::size_t t = 0; t < c0; ++t) copy(w.encoding, t);
    for (std::size_t t = start; t < stop; ++t) copy(w.encoding, t);
    for (std::size_t t = c1; t < n; ++t) copy(w.encoding, t);
    windows.push_back(std::move(w));
    if (stop == c1) break;
  }
}

struct Span {
  double score;
  std::size_t start, end;  // code points of the context
};

// The char span of the word token t belongs to, within this window's context tokens
// (Hugging Face's word_to_chars on the window's encoding).
std::pair<std::size_t, std::size_t> word_chars(const Encoding& e, std::size_t t) {
  std::size_t first = t, last = t;
  while (first > 0 && e.sequence_ids[first - 1] == 1 && e.word_ids[first - 1] == e.word_ids[t]) --first;
  while (last + 1 < e.ids.size() && e.sequence_ids[last + 1] == 1 && e.word_ids[last + 1] == e.word_ids[t]) ++last;
  return {e.offsets[first].first, e.offsets[last].second};
}

// The best spans of one window, best first.
std::vector<Span> window_spans(const Encoding& e, const float* start_logits, const float* end_logits,
                               std::int32_t cls_id, const QaOptions& options) {
  const std::size_t n = e.ids.size();
  std::vector<char> allowed(n);
  for (std::size_t t = 0; t < n; ++t) {
    allowed[t] = (e.sequence_ids[t] == 1 || e.ids[t] == cls_id) && e.attention_mask[t] != 0;
  }
  const auto probabilities = [&](const float* logits) {
    float max = -10000.0f;
    for (std::size_t t = 0; t < n; ++t) {
      if (allowed[t]) max = std::max(max, logits[t]);
    }
    std::vector<double> p(n, 0.0);
    double sum = 0;
    for (std::size_t t = 0; t < n; ++t) {
      if (allowed[t]) sum += p[t] = std::exp(static_cast<double>(logits[t]) - max);
    }
    for (double& x : p) x /= sum;
    p[0] = 0.0;  // the pipeline zeroes position 0 ([CLS]) after normalising
    return p;
  };
  const std::vector<double> ps = probabilities(start_logits), pe = probabilities(end_logits);
  std::vector<std::pair<double, std::pair<std::size_t, std::size_t>>> spans;
  for (std::size_t s = 0; s < n; ++s) {
    if (!allowed[s] || e.sequence_ids[s] != 1 || ps[s] <= 0) continue;
    for (std::size_t t = s; t < n && t < s + options.max_answer_length; ++t) {
      if (allowed[t] && e.sequence_ids[t] == 1 && pe[t] > 0) spans.push_back({ps[s] * pe[t], {s, t}});
    }
  }
  const std::size_t keep = std::min(spans.size(), 2 * options.top_k + 10);
  std::partial_sort(spans.begin(), spans.begin() + static_cast<std::ptrdiff_t>(keep), spans.end(),
                    [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<Span> out;
  for (std::size_t k = 0; k < keep; ++k) {
    const auto [s, t] = spans[k].second;
    out.push_back(Span{spans[k].first, word_chars(e, s).first, word_chars(e, t).second});
  }
  return out;
}

std::u32string lower(const std::vector<char32_t>& text, std::size_t begin, std::size_t end) {
  std::u32string s;
  const tokenizer::UnicodeData& u = tokenizer::UnicodeData::get();
  for (std::size_t i = begin; i < end; ++i) u.lowercase(text[i], [&](char32_t c) { s.push_back(c); });
  return s;
}

}  // namespace

QuestionAnswerer QuestionAnswerer::load(const std::string& model_path, const std::string& tokenizer_path,
                                        const QaOptions& options) {
  check_qa_options(options);
  text::LoadedText t = text::load_for_task(model_path, tokenizer_path, options, TextTask::question_answering);
  return make_answerer(std::move(t.model), std::move(t.tokenizer), options, model_path, model_path);
}

QuestionAnswerer QuestionAnswerer::from(Model model, Tokenizer tokenizer, const QaOptions& options,
                                        const std::string& model_name) {
  return make_answerer(std::move(model), std::move(tokenizer), options, "", model_name);
}

std::vector<std::vector<Answer>> QuestionAnswerer::answer(
    const std::vector<std::pair<std::string, std::string>>& questions, const TextProgress& progress) const {
  const Impl& m = *impl_;
  std::vector<std::vector<char32_t>> contexts(questions.size());
  std::vector<Window> windows;
  for (std::size_t i = 0; i < questions.size(); ++i) {
    Encoding full;
    try {
      full = m.text.tokenizer.encode_pair(questions[i].first, questions[i].second);
      tokenizer::decode_utf8(questions[i].second, contexts[i], "context");
    } catch (const Error& e) {
      throw text::input_error(e, "question", i);
    }
    add_windows(full, i, m.options, windows);
  }
  std::vector<Encoding> encodings;
  encodings.reserve(windows.size());
  for (Window& w : windows) encodings.push_back(std::move(w.encoding));

  std::vector<std::vector<Span>> spans(windows.size());
  text::run_batches(
      m.text, encodings,
      [&](const std::vector<std::size_t>& rows, std::size_t seq, const std::vector<Tensor>& outputs) {
        const std::vector<std::int64_t> shape{static_cast<std::int64_t>(rows.size()), static_cast<std::int64_t>(seq)};
        const float* starts = text::output_data(m.text, outputs, 0, shape, "start logits, float32");
        const float* ends = text::output_data(m.text, outputs, 1, shape, "end logits, float32");
        for (std::size_t j = 0; j < rows.size(); ++j) {
          spans[rows[j]] = window_spans(encodings[rows[j]], starts + j * seq, ends + j * seq, m.cls_id, m.options);
        }
      },
      progress);

  std::vector<std::vector<Answer>> out(questions.size());
  std::vector<std::vector<std::u32string>> keys(questions.size());
  std::vector<std::vector<double>> scores(questions.size());
  for (std::size_t w = 0; w < windows.size(); ++w) {
    const std::size_t i = windows[w].item;
    const std::vector<char32_t>& context = contexts[i];
    for (const Span& s : spans[w]) {
      std::u32string key = lower(context, s.start, s.end);
      const auto found = std::find(keys[i].begin(), keys[i].end(), key);
      if (found != keys[i].end()) {
        scores[i][static_cast<std::size_t>(found - keys[i].begin())] += s.score;
        continue;
      }
      keys[i].push_back(std::move(key));
      scores[i].push_back(s.score);
      out[i].push_back(Answer{tokenizer::to_utf8(context.begin() + static_cast<std::ptrdiff_t>(s.start),
                                                 context.begin() + static_cast<std::ptrdiff_t>(s.end)),
                              s.start, s.end, 0.0f});
    }
  }
  for (std::size_t i = 0; i < questions.size(); ++i) {
    std::vector<std::size_t> order(out[i].size());
    for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return scores[i][a] > scores[i][b]; });
    std::vector<Answer> best;
    for (std::size_t k = 0; k < order.size() && k < m.options.top_k; ++k) {
      best.push_back(std::move(out[i][order[k]]));
      best.back().score = static_cast<float>(scores[i][order[k]]);
    }
    out[i] = std::move(best);
  }
  return out;
}

std::vector<Answer> QuestionAnswerer::answer(const std::string& question, const std::string& context) const {
  return std::move(answer({{question, context}}).at(0));
}

const QaOptions& QuestionAnswerer::options() const { return impl_->options; }
const Model& QuestionAnswerer::model() const { return impl_->text.model; }
const Tokenizer& QuestionAnswerer::tokenizer() const { return impl_->text.tokenizer; }

}  // namespace kiln
