// kiln::Tokenizer: the public API and the encoding pipeline (added tokens, normalizer,
// pre-tokenizer, WordPiece, then truncation, template and padding).
#include "kiln/tokenizer.hpp"

#include <limits>
#include <string_view>
#include <utility>
#include <span>

#include "format/file_bytes.hpp"
#include "kiln/error.hpp"
#include "tokenizer/impl.hpp"
#include "tokenizer/pre_tokenizer.hpp"
#include "tokenizer/utf8.hpp"

namespace kiln {

using tokenizer::AddedVocabulary;
using tokenizer::NChar;
using tokenizer::SequenceTokens;
using tokenizer::WordPiece;

namespace {

// A tokenizer.json is a JSON object; a vocab.txt is anything else (its first token could
// be "{" only in a vocabulary no BERT uses).
bool looks_like_json(std::string_view bytes) {
  std::size_t i = 0;
  if (bytes.substr(0, 3) == "\xEF\xBB\xBF") i = 3;
  while (i < bytes.size() && (bytes[i] == ' ' || bytes[i] == '\t' || bytes[i] == '\n' || bytes[i] == '\r')) ++i;
  return i < bytes.size() && bytes[i] == '{';
}

std::pair<std::size_t, std::size_t> span_of(const NChar* chars, std::size_t begin, std::size_t end) {
  return {chars[begin].orig, std::size_t{chars[end - 1].orig} + 1};
}

}  // namespace

SequenceTokens Tokenizer::Impl::encode_sequence(std::string_view text, std::string_view which) const {
  SequenceTokens out;
  std::vector<char32_t> cps;
  tokenizer::decode_utf8(text, cps, which);
  // Alignments are 32-bit code point indexes.
  if (cps.size() > std::numeric_limits<std::uint32_t>::max()) {
    throw Error::bad_input("", "", "the " + std::string(which) + " is over 4G code points");
  }
  out.ids.reserve(cps.size() / 3 + 4);
  out.tokens.reserve(cps.size() / 3 + 4);
  out.offsets.reserve(cps.size() / 3 + 4);
  out.words.reserve(cps.size() / 3 + 4);
  // Each added token and each pre-tokenized word is one word, numbered in order, as the
  // reference numbers its splits.
  std::int32_t word = 0;

  std::vector<AddedVocabulary::Split> raw_splits;
  added.split_raw(cps, raw_splits);
  std::vector<NChar> norm;
  std::vector<AddedVocabulary::Split> norm_splits;
  std::vector<WordPiece::Piece> pieces;

  for (const AddedVocabulary::Split& raw : raw_splits) {
    if (raw.token != AddedVocabulary::Split::kText) {
      // The token text is what it matched, stripped whitespace included, as the reference reports it.
      out.ids.push_back(added.tokens()[static_cast<std::size_t>(raw.token)].id);
      out.tokens.push_back(tokenizer::to_utf8(cps.begin() + static_cast<std::ptrdiff_t>(raw.begin),
                                              cps.begin() + static_cast<std::ptrdiff_t>(raw.end)));
      out.offsets.emplace_back(raw.begin, raw.end);
      out.words.push_back(word++);
      continue;
    }
    norm.clear();
    tokenizer::normalize(normalizer, std::span<const char32_t>(cps).subspan(raw.begin, raw.end - raw.begin),
                         static_cast<std::uint32_t>(raw.begin), norm);
    norm_splits.clear();
    added.split_normalized(norm, norm_splits);
    for (const AddedVocabulary::Split& part : norm_splits) {
      if (part.token != AddedVocabulary::Split::kText) {
        out.ids.push_back(added.tokens()[static_cast<std::size_t>(part.token)].id);
        std::string text;
        for (std::size_t i = part.begin; i < part.end; ++i) tokenizer::append_utf8(text, norm[i].cp);
        out.tokens.push_back(std::move(text));
        out.offsets.push_back(span_of(norm.data(), part.begin, part.end));
        out.words.push_back(word++);
        continue;
      }
      const NChar* base = norm.data() + part.begin;
      tokenizer::pre_tokenize(base, part.end - part.begin, [&](std::size_t begin, std::size_t end) {
        pieces.clear();
        const NChar* word_chars = base + begin;
        model.tokenize(word_chars, end - begin, pieces);
        for (const WordPiece::Piece& p : pieces) {
          out.ids.push_back(p.id);
          out.tokens.push_back(model.text(p));
          out.offsets.push_back(span_of(word_chars, p.begin, p.end));
          out.words.push_back(word);
        }
        ++word;
      });
    }
  }
  return out;
}

void Tokenizer::Impl::finish_loading() {
  vocab_size = model.size();
  for (const tokenizer::AddedToken& t : added.tokens()) {
    if (!model.find(t.content)) ++vocab_size;
  }
  if (auto id = added.find(pad_token)) {
    pad_id = *id;
  } else if (auto mid = model.find(pad_token)) {
    pad_id = *mid;
  }
}

Tokenizer Tokenizer::from_file(const std::string& path, TokenizerOptions options) {
  const auto file = format::FileBytes::read(path);
  const auto bytes = file->bytes();
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  if (looks_like_json(text)) return Tokenizer(Impl::from_tokenizer_json(path, text, options));
  return Tokenizer(Impl::from_vocab_txt(path, text, options));
}

namespace {

Encoding post_process(const Tokenizer::Impl& impl, SequenceTokens& a, SequenceTokens* b, const EncodeOptions& options) {
  if (options.max_length) {
    tokenizer::truncate(impl.post, a, b, *options.max_length, options.truncation, options.add_special_tokens);
  }
  Encoding e = tokenizer::assemble(impl.post, std::move(a), b, options.add_special_tokens);
  if (options.pad_to_max_length && options.max_length && e.ids.size() < *options.max_length) {
    if (!impl.pad_id) {
      throw Error::bad_input(impl.source, "", "cannot pad: the vocabulary has no " + impl.pad_token + " token");
    }
    tokenizer::pad(e, *options.max_length, *impl.pad_id, impl.pad_token);
  }
  return e;
}

}  // namespace

Encoding Tokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  SequenceTokens a = impl_->encode_sequence(text, "text");
  return post_process(*impl_, a, nullptr, options);
}

