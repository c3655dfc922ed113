// kiln::ir::SymInt — an integer known as a polynomial in the model's input sizes.
//
// Shape inference needs to say more than "unknown" about sizes such as batch*seq*32 or
// seq+1, and to prove two of them equal (a view that keeps the element count) or to find
// what a literal forces a size to be (batch*seq*8 == batch*56 means seq == 7). A SymInt is
// a sum of integer multiples of products of symbols (symbol ids are the ir::Dim ids of the
// inputs' dimensions). Arithmetic that would overflow int64 gives nullopt, never UB.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kiln::ir {

struct SymInt {
  // (sorted symbol ids with repeats, coefficient), sorted by monomial, no zero coefficients.
  using Monomial = std::vector<std::int64_t>;
  std::vector<std::pair<Monomial, std::int64_t>> terms;

  static SymInt of(std::int64_t c);
  static SymInt symbol(std::int64_t id);

  bool is_constant() const { return terms.empty() || (terms.size() == 1 && terms[0].first.empty()); }
  // The value when constant.
  std::optional<std::int64_t> constant() const;
  // The symbol when this is exactly one symbol (coefficient 1, degree 1).
  std::optional<std::int64_t> as_symbol() const;

  bool operator==(const SymInt&) const = default;
};

std::optional<SymInt> add(const SymInt& a, const SymInt& b);
std::optional<SymInt> sub(const SymInt& a, const SymInt& b);
std::optional<SymInt> mul(const SymInt& a, const SymInt& b);
// a / b when b is a single term that divides every term of a exactly; else nullopt.
std::optional<SymInt> exact_div(const SymInt& a, const SymInt& b);

// The value with every symbol bound (`value_of(id)`); nullopt on overflow or an unbound symbol.
std::optional<std::int64_t> evaluate(const SymInt& a, const std::function<std::optional<std::int64_t>(std::int64_t)>& value_of);

// When a == b holds for exactly one value of one symbol (after dividing out factors common
// to every term, which are sizes and so nonzero), that symbol and value: batch*seq*8 ==
// batch*56 gives (seq, 7).
std::optional<std::pair<std::int64_t, std::int64_t>> solve_equal(const SymInt& a, const SymInt& b);

// "batch*seq*32", "seq+1", "7"; symbols by `name_of(id)`.
std::string to_string(const SymInt& a, const std::function<std::string(std::int64_t)>& name_of);

}  // namespace kiln::ir
