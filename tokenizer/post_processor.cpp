#include "tokenizer/post_processor.hpp"

#include <algorithm>

#include "kiln/error.hpp"

namespace kiln::tokenizer {

std::size_t Template::special_count() const {
  std::size_t n = 0;
  for (const TemplatePiece& p : pieces) {
    if (p.sequence < 0) n += p.ids.size();
  }
  return n;
}

void truncate(const PostProcessor& post, SequenceTokens& a, SequenceTokens* b, std::size_t max_length,
              Truncation strategy, bool add_special_tokens) {
  // The reference reserves room for the special tokens, and skips truncation altogether
  // when max_length is smaller than their number.
  if (add_special_tokens) {
    const std::size_t specials = (b ? post.pair : post.single).special_count();
    if (specials > 0) {
      if (max_length < specials) return;
      max_length -= specials;
    }
  }
  if (max_length == 0) {
    a.truncate(0);
    if (b) b->truncate(0);
    return;
  }
  const std::size_t total = a.size() + (b ? b->size() : 0);
  if (total <= max_length) return;
  const std::size_t to_remove = total - max_length;

  if (strategy == Truncation::longest_first) {
    if (!b) {
      a.truncate(max_length);
      return;
    }
    // Not token by token: the shorter text keeps its length if the longer can take the
    // rest; otherwise each gets half, the longer (the second on a tie) the odd token.
    std::size_t n1 = a.size();
    std::size_t n2 = b->size();
    const bool swap = n1 > n2;
    if (swap) std::swap(n1, n2);
    if (n1 > max_length) {
      n2 = n1;
    } else {
      n2 = std::max(n1, max_length - n1);
    }
    if (n1 + n2 > max_length) {
      n1 = max_length / 2;
      n2 = n1 + max_length % 2;
    }
    if (swap) std::swap(n1, n2);
    a.truncate(n1);
    b->truncate(n2);
    return;
  }

  SequenceTokens* target = &a;
  if (strategy == Truncation::only_second) {
    if (!b) {
      throw Error::bad_input("", "", "truncation only_second needs a second text (the encoding has " +
                                         std::to_string(total) + " tokens, over max_length)");
    }
    target = b;
  }
  if (target->size() <= to_remove) {
    throw Error::bad_input("", "", std::string("truncation ") +
                                       (strategy == Truncation::only_first ? "only_first" : "only_second") +
                                       ": the " + (target == &a ? "first" : "second") + " text has " +
                                       std::to_string(target->size()) + " tokens, too few to remove the " +
                                       std::to_string(to_remove) + " over max_length");
  }
  target->truncate(target->size() - to_remove);
}

Encoding assemble(const PostProcessor& post, SequenceTokens&& a, SequenceTokens* b, bool add_special_tokens) {
  const Template& t = b ? post.pair : post.single;
  Encoding e;
  std::size_t n = a.size() + (b ? b->size() : 0);
  if (add_special_tokens) n += t.special_count();
  e.ids.reserve(n);
  e.type_ids.reserve(n);
  e.attention_mask.reserve(n);
  e.offsets.reserve(n);
  e.tokens.reserve(n);
  e.sequence_ids.reserve(n);
  e.word_ids.reserve(n);
  for (const TemplatePiece& p : t.pieces) {
    if (p.sequence < 0) {
      if (!add_special_tokens) continue;
      for (std::size_t i = 0; i < p.ids.size(); ++i) {
        e.ids.push_back(p.ids[i]);
        e.type_ids.push_back(p.type_id);
        e.attention_mask.push_back(1);
        e.offsets.emplace_back(0, 0);
        e.tokens.push_back(p.tokens[i]);
        e.sequence_ids.push_back(-1);
        e.word_ids.push_back(-1);
      }
      continue;
    }
    SequenceTokens& s = p.sequence == 0 ? a : *b;
    e.ids.insert(e.ids.end(), s.ids.begin(), s.ids.end());
    e.type_ids.insert(e.type_ids.end(), s.size(), p.type_id);
    e.attention_mask.insert(e.attention_mask.end(), s.size(), 1);
    e.offsets.insert(e.offsets.end(), s.offsets.begin(), s.offsets.end());
    e.tokens.insert(e.tokens.end(), std::make_move_iterator(s.tokens.begin()), std::make_move_iterator(s.tokens.end()));
    e.sequence_ids.insert(e.sequence_ids.end(), s.size(), static_cast<std::int8_t>(p.sequence));
    e.word_ids.insert(e.word_ids.end(), s.words.begin(), s.words.end());
  }
  return e;
}

void pad(Encoding& e, std::size_t length, std::int32_t pad_id, const std::string& pad_token) {
  if (e.ids.size() >= length) return;
  const std::size_t extra = length - e.ids.size();
  e.ids.insert(e.ids.end(), extra, pad_id);
  e.type_ids.insert(e.type_ids.end(), extra, 0);
  e.attention_mask.insert(e.attention_mask.end(), extra, 0);
  e.offsets.insert(e.offsets.end(), extra, {0, 0});
  e.tokens.insert(e.tokens.end(), extra, pad_token);
  e.sequence_ids.insert(e.sequence_ids.end(), extra, -1);
  e.word_ids.insert(e.word_ids.end(), extra, -1);
}

}  // namespace kiln::tokenizer
