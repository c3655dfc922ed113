// Task detection, checks and batching shared by the text tasks (engine/text/text_model.hpp).
#include "engine/text/text_model.hpp"

#include <algorithm>
#include <numeric>
#include <utility>

#include "format/archive.hpp"
#include "format/module_tree.hpp"

namespace kiln {

namespace {

struct TaskInfo {
  TextTask task;
  const char* name;
  const char* suffix;  // of the Hugging Face class: BertForMaskedLM
  const char* what;    // in messages: "not <what>"
};

constexpr TaskInfo kTasks[] = {
    {TextTask::encoder, "encoder", "Model", "an encoder"},
    {TextTask::fill_mask, "fill-mask", "ForMaskedLM", "a masked-LM model"},
    {TextTask::classification, "classification", "ForSequenceClassification", "a sequence-classification model"},
    {TextTask::token_classification, "token-classification", "ForTokenClassification",
     "a token-classification model"},
    {TextTask::question_answering, "question-answering", "ForQuestionAnswering", "a question-answering model"},
    {TextTask::other, "other", "", "a model kiln has a text task for"},
};

const TaskInfo& info(TextTask task) {
  for (const TaskInfo& t : kTasks) {
    if (t.task == task) return t;
  }
  return kTasks[std::size(kTasks) - 1];
}

// The archive's root class without its module path ("BertForMaskedLM"); "" when it cannot
// be told (the model loaded, so this only reads what loading read already).
std::string root_class(const std::string& path) {
  if (path.empty()) return "";
  try {
    const format::Archive archive = format::Archive::open(path);
    const std::string q = format::module_tree(archive).root_class.qualified_name;
    return q.substr(q.rfind('.') + 1);
  } catch (const Error&) {
    return "";
  }
}

TextTask task_of_class(const std::string& cls) {
  const std::size_t at = cls.find("For");
  if (at == std::string::npos || at == 0) {
    return cls.size() > 5 && cls.ends_with("Model") ? TextTask::encoder : TextTask::other;
  }
  const std::string suffix = cls.substr(at);
  for (const TaskInfo& t : kTasks) {
    if (suffix == t.suffix) return t.task;
  }
  return TextTask::other;
}

// [batch, seq]-like: the first two sizes follow the inputs (a fixed one means a head or a
// trace that cannot take other sizes).
bool follows_inputs(const std::vector<Dim>& d) {
  return d.size() >= 2 && d[0].size < 0 && d[1].size < 0 && d[0].symbol != d[1].symbol;
}

TextTask task_of_outputs(const Model& model, std::size_t vocab_size) {
  const std::vector<TensorInfo> outs = model.outputs();
  if (outs.empty() || !outs[0].shape) return TextTask::other;
  const std::vector<Dim>& d = *outs[0].shape;
  if (outs.size() >= 2 && outs[1].shape && d.size() == 2 && outs[1].shape->size() == 2 && follows_inputs(d) &&
      follows_inputs(*outs[1].shape)) {
    return TextTask::question_answering;
  }
  if (d.size() == 2 && d[0].size < 0 && d[1].size > 0) return TextTask::classification;
  if (d.size() == 3 && follows_inputs(d) && d[2].size > 0) {
    return vocab_size && static_cast<std::size_t>(d[2].size) == vocab_size ? TextTask::fill_mask : TextTask::encoder;
  }
  return TextTask::other;
}

std::string describe_output(const TensorInfo& o) {
  std::string s = o.dtype ? std::string(dtype_name(*o.dtype)) : std::string("a tensor");
  if (o.shape) {
    s += ' ';
    s += text::dims_text(*o.shape);
  }
  return s;
}

std::string first_output(const Model& model) {
  const std::vector<TensorInfo> outs = model.outputs();
  return outs.empty() ? "nothing" : describe_output(outs[0]);
}

// What the archive must be, named after its family: "BertForMaskedLM", or
// "...ForMaskedLM" when the family is unknown.
std::string needed_class(const std::string& cls, TextTask wanted) {
  const std::size_t at = cls.find("For");
  std::string family = at != std::string::npos && at > 0 ? cls.substr(0, at)
                       : cls.ends_with("Model") && cls.size() > 5 ? cls.substr(0, cls.size() - 5)
                                                                   : "...";
  return family + info(wanted).suffix;
}

Error not_an_encoder(const std::string& name, const std::string& has) {
  return Error::bad_input(name, "",
                          "not an encoder: its first output is " + has +
                              ", but embedding needs the last hidden state, float32 [batch, seq, hidden] "
                              "(a BertModel-style archive, not one with a task head)");
}

// The encoder checks by shape: what loading could tell about output 0.
void check_hidden_state(const Model& model, const std::string& name, std::size_t vocab_size) {
  const std::vector<TensorInfo> outs = model.outputs();
  if (outs.empty()) throw Error::bad_input(name, "", "not an encoder: the model returns no tensor");
  const TensorInfo& o = outs[0];
  if (o.dtype && *o.dtype != DType::float32) throw not_an_encoder(name, describe_output(o));
  if (!o.shape) return;
  const std::vector<Dim>& d = *o.shape;
  if (d.size() != 3 || !follows_inputs(d)) throw not_an_encoder(name, describe_output(o));
  if (vocab_size && d[2].size > 0 && static_cast<std::size_t>(d[2].size) == vocab_size) {
    // A masked-LM head returns [batch, seq, vocabulary]: scores per token, not states.
    throw Error::bad_input(name, "",
                           "not an encoder: its first output is [batch, seq, " + std::to_string(d[2].size) +
                               "], one score per vocabulary entry (a masked-LM head?), not the last hidden state");
  }
}

// The head checks by shape, where loading could tell.
void check_head_outputs(const Model& model, const std::string& name, std::size_t vocab_size, TextTask wanted) {
  const std::vector<TensorInfo> outs = model.outputs();
  const std::string what = info(wanted).what;
  const auto refuse = [&](const std::string& why) {
    throw Error::bad_input(name, "", "not " + what + ": " + why);
  };
  if (outs.empty()) refuse("the model returns no tensor");
  for (std::size_t i = 0; i < outs.size() && i < 2; ++i) {
    if (outs[i].dtype && *outs[i].dtype != DType::float32) {
      refuse("output " + std::to_string(i) + " is " + describe_output(outs[i]) + ", not float32 scores");
    }
  }
  const std::optional<std::vector<Dim>>& d = outs[0].shape;
  if (wanted == TextTask::fill_mask && d) {
    if (d->size() != 3 || !follows_inputs(*d)) {
      refuse("its first output is " + describe_output(outs[0]) + ", not scores [batch, seq, vocabulary]");
    }
    if ((*d)[2].size > 0 && vocab_size && static_cast<std::size_t>((*d)[2].size) != vocab_size) {
      refuse("its scores cover " + std::to_string((*d)[2].size) + " tokens but the vocabulary has " +
             std::to_string(vocab_size) + " (is it the model's vocabulary?)");
    }
  } else if (wanted == TextTask::classification && d) {
    if (d->size() != 2 || (*d)[0].size >= 0) {
      refuse("its first output is " + describe_output(outs[0]) + ", not label scores [batch, labels]");
    }
  } else if (wanted == TextTask::question_answering) {
    if (outs.size() < 2) refuse("it returns " + std::to_string(outs.size()) + " tensor, not start and end logits");
    for (std::size_t i = 0; i < 2; ++i) {
      if (outs[i].shape && (outs[i].shape->size() != 2 || !follows_inputs(*outs[i].shape))) {
        refuse("output " + std::to_string(i) + " is " + describe_output(outs[i]) +
               ", not start or end logits [batch, seq]");
      }
    }
  }
}

}  // namespace

const char* task_name(TextTask task) { return info(task).name; }

TextTask detect_task(const Model& model, const std::string& model_path, std::size_t vocab_size) {
  const std::string cls = root_class(model_path);
  const TextTask by_class = cls.empty() ? TextTask::other : task_of_class(cls);
  return by_class != TextTask::other ? by_class : task_of_outputs(model, vocab_size);
}

namespace text {

void check_options(const TextOptions& options) {
  if (options.max_length < 2) {
    throw Error(ErrorKind::usage, "", "", "max_length must be at least 2 ([CLS] and [SEP])");
  }
  if (options.batch_size == 0) throw Error(ErrorKind::usage, "", "", "batch_size must be at least 1");
  if (options.threads < 0) throw Error(ErrorKind::usage, "", "", "threads must be 0 (every CPU) or more");
}

Model load_model(const std::string& path, const TextOptions& options) {
  check_options(options);
  LoadOptions load;
  load.providers = options.providers;
  load.threads = options.threads;
  return Model::load(path, load);
}

LoadedText load_for_task(const std::string& model_path, const std::string& tokenizer_path,
                         const TextOptions& options, TextTask task) {
  Model model = load_model(model_path, options);
  require_task(model, model_path, model_path, 0, task);
  return LoadedText{std::move(model), Tokenizer::from_file(tokenizer_path, options.tokenizer)};
}

void require_task(const Model& model, const std::string& model_path, const std::string& model_name,
                  std::size_t vocab_size, TextTask wanted) {
  const std::string cls = root_class(model_path);
  const TextTask by_class = cls.empty() ? TextTask::other : task_of_class(cls);
  // Shapes first for an encoder: a head's output shape is the plainer reason.
  if (wanted == TextTask::encoder) check_hidden_state(model, model_name, cls.empty() ? vocab_size : 0);
  if (!cls.empty() && by_class != TextTask::other && by_class != wanted) {
    if (wanted == TextTask::encoder) {
      std::string has = "task scores";
      const std::vector<TensorInfo> outs = model.outputs();
      if (!outs.empty() && outs[0].shape) has += " " + dims_text(*outs[0].shape);
      throw Error::bad_input(model_name, "",
                             "not an encoder: it is a " + cls + ", whose first output is " + has +
                                 ", not the last hidden state; embedding needs the base model (" +
                                 needed_class(cls, TextTask::encoder) + ", as sentence-transformers loads it)");
    }
    const std::string is = by_class == TextTask::encoder ? "an encoder without a task head"
                                                          : std::string("a ") + task_name(by_class) + " head";
    throw Error::bad_input(model_name, "",
                           std::string("not ") + info(wanted).what + ": it is a " + cls + " (" + is +
                               ", first output " + first_output(model) + "); this needs a " +
                               needed_class(cls, wanted) + " archive");
  }
  if (wanted != TextTask::encoder) check_head_outputs(model, model_name, vocab_size, wanted);
}

TextModel make_text_model(Model model, Tokenizer tokenizer, const TextOptions& options, const std::string& name) {
  check_options(options);
  TextModel m{std::move(model), std::move(tokenizer), name, {}, 0, options.max_length, options.batch_size,
              options.threads};
  bool has_ids = false;
  for (const std::string& n : m.model.input_names()) {
    if (n == "input_ids") {
      has_ids = true;
    } else if (n != "attention_mask" && n != "token_type_ids") {
      std::string all;
      for (const std::string& k : m.model.input_names()) all += (all.empty() ? "" : ", ") + k;
      throw Error::bad_input(name, "",
                             "cannot run text through this model: it takes an input '" + n + "' (inputs: " + all +
                                 "); kiln fills only input_ids, attention_mask and token_type_ids");
    }
    m.inputs.push_back(n);
  }
  if (!has_ids) throw Error::bad_input(name, "", "cannot run text through this model: it takes no input_ids");
  if (const auto pad = m.tokenizer.token_to_id("[PAD]")) m.pad_id = *pad;
  return m;
}

Error input_error(const Error& e, const std::string& what, std::size_t index) {
  const std::string inner = e.where().empty() ? e.message() : e.where() + ": " + e.message();
  return Error(e.kind(), "", what + " " + std::to_string(index), inner);
}

std::vector<Encoding> encode_texts(const Tokenizer& tokenizer, const std::vector<std::string>& texts,
                                   std::size_t max_length) {
  EncodeOptions encode;
  encode.max_length = max_length;
  std::vector<Encoding> encodings(texts.size());
  for (std::size_t i = 0; i < texts.size(); ++i) {
    try {
      encodings[i] = tokenizer.encode(texts[i], encode);
    } catch (const Error& e) {
      throw input_error(e, "text", i);
    }
  }
  return encodings;
}

void run_batches(const TextModel& m, const std::vector<Encoding>& encodings, const BatchResult& result,
                 const TextProgress& progress) {
  // Shortest first (stable, so equal lengths keep input order): each batch pads to its
  // own longest only.
  std::vector<std::size_t> order(encodings.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return encodings[a].ids.size() < encodings[b].ids.size(); });
  RunOptions run;
  run.threads = m.threads;
  std::vector<std::int64_t> ids, mask, types;
  std::vector<std::size_t> rows;
  for (std::size_t begin = 0; begin < order.size(); begin += m.batch_size) {
    const std::size_t end = std::min(order.size(), begin + m.batch_size);
    rows.assign(order.begin() + static_cast<std::ptrdiff_t>(begin), order.begin() + static_cast<std::ptrdiff_t>(end));
    std::size_t seq = 0;
    for (const std::size_t r : rows) seq = std::max(seq, encodings[r].ids.size());
    ids.assign(rows.size() * seq, m.pad_id);
    mask.assign(rows.size() * seq, 0);
    types.assign(rows.size() * seq, 0);
    for (std::size_t j = 0; j < rows.size(); ++j) {
      const Encoding& e = encodings[rows[j]];
      for (std::size_t t = 0; t < e.ids.size(); ++t) {
        ids[j * seq + t] = e.ids[t];
        mask[j * seq + t] = e.attention_mask[t];
        types[j * seq + t] = e.type_ids[t];
      }
    }
    const std::vector<std::int64_t> shape{static_cast<std::int64_t>(rows.size()), static_cast<std::int64_t>(seq)};
    std::vector<std::pair<std::string, Tensor>> named;
    for (const std::string& n : m.inputs) {
      const std::vector<std::int64_t>& data = n == "input_ids" ? ids : n == "attention_mask" ? mask : types;
      named.emplace_back(n, Tensor::view(DType::int64, shape, data.data()));
    }
    result(rows, seq, m.model.run(named, run));
    if (progress) progress(end, order.size());
  }
}

const float* output_data(const TextModel& m, const std::vector<Tensor>& outputs, std::size_t index,
                         const std::vector<std::int64_t>& shape, const char* what) {
  bool ok = index < outputs.size() && outputs[index].dtype() == DType::float32 &&
            outputs[index].shape().size() == shape.size();
  for (std::size_t i = 0; ok && i < shape.size(); ++i) {
    ok = shape[i] < 0 ? outputs[index].shape()[i] > 0 : outputs[index].shape()[i] == shape[i];
  }
  if (!ok) {
    const std::string has = index < outputs.size() ? std::string(dtype_name(outputs[index].dtype())) + " " +
                                                         shape_text(outputs[index].shape())
                                                   : "missing";
    throw Error::bad_input(m.name, "",
                           "output " + std::to_string(index) + " is " + has + ", not " + what + " " +
                               shape_text(shape) + " (-1: any size)");
  }
  return static_cast<const float*>(outputs[index].data());
}

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

}  // namespace text
}  // namespace kiln
