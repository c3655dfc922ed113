#include "tokenizer/normalizer.hpp"

#include <algorithm>

#include "tokenizer/unicode.hpp"

namespace kiln::tokenizer {

namespace {

using tables::kChinese;
using tables::kControl;
using tables::kNonspacingMark;
using tables::kNormalizerSpace;

// The last two steps, lowercasing and appending; every piece of a lowercase expansion
// keeps the alignment of the character it came from.
struct Sink {
  const UnicodeData& u;
  bool lowercase;
  std::vector<NChar>& out;

  void put(char32_t cp, std::uint32_t orig, std::uint16_t flags) const {
    if (lowercase && (flags & kLowerChanges)) {
      u.lowercase(cp, [&](char32_t c) { out.push_back({c, orig}); });
    } else {
      out.push_back({cp, orig});
    }
  }
};

// NFD followed by deleting nonspacing marks.
//
// NFD sorts each run of combining marks by combining class, across character boundaries.
// The reference then re-aligns by position: the k-th character that starts a
// decomposition takes the alignment of the k-th original character of the run, and each
// further piece of a decomposition takes the alignment of the character consumed just
// before it. Only when sorting moved something does that differ from "each piece keeps
// its source", so only then is it recomputed.
class StripAccents {
 public:
  explicit StripAccents(const Sink& sink) : sink_(sink), u_(sink.u) {}

  void feed(char32_t cp, std::uint32_t orig) {
    const std::uint16_t f = u_.flags(cp);
    if (!(f & (kDecomposes | kCombining))) {
      // A starter that stays itself: it closes any pending run and needs no buffering.
      if (!run_.empty()) flush();
      last_consumed_ = orig;
      if (!(f & kNonspacingMark)) sink_.put(cp, orig, f);
      return;
    }
    bool first = true;
    u_.decompose(cp, [&](char32_t d) {
      const std::uint8_t ccc = u_.combining_class(d);
      if (ccc == 0 && !run_.empty()) flush();
      run_.push_back({d, orig, ccc, !first});
      first = false;
    });
  }

  void finish() {
    if (!run_.empty()) flush();
  }

 private:
  struct Item {
    char32_t cp;
    std::uint32_t orig;
    std::uint8_t ccc;
    bool inserted;  // not the first piece of its character's decomposition
  };

  void flush() {
    const bool sorted = std::is_sorted(run_.begin(), run_.end(),
                                       [](const Item& a, const Item& b) { return a.ccc < b.ccc; });
    if (!sorted) {
      consumed_.clear();
      for (const Item& it : run_) {
        if (!it.inserted) consumed_.push_back(it.orig);
      }
      std::stable_sort(run_.begin(), run_.end(), [](const Item& a, const Item& b) { return a.ccc < b.ccc; });
      std::size_t k = 0;
      for (Item& it : run_) {
        if (!it.inserted) last_consumed_ = consumed_[k++];
        it.orig = last_consumed_;
      }
    } else {
      for (const Item& it : run_) {
        if (!it.inserted) last_consumed_ = it.orig;
      }
    }
    for (const Item& it : run_) {
      const std::uint16_t f = u_.flags(it.cp);
      if (!(f & kNonspacingMark)) sink_.put(it.cp, it.orig, f);
    }
    run_.clear();
  }

  const Sink& sink_;
  const UnicodeData& u_;
  std::vector<Item> run_;
  std::vector<std::uint32_t> consumed_;
  std::uint32_t last_consumed_ = 0;
};

}  // namespace

void normalize(const NormalizerConfig& config, std::span<const char32_t> text, std::uint32_t first_orig,
               std::vector<NChar>& out) {
  const UnicodeData& u = UnicodeData::get();
  const Sink sink{u, config.lowercase, out};
  out.reserve(out.size() + text.size());

  if (!config.strip_accents) {
    for (std::size_t i = 0; i < text.size(); ++i) {
      char32_t cp = text[i];
      const auto orig = static_cast<std::uint32_t>(first_orig + i);
      std::uint16_t f = u.flags(cp);
      if (config.clean_text) {
        if (f & kControl) continue;
        if (f & kNormalizerSpace) {
          cp = U' ';
          f = u.flags(cp);
        }
      }
      if (config.handle_chinese_chars && (f & kChinese)) {
        out.push_back({U' ', orig});
        sink.put(cp, orig, f);
        out.push_back({U' ', orig});
        continue;
      }
      sink.put(cp, orig, f);
    }
    return;
  }

  StripAccents strip(sink);
  for (std::size_t i = 0; i < text.size(); ++i) {
    char32_t cp = text[i];
    const auto orig = static_cast<std::uint32_t>(first_orig + i);
    const std::uint16_t f = u.flags(cp);
    if (config.clean_text) {
      if (f & kControl) continue;
      if (f & kNormalizerSpace) cp = U' ';
    }
    if (config.handle_chinese_chars && (f & kChinese)) {
      strip.feed(U' ', orig);
      strip.feed(cp, orig);
      strip.feed(U' ', orig);
      continue;
    }
    strip.feed(cp, orig);
  }
  strip.finish();
}

}  // namespace kiln::tokenizer
