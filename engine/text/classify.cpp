// kiln::Classifier (include/kiln/text.hpp): the Transformers text-classification pipeline
// on a traced ...ForSequenceClassification archive: softmax (or sigmoid) over the logits.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <numeric>
#include <string>
#include <utility>

#include "engine/text/text_model.hpp"
#include "kiln/text.hpp"

namespace kiln {

struct Classifier::Impl {
  text::TextModel text;
  ClassifyOptions options;
  std::size_t labels = 0;  // 0 until known: loading could not tell, the first run does
};

namespace {

// The number of labels when loading could tell it, else 0.
std::size_t fixed_label_count(const Model& model) {
  const std::vector<TensorInfo> outs = model.outputs();
  if (outs.empty() || !outs[0].shape || outs[0].shape->size() != 2) return 0;
  const std::int64_t n = (*outs[0].shape)[1].size;
  return n > 0 ? static_cast<std::size_t>(n) : 0;
}

void check_labels(const std::string& name, const std::vector<std::string>& labels, std::size_t count) {
  if (!labels.empty() && count && labels.size() != count) {
    throw Error::bad_input(name, "",
                           "the model scores " + std::to_string(count) + " labels but " +
                               std::to_string(labels.size()) + " label names were given");
  }
}

Classifier make_classifier(Model model, Tokenizer tokenizer, const ClassifyOptions& options, const std::string& path,
                           const std::string& name) {
  text::check_options(options);
  text::require_task(model, path, name, tokenizer.vocab_size(), TextTask::classification);
  const std::size_t count = fixed_label_count(model);
  check_labels(name, options.labels, count);
  auto impl = std::make_shared<Classifier::Impl>(Classifier::Impl{
      text::make_text_model(std::move(model), std::move(tokenizer), options, name), options, count});
  if (impl->labels == 0) {
    // Loading could not tell the number of labels: one tiny run does.
    impl->labels = Classifier(impl).classify(std::string()).size();
  }
  return Classifier(std::move(impl));
}

std::vector<float> scores_of(const float* logits, std::size_t n, ScoreFunction function) {
  std::vector<float> s(logits, logits + n);
  if (function == ScoreFunction::automatic) function = n == 1 ? ScoreFunction::sigmoid : ScoreFunction::softmax;
  if (function == ScoreFunction::sigmoid) {
    for (float& x : s) x = static_cast<float>(1.0 / (1.0 + std::exp(-static_cast<double>(x))));
  } else if (function == ScoreFunction::softmax) {
    const float max = *std::max_element(s.begin(), s.end());
    double sum = 0;
    for (const float x : s) sum += std::exp(static_cast<double>(x) - max);
    for (float& x : s) x = static_cast<float>(std::exp(static_cast<double>(x) - max) / sum);
  }
  return s;
}

}  // namespace

Classifier Classifier::load(const std::string& model_path, const std::string& tokenizer_path,
                            const ClassifyOptions& options) {
  text::LoadedText t = text::load_for_task(model_path, tokenizer_path, options, TextTask::classification);
  return make_classifier(std::move(t.model), std::move(t.tokenizer), options, model_path, model_path);
}

Classifier Classifier::from(Model model, Tokenizer tokenizer, const ClassifyOptions& options,
                            const std::string& model_name) {
  return make_classifier(std::move(model), std::move(tokenizer), options, "", model_name);
}

std::vector<std::vector<LabelScore>> Classifier::classify(const std::vector<std::string>& texts,
                                                          const TextProgress& progress) const {
  const Impl& m = *impl_;
  const std::vector<Encoding> encodings = text::encode_texts(m.text.tokenizer, texts, m.text.max_length);
  std::vector<std::vector<LabelScore>> out(texts.size());
  text::run_batches(
      m.text, encodings,
      [&](const std::vector<std::size_t>& rows, std::size_t, const std::vector<Tensor>& outputs) {
        const float* base = text::output_data(
            m.text, outputs, 0,
            {static_cast<std::int64_t>(rows.size()), m.labels ? static_cast<std::int64_t>(m.labels) : -1},
            "label scores, float32");
        const std::size_t n = static_cast<std::size_t>(outputs[0].shape()[1]);
        check_labels(m.text.name, m.options.labels, n);
        for (std::size_t j = 0; j < rows.size(); ++j) {
          const std::vector<float> s = scores_of(base + j * n, n, m.options.function);
          std::vector<std::size_t> order(n);
          std::iota(order.begin(), order.end(), std::size_t{0});
          // Best first; equal scores keep the model's order (Python's sort is stable).
          std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return s[a] > s[b]; });
          for (const std::size_t k : order) {
            out[rows[j]].push_back(
                LabelScore{m.options.labels.empty() ? "LABEL_" + std::to_string(k) : m.options.labels[k], s[k]});
          }
        }
      },
      progress);
  return out;
}

std::vector<LabelScore> Classifier::classify(const std::string& text) const {
  return std::move(classify(std::vector<std::string>{text}).at(0));
}

std::size_t Classifier::label_count() const { return impl_->labels; }
const ClassifyOptions& Classifier::options() const { return impl_->options; }
const Model& Classifier::model() const { return impl_->text.model; }
const Tokenizer& Classifier::tokenizer() const { return impl_->text.tokenizer; }

}  // namespace kiln
