#include "engine/ir/sym_int.hpp"

#include <algorithm>
#include <map>

namespace kiln::ir {
namespace {

using Terms = std::map<SymInt::Monomial, std::int64_t>;

SymInt from_terms(const Terms& t) {
  SymInt s;
  for (const auto& [m, c] : t)
    if (c != 0) s.terms.emplace_back(m, c);
  return s;
}

}  // namespace

SymInt SymInt::of(std::int64_t c) {
  SymInt s;
  if (c != 0) s.terms.emplace_back(Monomial{}, c);
  return s;
}

SymInt SymInt::symbol(std::int64_t id) {
  SymInt s;
  s.terms.emplace_back(Monomial{id}, 1);
  return s;
}

std::optional<std::int64_t> SymInt::constant() const {
  if (terms.empty()) return 0;
  if (terms.size() == 1 && terms[0].first.empty()) return terms[0].second;
  return std::nullopt;
}

std::optional<std::int64_t> SymInt::as_symbol() const {
  if (terms.size() == 1 && terms[0].first.size() == 1 && terms[0].second == 1) return terms[0].first[0];
  return std::nullopt;
}

std::optional<SymInt> add(const SymInt& a, const SymInt& b) {
  Terms t(a.terms.begin(), a.terms.end());
  for (const auto& [m, c] : b.terms) {
    std::int64_t& slot = t[m];
    if (__builtin_add_overflow(slot, c, &slot)) return std::nullopt;
  }
  return from_terms(t);
}

std::optional<SymInt> sub(const SymInt& a, const SymInt& b) {
  SymInt neg = b;
  for (auto& [m, c] : neg.terms) {
    if (c == INT64_MIN) return std::nullopt;
    c = -c;
  }
  return add(a, neg);
}

std::optional<SymInt> mul(const SymInt& a, const SymInt& b) {
  Terms t;
  for (const auto& [ma, ca] : a.terms) {
    for (const auto& [mb, cb] : b.terms) {
      SymInt::Monomial m = ma;
      m.insert(m.end(), mb.begin(), mb.end());
      std::sort(m.begin(), m.end());
      std::int64_t c = 0;
      if (__builtin_mul_overflow(ca, cb, &c)) return std::nullopt;
      std::int64_t& slot = t[m];
      if (__builtin_add_overflow(slot, c, &slot)) return std::nullopt;
    }
  }
  return from_terms(t);
}

namespace {

// m / d as monomials (multisets), or nullopt when d is not contained in m.
std::optional<SymInt::Monomial> divide(const SymInt::Monomial& m, const SymInt::Monomial& d) {
  SymInt::Monomial rest;
  std::size_t j = 0;
  for (std::size_t i = 0; i < m.size(); ++i) {
    if (j < d.size() && m[i] == d[j]) {
      ++j;
    } else {
      rest.push_back(m[i]);
    }
  }
  if (j != d.size()) return std::nullopt;
  return rest;
}

}  // namespace

std::optional<SymInt> exact_div(const SymInt& a, const SymInt& b) {
  if (b.terms.size() != 1 || b.terms[0].second == 0) return std::nullopt;
  const auto& [bm, bc] = b.terms[0];
  SymInt out;
  for (const auto& [m, c] : a.terms) {
    auto rest = divide(m, bm);
    if (!rest || c % bc != 0) return std::nullopt;
    out.terms.emplace_back(std::move(*rest), c / bc);
  }
  std::sort(out.terms.begin(), out.terms.end());
  return out;
}

std::optional<std::int64_t> evaluate(const SymInt& a,
                                     const std::function<std::optional<std::int64_t>(std::int64_t)>& value_of) {
  std::int64_t total = 0;
  for (const auto& [m, c] : a.terms) {
    std::int64_t term = c;
    for (std::int64_t s : m) {
      const auto v = value_of(s);
      if (!v || __builtin_mul_overflow(term, *v, &term)) return std::nullopt;
    }
    if (__builtin_add_overflow(total, term, &total)) return std::nullopt;
  }
  return total;
}

std::optional<std::pair<std::int64_t, std::int64_t>> solve_equal(const SymInt& a, const SymInt& b) {
  auto d = sub(a, b);
  if (!d || d->terms.empty()) return std::nullopt;
  // Divide out the symbols every term shares (sizes are never zero).
  SymInt::Monomial common = d->terms[0].first;
  for (const auto& [m, c] : d->terms) {
    SymInt::Monomial keep;
    std::set_intersection(common.begin(), common.end(), m.begin(), m.end(), std::back_inserter(keep));
    common = std::move(keep);
  }
  SymInt reduced;
  for (const auto& [m, c] : d->terms) reduced.terms.emplace_back(*divide(m, common), c);
  std::sort(reduced.terms.begin(), reduced.terms.end());
  // Now c*s + k == 0 for one symbol s.
  std::int64_t sym = -1, coeff = 0, k = 0;
  for (const auto& [m, c] : reduced.terms) {
    if (m.empty()) {
      k = c;
    } else if (m.size() == 1 && sym < 0) {
      sym = m[0];
      coeff = c;
    } else {
      return std::nullopt;
    }
  }
  if (sym < 0 || coeff == 0 || k == INT64_MIN || (-k) % coeff != 0) return std::nullopt;
  return std::pair{sym, -k / coeff};
}

std::string to_string(const SymInt& a, const std::function<std::string(std::int64_t)>& name_of) {
  if (a.terms.empty()) return "0";
  std::string out;
  // Highest degree first reads naturally: "batch*seq*32 + 1".
  std::vector<std::pair<SymInt::Monomial, std::int64_t>> terms = a.terms;
  std::stable_sort(terms.begin(), terms.end(), [](const auto& x, const auto& y) { return x.first.size() > y.first.size(); });
  for (const auto& [m, c] : terms) {
    std::string term;
    for (std::int64_t s : m) {
      if (!term.empty()) term.append("*");
      term.append(name_of(s));
    }
    const std::uint64_t mag = c < 0 ? 0 - static_cast<std::uint64_t>(c) : static_cast<std::uint64_t>(c);
    if (term.empty()) {
      term = std::to_string(mag);
    } else if (mag != 1) {
      term += std::string("*").append(std::to_string(mag));
    }
    if (out.empty()) {
      out = (c < 0 ? "-" : "") + term;
    } else {
      out += (c < 0 ? " - " : " + ") + term;
    }
  }
  return out;
}

}  // namespace kiln::ir
