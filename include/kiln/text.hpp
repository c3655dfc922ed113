// kiln's text tasks: text in, answers out, on traced Hugging Face BERT-family archives.
//
// Each task object loads an archive and its WordPiece vocabulary, tokenizes texts, runs
// them in batches of similar length and turns the outputs into answers the way the
// Transformers pipelines and sentence-transformers do: Embedder (sentence embeddings),
// MaskFiller (fill-mask), Classifier (text-classification), QuestionAnswerer
// (question-answering, long contexts split with a stride). Each checks at load that the
// archive is made for its task (detect_task) and is immutable once loaded: one object may
// serve many threads at once.
//
//   kiln::EmbedOptions o;
//   o.normalize = true;
//   o.max_length = 256;                          // sentence-transformers' max_seq_length
//   kiln::Embedder e = kiln::Embedder::load("minilm_l6.pt", "vocab.txt", o);
//   std::vector<std::vector<float>> v = e.embed({"A man plays guitar.", "Someone plays music."});
//   float cosine = kiln::dot(v[0], v[1]);        // unit vectors: the dot is the cosine
//
//   kiln::QuestionAnswerer qa = kiln::QuestionAnswerer::load("qa.pt", "vocab.txt");
//   kiln::Answer a = qa.answer("Where is the cat?", "The cat sleeps on the windowsill.").at(0);
//   // a.text, a.start and a.end (code points in the context), a.score
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kiln/kiln.hpp"
#include "kiln/tokenizer.hpp"

namespace kiln {

// What an archive is made for, from its class (Hugging Face names task heads
// <Family>For<Task>) or, without the file, from its outputs' shapes.
enum class TextTask {
  encoder,                   // BertModel & co: the last hidden state [batch, seq, hidden]
  fill_mask,                 // ...ForMaskedLM: [batch, seq, vocabulary] scores
  classification,            // ...ForSequenceClassification: [batch, labels] logits
  token_classification,      // ...ForTokenClassification: [batch, seq, labels] logits
  question_answering,        // ...ForQuestionAnswering: start and end logits [batch, seq]
  other,                     // a head kiln has no task for, or a module that is not a transformer
};

// "encoder", "fill-mask", "classification", "token-classification", "question-answering",
// "other".
const char* task_name(TextTask task);

// The task of a loaded model. model_path names its archive (the class is read from it);
// empty, or a class that does not say: the outputs' shapes decide, where loading could
// tell them ([batch, seq, vocab_size] is fill-mask, other [batch, seq, n] an encoder), and
// `other` where they cannot tell.
TextTask detect_task(const Model& model, const std::string& model_path = "", std::size_t vocab_size = 0);

// Options every text task takes.
struct TextOptions {
  // Truncate each text to this many tokens, [CLS] and [SEP] included. 512 is BERT's
  // position limit.
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

// Called after each batch with the inputs done so far and the total.
using TextProgress = std::function<void(std::size_t done, std::size_t total)>;
using EmbedProgress = TextProgress;

enum class Pooling {
  mean,  // average of the token vectors where attention_mask is 1 (sentence-transformers)
  cls,   // the first token's vector ([CLS])
};

// sentence-transformers truncates at the model's max_seq_length (256 for
// all-MiniLM-L6-v2, see its sentence_bert_config.json): set max_length to that to match it
// on long texts.
struct EmbedOptions : TextOptions {
  Pooling pooling = Pooling::mean;
  // Divide each embedding by max(||v||, 1e-12), as torch.nn.functional.normalize does
  // (sentence-transformers' Normalize module).
  bool normalize = false;
};

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
  explicit Embedder(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}  // made by load and from

 private:
  std::shared_ptr<const Impl> impl_;
};

// Dot product and cosine similarity of two vectors of the same size (usage error when not).
float dot(const std::vector<float>& a, const std::vector<float>& b);
float cosine(const std::vector<float>& a, const std::vector<float>& b);

// ---------------------------------------------------------------------------------------
// fill-mask

struct TokenScore {
  std::int32_t id = 0;
  std::string token;     // as decode({id}) gives it: "paris", "##ing"
  float score = 0;       // softmax over the vocabulary at the [MASK]
  std::string sequence;  // the text with this token in the [MASK], decoded as the pipeline does
};

struct FillMaskOptions : TextOptions {
  std::size_t top_k = 5;  // candidates per [MASK]
};

class MaskFiller {
 public:
  // Throws kiln::Error (bad_input) for an archive that is not a masked-LM head (its class,
  // or a first output that is not [batch, seq, vocabulary]).
  static MaskFiller load(const std::string& model_path, const std::string& tokenizer_path,
                         const FillMaskOptions& options = {});
  static MaskFiller from(Model model, Tokenizer tokenizer, const FillMaskOptions& options = {},
                         const std::string& model_name = "<model>");

