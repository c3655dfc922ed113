// What every text task (include/kiln/text.hpp) shares: checking that an archive is made for
// the task, tokenizing texts with per-text error locations, and running encodings through
// the model in batches of similar length.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kiln/text.hpp"

namespace kiln::text {

// A loaded model with its tokenizer and what a task needs to feed it.
struct TextModel {
  Model model;
  Tokenizer tokenizer;
  std::string name;                  // the model file, for messages
  std::vector<std::string> inputs;   // what the model takes, in forward-argument order
  std::int32_t pad_id = 0;
  std::size_t max_length = 512;
  std::size_t batch_size = 32;
  int threads = 0;
};

// Usage errors for options no task can run with.
void check_options(const TextOptions& options);

// Model::load with the options' providers and threads.
Model load_model(const std::string& path, const TextOptions& options);

// Loads the model and checks it is made for `task` before reading the vocabulary (the
// likelier mistake), then reads the vocabulary.
struct LoadedText {
  Model model;
  Tokenizer tokenizer;
};
LoadedText load_for_task(const std::string& model_path, const std::string& tokenizer_path,
                         const TextOptions& options, TextTask task);

// Checks that the model is made for `wanted` as far as loading can tell, by its class
// (when model_path names the archive) and its outputs' shapes; throws kiln::Error
// (bad_input) naming what the model is and what `command` needs.
void require_task(const Model& model, const std::string& model_path, const std::string& model_name,
                  std::size_t vocab_size, TextTask wanted);

// Checks the options and the model's inputs (only input_ids, attention_mask and
// token_type_ids can be filled).
TextModel make_text_model(Model model, Tokenizer tokenizer, const TextOptions& options, const std::string& name);

// Rewraps an error from encoding input `index` so that where() says which ("text 3").
Error input_error(const Error& e, const std::string& what, std::size_t index);

// Encodes each text (truncated to max_length), naming the text in errors.
std::vector<Encoding> encode_texts(const Tokenizer& tokenizer, const std::vector<std::string>& texts,
                                   std::size_t max_length);

// Called once per batch: the indexes (into the encodings) of its rows, in row order, the
// padded sequence length, and the model's outputs.
using BatchResult =
    std::function<void(const std::vector<std::size_t>& rows, std::size_t seq, const std::vector<Tensor>& outputs)>;

// Runs the encodings shortest first, batch_size at a time, each batch padded to its own
// longest; reports progress after each batch.
void run_batches(const TextModel& m, const std::vector<Encoding>& encodings, const BatchResult& result,
                 const TextProgress& progress = {});

// The float32 output `index` of a batch, checked to have `shape` (-1: any size there);
// throws kiln::Error (bad_input) describing what the model gave instead.
const float* output_data(const TextModel& m, const std::vector<Tensor>& outputs, std::size_t index,
                         const std::vector<std::int64_t>& shape, const char* what);

std::string dims_text(const std::vector<Dim>& dims);
std::string shape_text(const std::vector<std::int64_t>& shape);

}  // namespace kiln::text
