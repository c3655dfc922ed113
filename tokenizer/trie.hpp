// A trie over code points with a flat hash table for its edges.
//
// WordPiece wants the longest vocabulary entry that prefixes the rest of a word; walking
// a trie finds it in one pass, where the reference's shrink-and-look-up loop hashes a
// new string per try.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string_view>
#include <vector>

namespace kiln::tokenizer {

class CodePointTrie {
 public:
  static constexpr std::uint32_t kNone = std::numeric_limits<std::uint32_t>::max();
  static constexpr std::int32_t kNoValue = -1;

  CodePointTrie();

  // The node for key, creating the path as needed. Only before freeze().
  std::uint32_t insert(std::u32string_view key);
  void set_value(std::uint32_t node, std::int32_t value) { values_[node] = value; }
  // Builds the lookup table; call once after the last insert. The hot nodes (where most
  // walks start; the root first) get direct arrays for their ASCII children and are
  // renumbered 0, 1, ...: hot[i] becomes node i, other nodes are renumbered too.
  void freeze(const std::vector<std::uint32_t>& hot);

  std::int32_t value(std::uint32_t node) const { return values_[node]; }
  // The child of node along cp, or kNone.
  std::uint32_t step(std::uint32_t node, char32_t cp) const {
    if (cp < 128 && node < dense_.size() / 128) return dense_[node * 128 + cp];
    const std::uint64_t key = make_key(node, cp);
    std::size_t slot = hash(key);
    while (true) {
      const Slot& s = slots_[slot];
      if (s.key == key) return s.child;
      if (s.key == kEmpty) return kNone;
      slot = (slot + 1) & mask_;
    }
  }
  // The node for key, or kNone.
  std::uint32_t find(std::u32string_view key, std::uint32_t from = 0) const;

 private:
  struct Slot {
    std::uint64_t key;
    std::uint32_t child;
  };
  static constexpr std::uint64_t kEmpty = std::numeric_limits<std::uint64_t>::max();

  static std::uint64_t make_key(std::uint32_t node, char32_t cp) { return (std::uint64_t{node} << 21) | cp; }
  std::size_t hash(std::uint64_t key) const {
    return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ULL) >> shift_) & mask_;
  }
  // Rebuilds the table with the given capacity (a power of two), renumbering nodes.
  void rehash(std::size_t capacity, const std::vector<std::uint32_t>* renumber);

  std::vector<std::int32_t> values_;  // per node
  std::vector<Slot> slots_;           // open addressing, linear probing
  std::size_t edges_ = 0;
  std::size_t mask_ = 0;
  unsigned shift_ = 64;
  std::vector<std::uint32_t> dense_;  // 128 ASCII children per hot node
};

}  // namespace kiln::tokenizer
