// kiln::Embedder — sentence embeddings from text, as sentence-transformers computes them.
//
// Loads a traced encoder (a BertModel-style archive whose first output is the last hidden
// state [batch, seq, hidden]) and its WordPiece vocabulary, tokenizes texts, runs them in
// batches of similar length and pools each into one vector (mean over the attention mask,
// or the [CLS] token), optionally L2-normalized. Immutable once loaded: one Embedder may
// embed from many threads at once.
//
//   kiln::EmbedOptions o;
//   o.normalize = true;
//   o.max_length = 256;                          // sentence-transformers' max_seq_length
//   kiln::Embedder e = kiln::Embedder::load("minilm_l6.pt", "vocab.txt", o);
//   std::vector<std::vector<float>> v = e.embed({"A man plays guitar.", "Someone plays music."});
//   float cosine = kiln::dot(v[0], v[1]);        // unit vectors: the dot is the cosine
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kiln/kiln.hpp"
#include "kiln/tokenizer.hpp"

namespace kiln {

enum class Pooling {
  mean,  // average of the token vectors where attention_mask is 1 (sentence-transformers)
  cls,   // the first token's vector ([CLS])
};

struct EmbedOptions {
  Pooling pooling = Pooling::mean;
  // Divide each embedding by max(||v||, 1e-12), as torch.nn.functional.normalize does
  // (sentence-transformers' Normalize module).
  bool normalize = false;
  // Truncate each text to this many tokens, [CLS] and [SEP] included. 512 is BERT's
  // position limit; sentence-transformers truncates at the model's max_seq_length (256
  // for all-MiniLM-L6-v2, see its sentence_bert_config.json): pass that to match it on
  // long texts.
  std::size_t max_length = 512;
  // Texts per model run. Texts are sorted by token count, so each batch is padded only to
  // its own longest text; results come back in input order and do not depend on this.
  std::size_t batch_size = 32;
  // Kernel threads per run (0: every CPU the process may use).
  int threads = 0;
  // Lowercasing and accent stripping (unset: the vocabulary file decides, as in
  // kiln::Tokenizer::from_file).
  TokenizerOptions tokenizer;
  // Kernel providers, as LoadOptions::providers.
  std::vector<std::string> providers{"cpu"};
};

// Called after each batch with the texts embedded so far and the total.
using EmbedProgress = std::function<void(std::size_t done, std::size_t total)>;

class Embedder {
 public:
  // Throws kiln::Error (bad_input) for a file kiln cannot read, a model whose first output
  // is not a float32 [batch, seq, hidden] hidden state (e.g. a classification head), an
  // archive whose class is a Hugging Face task head (BertForMaskedLM, ...For...), or a
  // model taking inputs other than input_ids, attention_mask and token_type_ids; (usage)
  // for max_length < 2 or batch_size 0.
  static Embedder load(const std::string& model_path, const std::string& tokenizer_path,
                       const EmbedOptions& options = {});
  // The same from a model and tokenizer already loaded (shared, not copied). Without the
  // file the class is unknown: a first output whose last size is the vocabulary's is
  // refused instead (masked-LM scores).
  static Embedder from(Model model, Tokenizer tokenizer, const EmbedOptions& options = {},
                       const std::string& model_name = "<model>");

  // One embedding per text, in input order. Texts must be UTF-8: invalid UTF-8 is a
  // kiln::Error (bad_input) whose where() is "text N" (from 0), with the byte offset.
  std::vector<std::vector<float>> embed(const std::vector<std::string>& texts,
                                        const EmbedProgress& progress = {}) const;
  std::vector<float> embed(const std::string& text) const;

  // The embedding size (the model's hidden size).
  std::size_t dimension() const;
  const EmbedOptions& options() const;
  const Model& model() const;
  const Tokenizer& tokenizer() const;

  struct Impl;

 private:
  explicit Embedder(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

// Dot product and cosine similarity of two vectors of the same size (usage error when not).
float dot(const std::vector<float>& a, const std::vector<float>& b);
float cosine(const std::vector<float>& a, const std::vector<float>& b);

}  // namespace kiln
