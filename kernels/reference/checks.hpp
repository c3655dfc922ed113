// Argument checking shared by the reference kernels: building PyTorch-style messages and
// throwing them. The executor adds the model file and source location.
#pragma once

#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>

#include "kiln/dtype.hpp"

namespace kiln::kernels::ref {

// A bad argument or shape: kiln::Error (bad_input).
[[noreturn]] void fail(std::string message);
// A caller broke a kernel's contract (a compute dtype the executor should never pass):
// kiln::Error (internal), a bug in kiln rather than in the model.
[[noreturn]] void contract_violation(std::string message);

// Concatenates strings, numbers and dtype names into a message. Built by appending, as
// GCC 12 warns falsely (-Wrestrict) on `"literal" + std::string`.
template <class... Parts>
std::string text(const Parts&... parts) {
  std::string s;
  auto append = [&s](const auto& part) {
    using T = std::decay_t<decltype(part)>;
    if constexpr (std::is_same_v<T, DType>) {
      s.append(dtype_name(part));
    } else if constexpr (std::is_floating_point_v<T>) {
      std::ostringstream out;
      out << part;  // "inf", "0.5", "-1": PyTorch prints Python floats about so
      s.append(out.str());
    } else if constexpr (std::is_same_v<T, bool>) {
      s.append(part ? "True" : "False");
    } else if constexpr (std::is_integral_v<T>) {
      s.append(std::to_string(part));
    } else {
      s.append(std::string_view(part));
    }
  };
  (append(parts), ...);
  return s;
}

}  // namespace kiln::kernels::ref