Encoding Tokenizer::encode_pair(std::string_view first, std::string_view second, const EncodeOptions& options) const {
  SequenceTokens a = impl_->encode_sequence(first, "first text");
  SequenceTokens b = impl_->encode_sequence(second, "second text");
  return post_process(*impl_, a, &b, options);
}

std::size_t Tokenizer::vocab_size() const { return impl_->vocab_size; }

std::optional<std::int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (auto id = impl_->added.find(token)) return id;
  return impl_->model.find(token);
}

const std::string& Tokenizer::id_to_token(std::int32_t id) const {
  if (const std::string* t = impl_->added.token(id)) return *t;
  if (const std::string* t = impl_->model.token(id)) return *t;
  throw Error::bad_input(impl_->source, "", "no token has id " + std::to_string(id));
}

namespace {

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  std::string out;
  std::size_t at = 0;
  for (std::size_t hit; (hit = s.find(from, at)) != std::string::npos; at = hit + from.size()) {
    out.append(s, at, hit - at);
    out.append(to);
  }
  if (at == 0) return;
  out.append(s, at, std::string::npos);
  s = std::move(out);
}

}  // namespace

std::string Tokenizer::decode(const std::vector<std::int32_t>& ids, bool skip_special_tokens) const {
  const std::string& prefix = impl_->model.config().continuing_subword_prefix;
  std::string text;
  bool first = true;
  for (const std::int32_t id : ids) {
    if (skip_special_tokens) {
      bool special = false;
      for (const tokenizer::AddedToken& t : impl_->added.tokens()) special = special || (t.special && t.id == id);
      if (special) continue;
    }
    const std::string* token = impl_->added.token(id);
    if (!token) token = impl_->model.token(id);
    if (!token) throw Error(ErrorKind::usage, impl_->source, "", "decode: no token has id " + std::to_string(id));
    // The WordPiece decoder: a continuation joins the word before it (not at the start).
    if (first) {
      text += *token;
    } else if (!prefix.empty() && token->starts_with(prefix)) {
      text.append(*token, prefix.size(), std::string::npos);
    } else {
      text += ' ';
      text += *token;
    }
    first = false;
  }
  // clean_up_tokenization: the spaces a tokenizer put before punctuation and contractions.
  for (const auto& [from, to] : {std::pair<std::string_view, std::string_view>{" .", "."}, {" ?", "?"}, {" !", "!"},
                                 {" ,", ","}, {" ' ", "'"}, {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"},
                                 {" 've", "'ve"}, {" 're", "'re"}}) {
    replace_all(text, from, to);
  }
  return text;
}

bool Tokenizer::lowercase() const { return impl_->normalizer.lowercase; }
bool Tokenizer::strip_accents() const { return impl_->normalizer.strip_accents; }

}  // namespace kiln
