#include "format/class_outline.hpp"

#include <cstddef>
#include <string_view>

#include "kiln/error.hpp"

namespace kiln::format {

namespace {

std::string_view strip(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// The quoted names of a printed list: `["weight", "bias", ]`.
std::vector<std::string> quoted_names(std::string_view s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '"' && s[i] != '\'') continue;
    const char q = s[i];
    const size_t end = s.find(q, i + 1);
    if (end == std::string_view::npos) break;
    out.emplace_back(s.substr(i + 1, end - i - 1));
    i = end;
  }
  return out;
}

// Splits at commas that are outside brackets: "a: Tensor, b: Tuple[int, int]".
std::vector<std::string_view> split_top_level(std::string_view s) {
  std::vector<std::string_view> parts;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '[' || c == '(') ++depth;
    if (c == ']' || c == ')') --depth;
    if (c == ',' && depth == 0) {
      parts.push_back(strip(s.substr(start, i - start)));
      start = i + 1;
    }
  }
  parts.push_back(strip(s.substr(start)));
  return parts;
}

}  // namespace

std::vector<ClassOutline> outline_classes(const std::string& source, const std::string& qualifier,
                                          const std::string& file, const std::string& record) {
  std::vector<ClassOutline> classes;
  std::vector<std::string_view> lines;
  for (size_t pos = 0; pos <= source.size();) {
    size_t nl = source.find('\n', pos);
    if (nl == std::string::npos) nl = source.size();
    lines.emplace_back(source.data() + pos, nl - pos);
    pos = nl + 1;
  }
  auto fail = [&](size_t line, const std::string& what) -> Error {
    return Error::bad_input(file, record + ":" + std::to_string(line + 1), what);
  };

  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string_view line = lines[i];
    if (line.rfind("class ", 0) == 0) {
      const size_t open = line.find('(');
      const size_t close = line.find(')', open == std::string_view::npos ? 0 : open);
      if (open == std::string_view::npos || close == std::string_view::npos) {
        throw fail(i, "malformed class header");
      }
      ClassOutline c;
      c.qualified_name = qualifier + "." + std::string(strip(line.substr(6, open - 6)));
      c.base = std::string(strip(line.substr(open + 1, close - open - 1)));
      classes.push_back(std::move(c));
      continue;
    }
    if (classes.empty()) continue;
    ClassOutline& c = classes.back();
    const std::string_view body = strip(line);
    if (body.rfind("__parameters__ = ", 0) == 0) {
      c.parameters = quoted_names(body.substr(17));
    } else if (body.rfind("__buffers__ = ", 0) == 0) {
      c.buffers = quoted_names(body.substr(14));
    } else if (body.rfind("def forward(", 0) == 0 && line.size() > body.size() && !c.has_forward) {
      // The signature may span lines; it ends at the ':' after the closing parenthesis.
      std::string sig(body.substr(12));
      size_t j = i;
      int depth = 1;
      size_t close = std::string::npos;
      for (;;) {
        for (size_t k = (j == i ? 0 : sig.size() - lines[j].size()); k < sig.size(); ++k) {
          if (sig[k] == '(' || sig[k] == '[') ++depth;
          if (sig[k] == ')' || sig[k] == ']') --depth;
          if (depth == 0) {
            close = k;
            break;
          }
        }
        if (close != std::string::npos) break;
        if (++j >= lines.size()) throw fail(i, "unterminated signature of forward");
        sig += std::string(lines[j]);
      }
      c.has_forward = true;
      const std::string_view params(sig.data(), close);
      bool first = true;
      for (std::string_view p : split_top_level(params)) {
        if (p.empty()) continue;
        const size_t colon = p.find(':');
        ClassOutline::Argument a{std::string(strip(p.substr(0, colon))),
                                 colon == std::string_view::npos ? "" : std::string(strip(p.substr(colon + 1)))};
        if (first) {
          first = false;
          if (a.name == "self") continue;
        }
        c.forward_args.push_back(std::move(a));
      }
      std::string_view rest = strip(std::string_view(sig).substr(close + 1));
      if (rest.rfind("->", 0) == 0) {
        rest = strip(rest.substr(2));
        if (!rest.empty() && rest.back() == ':') rest.remove_suffix(1);
        c.forward_returns = std::string(strip(rest));
      }
      i = j;
    }
  }
  return classes;
}

}  // namespace kiln::format
