// kiln::Embedder (include/kiln/text.hpp): tokenize, batch by length, run, pool, normalize.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <numeric>
#include <string>
#include <utility>

#include "format/archive.hpp"
#include "format/module_tree.hpp"
#include "kiln/text.hpp"

namespace kiln {

struct Embedder::Impl {
  Model model;
  Tokenizer tokenizer;
  EmbedOptions options;
  std::string name;                  // the model file, for messages
  std::vector<std::string> inputs;   // what the model takes, in forward-argument order
  std::int32_t pad_id = 0;
  std::size_t dimension = 0;
};

namespace {

std::string dims_text(const std::vector<Dim>& dims) {
  std::string s = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (i) s += ", ";
    s += dims[i].size >= 0 ? std::to_string(dims[i].size) : dims[i].symbol;
  }
  return s + "]";
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

Error not_an_encoder(const std::string& name, const std::string& has) {
  return Error::bad_input(name, "",
                          "not an encoder: its first output is " + has +
                              ", but embedding needs the last hidden state, float32 [batch, seq, hidden] "
                              "(a BertModel-style archive, not one with a task head)");
}

// Checks what loading could tell about output 0; returns the hidden size when fixed, 0
// when loading could not tell (the first run checks then).
std::size_t check_hidden_state(const Model& model, const std::string& name) {
  const std::vector<TensorInfo> outs = model.outputs();
  if (outs.empty()) throw Error::bad_input(name, "", "not an encoder: the model returns no tensor");
  const TensorInfo& o = outs[0];
  if (o.dtype && *o.dtype != DType::float32) {
    throw not_an_encoder(name, std::string(dtype_name(*o.dtype)) + (o.shape ? " " + dims_text(*o.shape) : ""));
  }
  if (!o.shape) return 0;
  const std::vector<Dim>& d = *o.shape;
  const std::string has = "float32 " + dims_text(d);
  if (d.size() != 3) throw not_an_encoder(name, has);
  // The batch and sequence sizes follow the inputs; a fixed one means a head or a trace
  // that cannot take other sizes.
  if (d[0].size >= 0 || d[1].size >= 0 || d[0].symbol == d[1].symbol) throw not_an_encoder(name, has);
  return d[2].size > 0 ? static_cast<std::size_t>(d[2].size) : 0;
}

// The archive's root class without its module path ("BertForMaskedLM"); "" when it cannot
// be told (the model loaded, so this only reads what loading read already).
std::string root_class(const std::string& path) {
  try {
    const format::Archive archive = format::Archive::open(path);
    const std::string q = format::module_tree(archive).root_class.qualified_name;
    return q.substr(q.rfind('.') + 1);
  } catch (const Error&) {
    return "";
  }
}

// Hugging Face names task heads <Family>For<Task> (BertForMaskedLM, ...): their first
// output is task scores even where its shape is [batch, seq, n] like a hidden state.
void check_not_a_head(const Model& model, const std::string& path) {
  const std::string cls = root_class(path);
  const std::size_t at = cls.find("For");
  if (at == std::string::npos || at == 0) return;
  std::string has = "task scores";
  const std::vector<TensorInfo> outs = model.outputs();
  if (!outs.empty() && outs[0].shape) has += " " + dims_text(*outs[0].shape);
  throw Error::bad_input(path, "",
                         "not an encoder: it is a " + cls + ", whose first output is " + has +
                             ", not the last hidden state; embedding needs the base model (" + cls.substr(0, at) +
                             "Model, as sentence-transformers loads it)");
}

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

}  // namespace

Embedder Embedder::load(const std::string& model_path, const std::string& tokenizer_path, const EmbedOptions& options) {
  if (options.max_length < 2) throw Error(ErrorKind::usage, "", "", "EmbedOptions::max_length must be at least 2 ([CLS] and [SEP])");
  if (options.batch_size == 0) throw Error(ErrorKind::usage, "", "", "EmbedOptions::batch_size must be at least 1");
  LoadOptions load;
  load.providers = options.providers;
  load.threads = options.threads;
  Model model = Model::load(model_path, load);
  // Before reading the vocabulary: the likelier mistake.
  check_hidden_state(model, model_path);
  check_not_a_head(model, model_path);
  Tokenizer tokenizer = Tokenizer::from_file(tokenizer_path, options.tokenizer);
  return from(std::move(model), std::move(tokenizer), options, model_path);
}

Embedder Embedder::from(Model model, Tokenizer tokenizer, const EmbedOptions& options, const std::string& model_name) {
  if (options.max_length < 2) throw Error(ErrorKind::usage, "", "", "EmbedOptions::max_length must be at least 2 ([CLS] and [SEP])");
  if (options.batch_size == 0) throw Error(ErrorKind::usage, "", "", "EmbedOptions::batch_size must be at least 1");
  if (options.threads < 0) throw Error(ErrorKind::usage, "", "", "EmbedOptions::threads must be 0 (every CPU) or more");
  auto impl = std::make_shared<Impl>(Impl{std::move(model), std::move(tokenizer), options, model_name, {}, 0, 0});
  impl->dimension = check_hidden_state(impl->model, model_name);
  if (impl->dimension != 0 && impl->dimension == impl->tokenizer.vocab_size()) {
    // A masked-LM head returns [batch, seq, vocabulary]: scores per token, not states.
    throw Error::bad_input(model_name, "",
                           "not an encoder: its first output is [batch, seq, " + std::to_string(impl->dimension) +
                               "], one score per vocabulary entry (a masked-LM head?), not the last hidden state");
  }
  bool has_ids = false;
  for (const std::string& n : impl->model.input_names()) {
    if (n == "input_ids") {
      has_ids = true;
    } else if (n != "attention_mask" && n != "token_type_ids") {
      std::string all;
      for (const std::string& m : impl->model.input_names()) all += (all.empty() ? "" : ", ") + m;
      throw Error::bad_input(model_name, "",
                             "cannot embed with this model: it takes an input '" + n + "' (inputs: " + all +
                                 "); kiln fills only input_ids, attention_mask and token_type_ids");
    }
    impl->inputs.push_back(n);
  }
  if (!has_ids) throw Error::bad_input(model_name, "", "cannot embed with this model: it takes no input_ids");
  if (const auto pad = impl->tokenizer.token_to_id("[PAD]")) impl->pad_id = *pad;
  if (impl->dimension == 0) {
    // Loading could not tell the hidden size: one tiny run does.
    Embedder probe(impl);
    impl->dimension = probe.embed(std::string()).size();
  }
  return Embedder(std::move(impl));
}

std::vector<std::vector<float>> Embedder::embed(const std::vector<std::string>& texts, const EmbedProgress& progress) const {
  const Impl& m = *impl_;
  EncodeOptions encode;
  encode.max_length = m.options.max_length;
  std::vector<Encoding> encodings(texts.size());
  for (std::size_t i = 0; i < texts.size(); ++i) {
    try {
      encodings[i] = m.tokenizer.encode(texts[i], encode);
    } catch (const Error& e) {
      const std::string inner = e.where().empty() ? e.message() : e.where() + ": " + e.message();
      throw Error(e.kind(), "", "text " + std::to_string(i), inner);
    }
  }
  // Shortest first (stable, so equal lengths keep input order): each batch pads to its
  // own longest text only.
  std::vector<std::size_t> order(texts.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return encodings[a].ids.size() < encodings[b].ids.size(); });

