#include "tokenizer/trie.hpp"

#include <algorithm>
#include <bit>

#include "kiln/error.hpp"

namespace kiln::tokenizer {

CodePointTrie::CodePointTrie() : values_(1, kNoValue) { rehash(1024, nullptr); }

void CodePointTrie::rehash(std::size_t capacity, const std::vector<std::uint32_t>* renumber) {
  std::vector<Slot> old(capacity, Slot{kEmpty, kNone});
  old.swap(slots_);
  mask_ = capacity - 1;
  shift_ = 64 - static_cast<unsigned>(std::countr_zero(capacity));
  for (const Slot& s : old) {
    if (s.key == kEmpty) continue;
    std::uint64_t key = s.key;
    std::uint32_t child = s.child;
    if (renumber) {
      key = make_key((*renumber)[key >> 21], static_cast<char32_t>(key & 0x1FFFFF));
      child = (*renumber)[child];
    }
    std::size_t slot = hash(key);
    while (slots_[slot].key != kEmpty) slot = (slot + 1) & mask_;
    slots_[slot] = Slot{key, child};
  }
}

std::uint32_t CodePointTrie::insert(std::u32string_view key) {
  std::uint32_t node = 0;
  for (const char32_t cp : key) {
    const std::uint64_t k = make_key(node, cp);
    std::size_t slot = hash(k);
    while (slots_[slot].key != kEmpty && slots_[slot].key != k) slot = (slot + 1) & mask_;
    if (slots_[slot].key == k) {
      node = slots_[slot].child;
      continue;
    }
    if (values_.size() >= (std::size_t{1} << 31)) throw Error(ErrorKind::internal, "", "", "trie too large");
    const auto child = static_cast<std::uint32_t>(values_.size());
    values_.push_back(kNoValue);
    slots_[slot] = Slot{k, child};
    node = child;
    // Keep the load under one half so that probes stay short.
    if (++edges_ * 2 > slots_.size()) rehash(slots_.size() * 2, nullptr);
  }
  return node;
}

void CodePointTrie::freeze(const std::vector<std::uint32_t>& hot) {
  const std::size_t n = values_.size();
  std::vector<std::uint32_t> renumber(n, kNone);
  std::uint32_t next = 0;
  for (const std::uint32_t h : hot) {
    if (h < n && renumber[h] == kNone) renumber[h] = next++;
  }
  const std::uint32_t n_hot = next;
  for (std::uint32_t old = 0; old < n; ++old) {
    if (renumber[old] == kNone) renumber[old] = next++;
  }
  std::vector<std::int32_t> values(n);
  for (std::uint32_t old = 0; old < n; ++old) values[renumber[old]] = values_[old];
  values_ = std::move(values);
  rehash(std::bit_ceil(std::max<std::size_t>(edges_ * 2, 16)), &renumber);

  dense_.assign(std::size_t{n_hot} * 128, kNone);
  for (const Slot& s : slots_) {
    if (s.key == kEmpty) continue;
    const auto node = static_cast<std::uint32_t>(s.key >> 21);
    const auto cp = static_cast<char32_t>(s.key & 0x1FFFFF);
    if (node < n_hot && cp < 128) dense_[std::size_t{node} * 128 + cp] = s.child;
  }
}

std::uint32_t CodePointTrie::find(std::u32string_view key, std::uint32_t from) const {
  std::uint32_t node = from;
  for (const char32_t cp : key) {
    node = step(node, cp);
    if (node == kNone) return kNone;
  }
  return node;
}

}  // namespace kiln::tokenizer
