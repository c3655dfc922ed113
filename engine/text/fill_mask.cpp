// kiln::MaskFiller (include/kiln/text.hpp): the Transformers fill-mask pipeline on a
// traced ...ForMaskedLM archive: softmax over the vocabulary at each [MASK], top k.
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

struct MaskFiller::Impl {
  text::TextModel text;
  FillMaskOptions options;
  std::int32_t mask_id = 0;
  std::size_t vocab_size = 0;
};

namespace {

void check_fill_options(const FillMaskOptions& options) {
  text::check_options(options);
  if (options.top_k == 0) throw Error(ErrorKind::usage, "", "", "top_k must be at least 1");
}

MaskFiller make_filler(Model model, Tokenizer tokenizer, const FillMaskOptions& options, const std::string& path,
                       const std::string& name) {
  check_fill_options(options);
  text::require_task(model, path, name, tokenizer.vocab_size(), TextTask::fill_mask);
  const std::optional<std::int32_t> mask = tokenizer.token_to_id("[MASK]");
  if (!mask) throw Error::bad_input(name, "", "the vocabulary has no [MASK] token: fill-mask needs one");
  const std::size_t vocab = tokenizer.vocab_size();
  return MaskFiller(std::make_shared<MaskFiller::Impl>(MaskFiller::Impl{
      text::make_text_model(std::move(model), std::move(tokenizer), options, name), options, *mask, vocab}));
}

// The top k of softmax(logits), best first; equal scores keep the lower id first.
std::vector<std::pair<std::int32_t, float>> top_tokens(const float* logits, std::size_t n, std::size_t k) {
  float max = logits[0];
  for (std::size_t i = 1; i < n; ++i) max = std::max(max, logits[i]);
  double sum = 0;
  for (std::size_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(logits[i]) - max);
  std::vector<std::int32_t> ids(n);
  std::iota(ids.begin(), ids.end(), 0);
  k = std::min(k, n);
  std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(k), ids.end(),
                    [&](std::int32_t a, std::int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  std::vector<std::pair<std::int32_t, float>> top(k);
  for (std::size_t i = 0; i < k; ++i) {
    top[i] = {ids[i], static_cast<float>(std::exp(static_cast<double>(logits[ids[i]]) - max) / sum)};
  }
  return top;
}

}  // namespace

MaskFiller MaskFiller::load(const std::string& model_path, const std::string& tokenizer_path,
                            const FillMaskOptions& options) {
  check_fill_options(options);
  text::LoadedText t = text::load_for_task(model_path, tokenizer_path, options, TextTask::fill_mask);
  return make_filler(std::move(t.model), std::move(t.tokenizer), options, model_path, model_path);
}

MaskFiller MaskFiller::from(Model model, Tokenizer tokenizer, const FillMaskOptions& options,
                            const std::string& model_name) {
  return make_filler(std::move(model), std::move(tokenizer), options, "", model_name);
}

std::vector<std::vector<std::vector<TokenScore>>> MaskFiller::fill(const std::vector<std::string>& texts,
                                                                   const TextProgress& progress) const {
  const Impl& m = *impl_;
  const std::vector<Encoding> encodings = text::encode_texts(m.text.tokenizer, texts, m.text.max_length);
  std::vector<std::vector<std::size_t>> masks(texts.size());
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const std::vector<std::int32_t>& ids = encodings[i].ids;
    for (std::size_t t = 0; t < ids.size(); ++t) {
      if (ids[t] == m.mask_id) masks[i].push_back(t);
    }
    if (masks[i].empty()) {
      throw Error::bad_input("", "text " + std::to_string(i),
                             "no [MASK] token" + (ids.size() >= m.text.max_length
                                                      ? " in its first " + std::to_string(m.text.max_length) + " tokens"
                                                      : std::string()));
    }
  }
  std::vector<std::vector<std::vector<TokenScore>>> out(texts.size());
  text::run_batches(
      m.text, encodings,
      [&](const std::vector<std::size_t>& rows, std::size_t seq, const std::vector<Tensor>& outputs) {
        const float* base = text::output_data(
            m.text, outputs, 0,
            {static_cast<std::int64_t>(rows.size()), static_cast<std::int64_t>(seq),
             static_cast<std::int64_t>(m.vocab_size)},
            "masked-LM scores, float32");
        for (std::size_t j = 0; j < rows.size(); ++j) {
          const std::size_t i = rows[j];
          const Encoding& e = encodings[i];
          // The pipeline decodes the text with the candidate in place; with several
          // [MASK]s it keeps special tokens so the other [MASK]s stay visible.
          const bool single = masks[i].size() == 1;
          for (const std::size_t at : masks[i]) {
            std::vector<TokenScore> candidates;
            for (const auto& [id, score] : top_tokens(base + (j * seq + at) * m.vocab_size, m.vocab_size,
                                                      m.options.top_k)) {
              std::vector<std::int32_t> filled = e.ids;
              filled[at] = id;
              candidates.push_back(TokenScore{id, m.text.tokenizer.decode({id}, false), score,
                                              m.text.tokenizer.decode(filled, single)});
            }
            out[i].push_back(std::move(candidates));
          }
        }
      },
      progress);
  return out;
}

std::vector<std::vector<TokenScore>> MaskFiller::fill(const std::string& text) const {
  return std::move(fill(std::vector<std::string>{text}).at(0));
}

const FillMaskOptions& MaskFiller::options() const { return impl_->options; }
const Model& MaskFiller::model() const { return impl_->text.model; }
const Tokenizer& MaskFiller::tokenizer() const { return impl_->text.tokenizer; }

}  // namespace kiln
