// Loading a Hugging Face tokenizer.json: BertNormalizer, BertPreTokenizer, WordPiece and a
// TemplateProcessing or BertProcessing post-processor. Anything else is refused by name,
// since encoding it as BERT would silently give wrong ids.
#include <limits>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "format/json.hpp"
#include "kiln/error.hpp"
#include "tokenizer/impl.hpp"
#include "tokenizer/loading.hpp"
#include "tokenizer/utf8.hpp"

namespace kiln {

namespace {

using format::JsonValue;

// Ids beyond this are refused: no vocabulary is near it, and the id table is dense.
constexpr std::int64_t kMaxTokenId = std::int64_t{1} << 24;

const char* kind_name(const JsonValue& v) { return format::json_kind_name(v.kind()); }

// Typed access that names the file and the JSON path in its errors.
class Reader {
 public:
  explicit Reader(const std::string& path) : path_(path) {}

  [[noreturn]] void fail(const std::string& where, const std::string& message) const {
    throw Error::bad_input(path_, where, message);
  }

  const JsonValue& object(const JsonValue& v, const std::string& where) const {
    if (!v.is_object()) fail(where, std::string("expected an object, got ") + kind_name(v));
    return v;
  }
  const JsonValue& member(const JsonValue& obj, std::string_view key, const std::string& where) const {
    const JsonValue* v = obj.find(key);
    if (!v) fail(where, "missing \"" + std::string(key) + "\"");
    return *v;
  }
  const std::string& string(const JsonValue& v, const std::string& where) const {
    if (!v.is_string()) fail(where, std::string("expected a string, got ") + kind_name(v));
    return v.as_string();
  }
  bool boolean(const JsonValue& v, const std::string& where) const {
    if (!v.is_bool()) fail(where, std::string("expected true or false, got ") + kind_name(v));
    return v.as_bool();
  }
  std::int64_t integer(const JsonValue& v, const std::string& where, std::int64_t lo, std::int64_t hi) const {
    if (!v.is_number()) fail(where, std::string("expected an integer, got ") + kind_name(v));
    std::int64_t n = 0;
    try {
      n = v.as_int();
    } catch (const Error& e) {
      fail(where, e.message());
    }
    if (n < lo || n > hi) {
      fail(where, std::to_string(n) + " is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    }
    return n;
  }
  // An optional boolean member: absent or null gives fallback.
  std::optional<bool> opt_bool(const JsonValue& obj, std::string_view key, const std::string& where) const {
    const JsonValue* v = obj.find(key);
    if (!v || v->is_null()) return std::nullopt;
    return boolean(*v, where + "." + std::string(key));
  }
  std::string type_of(const JsonValue& component, const std::string& where) const {
    if (component.is_null()) fail(where, "missing (null); kiln supports BERT WordPiece tokenizers only");
    object(component, where);
    const JsonValue* t = component.find("type");
    if (!t) fail(where, "has no \"type\"");
    return string(*t, where + ".type");
  }

 private:
  const std::string& path_;
};

tokenizer::Template read_template(const Reader& r, const JsonValue& pieces, const JsonValue& specials,
                                  const std::string& where, bool pair) {
  if (!pieces.is_array()) r.fail(where, std::string("expected an array, got ") + kind_name(pieces));
  tokenizer::Template t;
  int seen[2] = {0, 0};
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    const std::string at = where + "[" + std::to_string(i) + "]";
    const JsonValue& piece = r.object(pieces.at(i), at);
    if (piece.size() != 1) r.fail(at, "expected one of {\"Sequence\": ...} or {\"SpecialToken\": ...}");
    const auto& [kind, body] = piece.as_object()[0];
    r.object(body, at + "." + kind);
    tokenizer::TemplatePiece p;
    p.type_id = static_cast<std::int32_t>(
        r.integer(r.member(body, "type_id", at + "." + kind), at + "." + kind + ".type_id", 0, 1 << 30));
    const std::string& id = r.string(r.member(body, "id", at + "." + kind), at + "." + kind + ".id");
    if (kind == "Sequence") {
      if (id != "A" && id != "B") r.fail(at + ".Sequence.id", "expected \"A\" or \"B\", got \"" + id + "\"");
      p.sequence = id == "A" ? 0 : 1;
      ++seen[p.sequence];
    } else if (kind == "SpecialToken") {
      const std::string sat = "post_processor.special_tokens." + id;
      const JsonValue* sp = specials.find(id);
      if (!sp) r.fail(at, "special token \"" + id + "\" is not in post_processor.special_tokens");
      r.object(*sp, sat);
      const JsonValue& ids = r.member(*sp, "ids", sat);
      const JsonValue& toks = r.member(*sp, "tokens", sat);
      if (!ids.is_array() || !toks.is_array() || ids.size() != toks.size()) {
        r.fail(sat, "expected arrays \"ids\" and \"tokens\" of equal length");
      }
      for (std::size_t k = 0; k < ids.size(); ++k) {
        p.ids.push_back(static_cast<std::int32_t>(
            r.integer(ids.at(k), sat + ".ids[" + std::to_string(k) + "]", 0, kMaxTokenId - 1)));
        p.tokens.push_back(r.string(toks.at(k), sat + ".tokens[" + std::to_string(k) + "]"));
      }
    } else {
      r.fail(at, "unknown template piece \"" + kind + "\"");
    }
    t.pieces.push_back(std::move(p));
  }
  if (seen[0] != 1 || seen[1] != (pair ? 1 : 0)) {
    r.fail(where, pair ? "a pair template needs $A and $B once each" : "a single template needs $A once and no $B");
  }
  return t;
}

tokenizer::PostProcessor read_post_processor(const Reader& r, const JsonValue& pp) {
  const std::string type = r.type_of(pp, "post_processor");
  if (type == "TemplateProcessing") {
    const JsonValue& specials =
        r.object(r.member(pp, "special_tokens", "post_processor"), "post_processor.special_tokens");
    tokenizer::PostProcessor p;
    p.single = read_template(r, r.member(pp, "single", "post_processor"), specials, "post_processor.single", false);
    p.pair = read_template(r, r.member(pp, "pair", "post_processor"), specials, "post_processor.pair", true);
    return p;
  }
  if (type == "BertProcessing") {
    auto token = [&](const char* key) {
      const std::string at = std::string("post_processor.") + key;
      const JsonValue& v = r.member(pp, key, "post_processor");
      if (!v.is_array() || v.size() != 2) r.fail(at, "expected [token, id]");
      return std::make_pair(r.string(v.at(std::size_t{0}), at + "[0]"),
                            static_cast<std::int32_t>(r.integer(v.at(std::size_t{1}), at + "[1]", 0, kMaxTokenId - 1)));
    };
    const auto [sep, sep_id] = token("sep");
    const auto [cls, cls_id] = token("cls");
    return tokenizer::bert_post_processor(cls, cls_id, sep, sep_id);
  }
  r.fail("post_processor.type", "unsupported post-processor \"" + type +
                                    "\"; kiln supports TemplateProcessing and BertProcessing");
}

}  // namespace

std::shared_ptr<const Tokenizer::Impl> Tokenizer::Impl::from_tokenizer_json(const std::string& path,
                                                                            std::string_view bytes,
                                                                            const TokenizerOptions& options) {
  const JsonValue json = format::parse_json(bytes, path);
  const Reader r(path);
  r.object(json, "");

  // The model first: a file for another model type should be named as such, before any
  // complaint about its normalizer.
  const JsonValue& model = r.object(r.member(json, "model", ""), "model");
  if (const JsonValue* type = model.find("type")) {
    const std::string& model_type = r.string(*type, "model.type");
    if (model_type != "WordPiece") {
      r.fail("model.type", "unsupported model \"" + model_type + "\"; kiln supports WordPiece (BERT) only");
    }
  } else if (model.find("merges") ||
             !(model.find("continuing_subword_prefix") || model.find("max_input_chars_per_word"))) {
    // Older files (the Hub's bert-base-uncased among them) leave out the type; the
    // reference then tells models apart by their fields.
    r.fail("model", "has no \"type\" and does not look like WordPiece; kiln supports WordPiece (BERT) only");
  }
  tokenizer::WordPieceConfig wp;
  if (const JsonValue* v = model.find("unk_token")) wp.unk_token = r.string(*v, "model.unk_token");
  if (const JsonValue* v = model.find("continuing_subword_prefix")) {
    wp.continuing_subword_prefix = r.string(*v, "model.continuing_subword_prefix");
  }
  if (const JsonValue* v = model.find("max_input_chars_per_word")) {
    wp.max_input_chars_per_word = static_cast<std::size_t>(
        r.integer(*v, "model.max_input_chars_per_word", 0, std::numeric_limits<std::int64_t>::max()));
  }
  const JsonValue& vocab = r.object(r.member(model, "vocab", "model"), "model.vocab");
  if (vocab.size() == 0) r.fail("model.vocab", "empty vocabulary");
  std::vector<std::pair<std::string, std::int32_t>> entries;
  entries.reserve(vocab.size());
  for (const auto& [token, id] : vocab.as_object()) {
    entries.emplace_back(token, static_cast<std::int32_t>(r.integer(id, "model.vocab." + token, 0, kMaxTokenId - 1)));
  }

  const JsonValue* normalizer = json.find("normalizer");
  const std::string norm_type = r.type_of(normalizer ? *normalizer : JsonValue(), "normalizer");
  if (norm_type != "BertNormalizer") {
    r.fail("normalizer.type", "unsupported normalizer \"" + norm_type + "\"; kiln supports BertNormalizer only");
  }
  const JsonValue* pre = json.find("pre_tokenizer");
  const std::string pre_type = r.type_of(pre ? *pre : JsonValue(), "pre_tokenizer");
  if (pre_type != "BertPreTokenizer") {
    r.fail("pre_tokenizer.type", "unsupported pre-tokenizer \"" + pre_type + "\"; kiln supports BertPreTokenizer only");
  }
  const JsonValue* pp = json.find("post_processor");

  auto impl = std::make_shared<Impl>();
  impl->source = path;
  impl->post = read_post_processor(r, pp ? *pp : JsonValue());

  impl->normalizer.clean_text = r.opt_bool(*normalizer, "clean_text", "normalizer").value_or(true);
  impl->normalizer.handle_chinese_chars = r.opt_bool(*normalizer, "handle_chinese_chars", "normalizer").value_or(true);
  impl->normalizer.lowercase =
      options.lowercase.value_or(r.opt_bool(*normalizer, "lowercase", "normalizer").value_or(true));
  const std::optional<bool> json_strip = r.opt_bool(*normalizer, "strip_accents", "normalizer");
  impl->normalizer.strip_accents =
      options.strip_accents.value_or(json_strip.value_or(impl->normalizer.lowercase));

  try {
    impl->model = tokenizer::WordPiece(entries, wp);
  } catch (const Error& e) {
    r.fail("model", e.where().empty() ? e.message() : e.where() + ": " + e.message());
  }

  // Added tokens get ids as the reference assigns them on loading (the "id" fields are not
  // consulted): the vocabulary's id when the token is in it, else the next id after the
  // vocabulary and the added tokens so far.
  std::vector<tokenizer::AddedToken> added;
  if (const JsonValue* list = json.find("added_tokens"); list && !list->is_null()) {
    if (!list->is_array()) r.fail("added_tokens", std::string("expected an array, got ") + kind_name(*list));
    const auto model_size = static_cast<std::int64_t>(impl->model.size());
    std::optional<std::int64_t> max_added;
    std::unordered_map<std::string, std::int32_t> ids;  // of the added tokens so far
    for (std::size_t i = 0; i < list->size(); ++i) {
      const std::string at = "added_tokens[" + std::to_string(i) + "]";
      const JsonValue& entry = r.object(list->at(i), at);
      tokenizer::AddedToken t;
      t.content = r.string(r.member(entry, "content", at), at + ".content");
      t.special = r.opt_bool(entry, "special", at).value_or(false);
      t.single_word = r.opt_bool(entry, "single_word", at).value_or(false);
      t.lstrip = r.opt_bool(entry, "lstrip", at).value_or(false);
      t.rstrip = r.opt_bool(entry, "rstrip", at).value_or(false);
      t.normalized = r.opt_bool(entry, "normalized", at).value_or(!t.special);
      if (t.content.empty()) continue;
      if (tokenizer::find_invalid_utf8(t.content).offset != std::string_view::npos) {
        r.fail(at + ".content", "invalid UTF-8");
      }
      std::int64_t id;
      if (auto in_vocab = impl->model.find(t.content)) {
        id = *in_vocab;
      } else if (const auto again = ids.find(t.content); again != ids.end()) {
        id = again->second;
      } else {
        id = !max_added ? model_size : (*max_added >= model_size ? *max_added + 1 : model_size);
        if (id >= kMaxTokenId) r.fail(at, "too many added tokens");
      }
      max_added = max_added ? std::max(*max_added, id) : id;
      t.id = static_cast<std::int32_t>(id);
      ids.emplace(t.content, t.id);
      added.push_back(std::move(t));
    }
  }
  impl->added = tokenizer::AddedVocabulary(std::move(added), impl->normalizer);
  impl->finish_loading();
  return impl;
}

}  // namespace kiln