  // For each text, for each [MASK] in it (in order), the top_k tokens, best first, as the
  // Transformers fill-mask pipeline. A text without [MASK] (or whose [MASK]s are all cut
  // off by max_length) is a kiln::Error (bad_input) whose where() is "text N".
  std::vector<std::vector<std::vector<TokenScore>>> fill(const std::vector<std::string>& texts,
                                                         const TextProgress& progress = {}) const;
  std::vector<std::vector<TokenScore>> fill(const std::string& text) const;

  const FillMaskOptions& options() const;
  const Model& model() const;
  const Tokenizer& tokenizer() const;

  struct Impl;
  explicit MaskFiller(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}  // made by load and from

 private:
  std::shared_ptr<const Impl> impl_;
};

// ---------------------------------------------------------------------------------------
// classification

struct LabelScore {
  std::string label;
  float score = 0;
};

enum class ScoreFunction {
  automatic,  // softmax, or sigmoid when the model has one label (the pipeline's default)
  softmax,
  sigmoid,    // independent labels (multi-label classification)
  none,       // raw logits
};

struct ClassifyOptions : TextOptions {
  // Names of the labels in the model's order; empty: LABEL_0, LABEL_1, ... (Hugging
  // Face's default id2label). Otherwise there must be one per model output.
  std::vector<std::string> labels;
  ScoreFunction function = ScoreFunction::automatic;
};

class Classifier {
 public:
  // Throws kiln::Error (bad_input) for an archive that is not a sequence-classification
  // head, or labels whose count differs from the model's.
  static Classifier load(const std::string& model_path, const std::string& tokenizer_path,
                         const ClassifyOptions& options = {});
  static Classifier from(Model model, Tokenizer tokenizer, const ClassifyOptions& options = {},
                         const std::string& model_name = "<model>");

  // For each text, every label with its score, best first (the pipeline with top_k=None).
  std::vector<std::vector<LabelScore>> classify(const std::vector<std::string>& texts,
                                                const TextProgress& progress = {}) const;
  std::vector<LabelScore> classify(const std::string& text) const;

  std::size_t label_count() const;
  const ClassifyOptions& options() const;
  const Model& model() const;
  const Tokenizer& tokenizer() const;

  struct Impl;
  explicit Classifier(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}  // made by load and from

 private:
  std::shared_ptr<const Impl> impl_;
};

// ---------------------------------------------------------------------------------------
// question answering

struct Answer {
  std::string text;        // the context's characters [start, end)
  std::size_t start = 0;   // Unicode code points into the context
  std::size_t end = 0;
  float score = 0;         // P(start) x P(end), summed over windows giving the same text
};

struct QaOptions : TextOptions {
  QaOptions() { max_length = 384; }  // the pipeline's max_seq_len
  // Context tokens shared by neighbouring windows when question and context do not fit in
  // max_length (the pipeline's doc_stride).
  std::size_t stride = 128;
  std::size_t max_answer_length = 15;  // tokens
  std::size_t top_k = 1;               // answers per question
};

class QuestionAnswerer {
 public:
  // Throws kiln::Error (bad_input) for an archive that is not a question-answering head.
  static QuestionAnswerer load(const std::string& model_path, const std::string& tokenizer_path,
                               const QaOptions& options = {});
  static QuestionAnswerer from(Model model, Tokenizer tokenizer, const QaOptions& options = {},
                               const std::string& model_name = "<model>");

  // The best answers (up to top_k, best first) to the question in the context, as the
  // Transformers question-answering pipeline finds them: the context is split into windows
  // of max_length tokens (question included) overlapping by `stride` tokens, spans of at
  // most max_answer_length tokens inside the context are scored P(start) x P(end) per
  // window, widened to whole words, and equal answers (ignoring case) add their scores.
  // A question too long to leave room for the context is a kiln::Error (bad_input).
  std::vector<Answer> answer(const std::string& question, const std::string& context) const;
  // Many questions, each with its own context; windows of all of them are batched (the
  // progress counts windows).
  std::vector<std::vector<Answer>> answer(const std::vector<std::pair<std::string, std::string>>& questions,
                                          const TextProgress& progress = {}) const;

  const QaOptions& options() const;
  const Model& model() const;
  const Tokenizer& tokenizer() const;

  struct Impl;
  explicit QuestionAnswerer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}  // made by load and from

 private:
  std::shared_ptr<const Impl> impl_;
};

}  // namespace kiln
