// Broadcasting, dimension wrapping and the error helpers of checks.hpp.
#include <algorithm>

#include "kernels/reference/checks.hpp"
#include "kernels/reference/reference.hpp"
#include "kiln/error.hpp"

namespace kiln::kernels::ref {

void fail(std::string message) { throw Error::bad_input("", "", std::move(message)); }

void contract_violation(std::string message) { throw Error(ErrorKind::internal, "", "", std::move(message)); }

std::vector<std::int64_t> broadcast_shapes(const std::vector<std::int64_t>& a, const std::vector<std::int64_t>& b) {
  const std::size_t rank = std::max(a.size(), b.size());
  std::vector<std::int64_t> out(rank);
  // Dims align at the end; the message counts dims of the result, as PyTorch's infer_size.
  for (std::size_t i = 0; i < rank; ++i) {
    const std::size_t from_end = rank - 1 - i;
    const std::int64_t size_a = from_end < a.size() ? a[a.size() - 1 - from_end] : 1;
    const std::int64_t size_b = from_end < b.size() ? b[b.size() - 1 - from_end] : 1;
    if (size_a != size_b && size_a != 1 && size_b != 1) {
      fail(text("The size of tensor a (", size_a, ") must match the size of tensor b (", size_b,
                ") at non-singleton dimension ", i));
    }
    out[i] = size_a == 1 ? size_b : size_a;
  }
  return out;
}

std::int64_t wrap_dim(std::int64_t d, std::int64_t rank) {
  const std::int64_t r = std::max<std::int64_t>(rank, 1);
  if (d < -r || d >= r) {
    fail(text("Dimension out of range (expected to be in range of [", -r, ", ", r - 1, "], but got ", d, ")"));
  }
  return d < 0 ? d + r : d;
}

}  // namespace kiln::kernels::ref
