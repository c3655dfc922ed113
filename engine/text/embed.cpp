// kiln::Embedder (include/kiln/text.hpp): tokenize, batch by length, run, pool, normalize.
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

struct Embedder::Impl {
  text::TextModel text;
  EmbedOptions options;
  std::size_t dimension = 0;
};

namespace {

std::vector<float> pool(const float* hidden, std::size_t seq, std::size_t dim, const std::vector<std::int32_t>& mask,
                        const EmbedOptions& options) {
  std::vector<float> v(dim, 0.0f);
  if (options.pooling == Pooling::cls) {
    std::copy(hidden, hidden + dim, v.begin());
  } else {
    // sentence-transformers: sum(hidden * mask) / clamp(sum(mask), min=1e-9).
    std::vector<double> sum(dim, 0.0);
    double count = 0;
    for (std::size_t t = 0; t < seq && t < mask.size(); ++t) {
      if (!mask[t]) continue;
      count += mask[t];
      const float* row = hidden + t * dim;
      for (std::size_t k = 0; k < dim; ++k) sum[k] += static_cast<double>(row[k]) * mask[t];
    }
    const double denom = std::max(count, 1e-9);
    for (std::size_t k = 0; k < dim; ++k) v[k] = static_cast<float>(sum[k] / denom);
  }
  if (options.normalize) {
    // torch.nn.functional.normalize: v / max(||v||_2, eps), eps = 1e-12.
    double norm = 0;
    for (float x : v) norm += static_cast<double>(x) * x;
    const double scale = 1.0 / std::max(std::sqrt(norm), 1e-12);
    for (float& x : v) x = static_cast<float>(x * scale);
  }
  return v;
}

// The hidden size when loading could tell it, else 0 (a first run tells).
std::size_t fixed_hidden_size(const Model& model) {
  const std::vector<TensorInfo> outs = model.outputs();
  if (outs.empty() || !outs[0].shape || outs[0].shape->size() != 3) return 0;
  const std::int64_t d = (*outs[0].shape)[2].size;
  return d > 0 ? static_cast<std::size_t>(d) : 0;
}

Embedder make_embedder(Model model, Tokenizer tokenizer, const EmbedOptions& options, const std::string& path,
                       const std::string& name) {
  text::check_options(options);
  text::require_task(model, path, name, tokenizer.vocab_size(), TextTask::encoder);
  auto impl = std::make_shared<Embedder::Impl>(
      Embedder::Impl{text::make_text_model(std::move(model), std::move(tokenizer), options, name), options, 0});
  impl->dimension = fixed_hidden_size(impl->text.model);
  if (impl->dimension == 0) {
    // Loading could not tell the hidden size: one tiny run does.
    impl->dimension = Embedder(impl).embed(std::string()).size();
  }
  return Embedder(std::move(impl));
}

}  // namespace

Embedder Embedder::load(const std::string& model_path, const std::string& tokenizer_path, const EmbedOptions& options) {
  text::LoadedText t = text::load_for_task(model_path, tokenizer_path, options, TextTask::encoder);
  return make_embedder(std::move(t.model), std::move(t.tokenizer), options, model_path, model_path);
}

Embedder Embedder::from(Model model, Tokenizer tokenizer, const EmbedOptions& options, const std::string& model_name) {
  return make_embedder(std::move(model), std::move(tokenizer), options, "", model_name);
}

std::vector<std::vector<float>> Embedder::embed(const std::vector<std::string>& texts, const EmbedProgress& progress) const {
  const Impl& m = *impl_;
  const std::vector<Encoding> encodings = text::encode_texts(m.text.tokenizer, texts, m.text.max_length);
  std::vector<std::vector<float>> out(texts.size());
  text::run_batches(
      m.text, encodings,
      [&](const std::vector<std::size_t>& rows, std::size_t seq, const std::vector<Tensor>& outputs) {
        const std::int64_t dim = m.dimension ? static_cast<std::int64_t>(m.dimension) : -1;
        const float* base = text::output_data(
            m.text, outputs, 0, {static_cast<std::int64_t>(rows.size()), static_cast<std::int64_t>(seq), dim},
            "the last hidden state, float32");
        const std::size_t d = static_cast<std::size_t>(outputs[0].shape()[2]);
        for (std::size_t j = 0; j < rows.size(); ++j) {
          out[rows[j]] = pool(base + j * seq * d, seq, d, encodings[rows[j]].attention_mask, m.options);
        }
      },
      progress);
  return out;
}

std::vector<float> Embedder::embed(const std::string& text) const { return std::move(embed(std::vector<std::string>{text}).at(0)); }

std::size_t Embedder::dimension() const { return impl_->dimension; }
const EmbedOptions& Embedder::options() const { return impl_->options; }
const Model& Embedder::model() const { return impl_->text.model; }
const Tokenizer& Embedder::tokenizer() const { return impl_->text.tokenizer; }

namespace {

double dot_exact(const std::vector<float>& a, const std::vector<float>& b, const char* what) {
  if (a.size() != b.size()) {
    throw Error(ErrorKind::usage, "", "",
                std::string(what) + ": the vectors differ in size (" + std::to_string(a.size()) + " and " +
                    std::to_string(b.size()) + ")");
  }
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

}  // namespace

float dot(const std::vector<float>& a, const std::vector<float>& b) { return static_cast<float>(dot_exact(a, b, "dot")); }

float cosine(const std::vector<float>& a, const std::vector<float>& b) {
  const double ab = dot_exact(a, b, "cosine"), aa = dot_exact(a, a, "cosine"), bb = dot_exact(b, b, "cosine");
  return static_cast<float>(ab / std::max(std::sqrt(aa) * std::sqrt(bb), 1e-12));
}

}  // namespace kiln
