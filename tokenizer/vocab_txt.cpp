// Loading a vocab.txt (one token per line, id = line number) the way the reference's
// BertWordPieceTokenizer(vocab_file) does.
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "format/json.hpp"
#include "kiln/error.hpp"
#include "tokenizer/impl.hpp"
#include "tokenizer/loading.hpp"
#include "tokenizer/utf8.hpp"

namespace kiln {

namespace {

struct ConfigFlags {
  std::optional<bool> do_lower_case;
  std::optional<bool> strip_accents;
};

// transformers writes tokenizer_config.json beside vocab.txt; its do_lower_case (and
// strip_accents, when set) say how the vocabulary was made.
ConfigFlags read_tokenizer_config(const std::string& vocab_path) {
  ConfigFlags flags;
  const std::filesystem::path config = std::filesystem::path(vocab_path).parent_path() / "tokenizer_config.json";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(config, ec)) return flags;
  const std::string name = config.string();
  const format::JsonValue json = format::read_json_file(name);
  if (!json.is_object()) throw Error::bad_input(name, "", "expected a JSON object");
  if (const format::JsonValue* v = json.find("do_lower_case"); v && !v->is_null()) {
    if (!v->is_bool()) throw Error::bad_input(name, "do_lower_case", "expected true or false");
    flags.do_lower_case = v->as_bool();
  }
  if (const format::JsonValue* v = json.find("strip_accents"); v && !v->is_null()) {
    if (!v->is_bool()) throw Error::bad_input(name, "strip_accents", "expected true, false or null");
    flags.strip_accents = v->as_bool();
  }
  return flags;
}

}  // namespace

std::shared_ptr<const Tokenizer::Impl> Tokenizer::Impl::from_vocab_txt(const std::string& path, std::string_view bytes,
                                                                       const TokenizerOptions& options) {
  if (bytes.empty()) throw Error::bad_input(path, "", "empty vocabulary: expected one token per line");

  // Each line, without its line ending and trailing whitespace, is the token whose id is
  // the line number; a token seen again takes the later id (as the reference does).
  std::vector<std::pair<std::string, std::int32_t>> entries;
  std::size_t line_start = 0;
  std::size_t line_no = 0;
  while (line_start < bytes.size()) {
    std::size_t line_end = bytes.find('\n', line_start);
    const std::size_t next = line_end == std::string_view::npos ? bytes.size() : line_end + 1;
    if (line_end == std::string_view::npos) line_end = bytes.size();
    const std::string_view line = bytes.substr(line_start, line_end - line_start);
    if (const tokenizer::Utf8Problem bad = tokenizer::find_invalid_utf8(line); bad.offset != std::string_view::npos) {
      throw Error::bad_input(path, "line " + std::to_string(line_no + 1),
                             std::string("invalid UTF-8: ") + bad.reason + " at byte " +
                                 std::to_string(line_start + bad.offset) + " of the file");
    }
    if (line_no >= static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max())) {
      throw Error::bad_input(path, "line " + std::to_string(line_no + 1), "too many lines for 32-bit token ids");
    }
    entries.emplace_back(std::string(tokenizer::trim_end_whitespace(line)), static_cast<std::int32_t>(line_no));
    ++line_no;
    line_start = next;
  }

  auto impl = std::make_shared<Impl>();
  impl->source = path;

  const ConfigFlags config = (options.lowercase && options.strip_accents) ? ConfigFlags{} : read_tokenizer_config(path);
  impl->normalizer.clean_text = true;
  impl->normalizer.handle_chinese_chars = true;
  impl->normalizer.lowercase = options.lowercase.value_or(config.do_lower_case.value_or(true));
  impl->normalizer.strip_accents =
      options.strip_accents.value_or(config.strip_accents.value_or(impl->normalizer.lowercase));

  impl->model = tokenizer::WordPiece(entries, tokenizer::WordPieceConfig{});

  // BertWordPieceTokenizer needs [SEP] and [CLS] for its post-processor, and registers the
  // five BERT specials that the vocabulary has as special added tokens, in this order.
  for (const char* required : {"[SEP]", "[CLS]"}) {
    if (!impl->model.find(required)) {
      throw Error::bad_input(path, "", std::string("the vocabulary has no ") + required + " token");
    }
  }
  std::vector<tokenizer::AddedToken> added;
  for (const char* special : {"[UNK]", "[SEP]", "[CLS]", "[PAD]", "[MASK]"}) {
    if (auto id = impl->model.find(special)) {
      tokenizer::AddedToken t;
      t.content = special;
      t.id = *id;
      t.special = true;
      added.push_back(std::move(t));
    }
  }
  impl->added = tokenizer::AddedVocabulary(std::move(added), impl->normalizer);
  impl->post = tokenizer::bert_post_processor("[CLS]", *impl->model.find("[CLS]"), "[SEP]", *impl->model.find("[SEP]"));
  impl->finish_loading();
  return impl;
}

}  // namespace kiln