  std::vector<std::vector<float>> out(texts.size());
  RunOptions run;
  run.threads = m.options.threads;
  std::vector<std::int64_t> ids, mask, types;
  for (std::size_t begin = 0; begin < order.size(); begin += m.options.batch_size) {
    const std::size_t end = std::min(order.size(), begin + m.options.batch_size);
    const std::size_t batch = end - begin;
    std::size_t seq = 0;
    for (std::size_t j = begin; j < end; ++j) seq = std::max(seq, encodings[order[j]].ids.size());
    ids.assign(batch * seq, m.pad_id);
    mask.assign(batch * seq, 0);
    types.assign(batch * seq, 0);
    for (std::size_t j = 0; j < batch; ++j) {
      const Encoding& e = encodings[order[begin + j]];
      for (std::size_t t = 0; t < e.ids.size(); ++t) {
        ids[j * seq + t] = e.ids[t];
        mask[j * seq + t] = e.attention_mask[t];
        types[j * seq + t] = e.type_ids[t];
      }
    }
    const std::vector<std::int64_t> shape{static_cast<std::int64_t>(batch), static_cast<std::int64_t>(seq)};
    std::vector<std::pair<std::string, Tensor>> named;
    for (const std::string& n : m.inputs) {
      const std::vector<std::int64_t>& data = n == "input_ids" ? ids : n == "attention_mask" ? mask : types;
      named.emplace_back(n, Tensor::view(DType::int64, shape, data.data()));
    }
    const std::vector<Tensor> result = m.model.run(named, run);
    const Tensor& hidden = result.at(0);
    const auto& hs = hidden.shape();
    if (hidden.dtype() != DType::float32 || hs.size() != 3 || hs[0] != shape[0] || hs[1] != shape[1] || hs[2] <= 0 ||
        (m.dimension && hs[2] != static_cast<std::int64_t>(m.dimension))) {
      throw not_an_encoder(m.name, std::string(dtype_name(hidden.dtype())) + " " + shape_text(hs) + " for inputs " +
                                       shape_text(shape));
    }
    const std::size_t dim = static_cast<std::size_t>(hs[2]);
    const float* base = static_cast<const float*>(hidden.data());
    for (std::size_t j = 0; j < batch; ++j) {
      const std::size_t i = order[begin + j];
      out[i] = pool(base + j * seq * dim, seq, dim, encodings[i].attention_mask, m.options);
    }
    if (progress) progress(end, order.size());
  }
  return out;
}

std::vector<float> Embedder::embed(const std::string& text) const { return std::move(embed(std::vector<std::string>{text}).at(0)); }

std::size_t Embedder::dimension() const { return impl_->dimension; }
const EmbedOptions& Embedder::options() const { return impl_->options; }
const Model& Embedder::model() const { return impl_->model; }
const Tokenizer& Embedder::tokenizer() const { return impl_->tokenizer; }

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
