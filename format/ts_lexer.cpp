#include "format/ts_lexer.hpp"

#include "format/utf8.hpp"

#include <algorithm>
#include <iterator>
#include <charconv>
#include <cstddef>
#include <limits>
#include <system_error>

#include "format/printable.hpp"

namespace kiln::format::ts {

namespace {

constexpr std::string_view kKeywords[] = {
    "def",   "class", "return", "if",    "elif",   "else",  "for",  "while", "in",
    "not",   "and",   "or",     "is",    "pass",   "break", "continue", "raise", "assert",
    "True",  "False", "None",   "import", "from",  "global", "del",  "lambda", "with", "as",
};

// Longest first, so that "**=" wins over "**" and "*".
constexpr std::string_view kOperators[] = {
    "**=", "//=", "<<=", ">>=", "->", "==", "!=", "<=", ">=", "**", "//", "<<", ">>", "+=", "-=",
    "*=",  "/=",  "%=",  "&=",  "|=", "^=", "@=", "(",  ")",  "[",  "]",  "{",  "}",  ",",  ":",
    ".",   ";",   "+",   "-",   "*",  "/",  "%",  "<",  ">",  "=",  "&",  "|",  "^",  "~",  "@",
    "!",  // never valid alone; listed so that a stray one gets "unexpected '!'" from the parser
};

bool is_ident_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_ident(char c) { return is_ident_start(c) || is_digit(c); }

std::uint32_t clamp32(std::size_t v) {
  return static_cast<std::uint32_t>(std::min<std::size_t>(v, std::numeric_limits<std::uint32_t>::max()));
}

class Lexer {
 public:
  Lexer(std::string_view text, const SourceName& source) : s_(text), source_(source) {}

  std::vector<Token> run() {
    indents_.push_back(0);
    while (pos_ < s_.size()) {
      if (at_line_start_ && brackets_.empty()) {
        if (!start_line()) continue;  // blank or comment-only line
      }
      const char c = s_[pos_];
      if (c == ' ' || c == '\t' || c == '\r' || c == '\f') {
        ++pos_;
      } else if (c == '#') {
        while (pos_ < s_.size() && s_[pos_] != '\n') ++pos_;
      } else if (c == '\n') {
        // Inside brackets a newline is only whitespace (multi-line signatures and calls).
        if (brackets_.empty()) {
          push(TokenKind::newline, here(), "");
          at_line_start_ = true;
        }
        new_line();
      } else if (c == '\\') {
        // Explicit line continuation; anything else after the backslash is an error.
        std::size_t p = pos_ + 1;
        if (p < s_.size() && s_[p] == '\r') ++p;
        if (p >= s_.size() || s_[p] != '\n') {
          throw error_at(source_, here(), "unexpected '\\' (only a line continuation may use it)");
        }
        pos_ = p;
        new_line();
      } else if (is_ident_start(c)) {
        lex_name();
      } else if (is_digit(c) || (c == '.' && pos_ + 1 < s_.size() && is_digit(s_[pos_ + 1]))) {
        lex_number();
      } else if (c == '"' || c == '\'') {
        lex_string();
      } else {
        lex_operator();
      }
    }
    if (!brackets_.empty()) {
      const Open& open = brackets_.back();
      throw error_at(source_, open.loc, std::string("'") + open.c + "' was never closed");
    }
    if (!out_.empty() && out_.back().kind != TokenKind::newline) push(TokenKind::newline, here(), "");
    for (std::size_t i = 1; i < indents_.size(); ++i) push(TokenKind::dedent, here(), "");
    push(TokenKind::end, here(), "");
    return std::move(out_);
  }

 private:
  struct Open {
    char c;
    Location loc;
  };

  Location here() const { return at(pos_); }
  Location at(std::size_t p) const { return {clamp32(line_), clamp32(p - line_start_ + 1)}; }

  void new_line() {
    ++pos_;
    ++line_;
    line_start_ = pos_;
  }

  void push(TokenKind kind, Location loc, std::string text) {
    Token t;
    t.kind = kind;
    t.loc = loc;
    t.text = std::move(text);
    out_.push_back(std::move(t));
  }

  // Measures the indentation of a logical line and emits INDENT / DEDENTs. Returns false
  // (having consumed it) when the line is blank or holds only a comment.
  bool start_line() {
    std::size_t p = pos_;
    while (p < s_.size() && s_[p] == ' ') ++p;
    if (p < s_.size() && s_[p] == '\t') {
      throw error_at(source_, at(p), "tab in indentation (serialized code indents with spaces)");
    }
    if (p < s_.size() && s_[p] == '\r' && p + 1 < s_.size() && s_[p + 1] == '\n') ++p;
    if (p >= s_.size() || s_[p] == '\n' || s_[p] == '#') {
      while (p < s_.size() && s_[p] != '\n') ++p;
      pos_ = p;
      if (pos_ < s_.size()) new_line();
      return false;
    }
    const std::size_t width = p - pos_;
    pos_ = p;
    at_line_start_ = false;
    if (width > indents_.back()) {
      indents_.push_back(width);
      push(TokenKind::indent, here(), "");
    } else {
      while (width < indents_.back()) {
        indents_.pop_back();
        push(TokenKind::dedent, here(), "");
      }
      if (width != indents_.back()) {
        throw error_at(source_, here(), "unindent does not match any outer indentation level");
      }
    }
    return true;
  }

  void lex_name() {
    const std::size_t start = pos_;
    while (pos_ < s_.size() && is_ident(s_[pos_])) ++pos_;
    const std::string_view word = s_.substr(start, pos_ - start);
    const bool keyword = std::find(std::begin(kKeywords), std::end(kKeywords), word) != std::end(kKeywords);
    push(keyword ? TokenKind::keyword : TokenKind::name, at(start), std::string(word));
  }

  // Decimal integers and floats as the printer writes them: "3", "9223372036854775807",
  // "0.", "1.0000000000000001e-05", "-3.4028234663852886e+38" (the sign is unary minus).
  void lex_number() {
    const std::size_t start = pos_;
    bool is_float = false;
    while (pos_ < s_.size() && is_digit(s_[pos_])) ++pos_;
    if (pos_ < s_.size() && s_[pos_] == '.') {
      is_float = true;
      ++pos_;
      while (pos_ < s_.size() && is_digit(s_[pos_])) ++pos_;
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      std::size_t p = pos_ + 1;
      if (p < s_.size() && (s_[p] == '+' || s_[p] == '-')) ++p;
      if (p >= s_.size() || !is_digit(s_[p])) {
        throw error_at(source_, at(start), "malformed number (exponent has no digits)");
      }
      while (p < s_.size() && is_digit(s_[p])) ++p;
      pos_ = p;
      is_float = true;
    }
    // `1x`, `0x10`, `1j`: the printer writes none of these; name the whole run.
    if (pos_ < s_.size() && (is_ident(s_[pos_]) || s_[pos_] == '.')) {
      std::size_t p = pos_;
      while (p < s_.size() && (is_ident(s_[p]) || s_[p] == '.')) ++p;
      throw error_at(source_, at(start),
                     "malformed number '" + printable(s_.substr(start, p - start), 40, "'") + "'");
    }
    const std::string_view spelling = s_.substr(start, pos_ - start);
    Token t;
    t.loc = at(start);
    t.text = std::string(spelling);
    if (is_float) {
      t.kind = TokenKind::floating;
      // from_chars does not take a leading '.', and is locale-independent (strtod is not).
      std::string digits = spelling.front() == '.' ? "0" + t.text : t.text;
      const auto r = std::from_chars(digits.data(), digits.data() + digits.size(), t.float_value);
      if (r.ec == std::errc::result_out_of_range) {
        throw error_at(source_, t.loc, "float literal out of range: " + t.text);
      }
      if (r.ec != std::errc() || r.ptr != digits.data() + digits.size()) {
        throw error_at(source_, t.loc, "malformed number '" + t.text + "'");
      }
    } else {
      t.kind = TokenKind::integer;
      // 2^63 itself is allowed so that unary minus can make INT64_MIN; the parser refuses
      // it anywhere else.
      constexpr std::uint64_t kMax = std::uint64_t{1} << 63;
      std::uint64_t v = 0;
      for (char c : spelling) {
        const auto d = static_cast<std::uint64_t>(c - '0');
        if (v > (kMax - d) / 10) {
          throw error_at(source_, t.loc, "integer literal out of range: " + printable(t.text, 40));
        }
        v = v * 10 + d;
      }
      t.int_value = v;
    }
    out_.push_back(std::move(t));
  }

  static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  // A single- or double-quoted string with C-like escapes (what the printer's quoting
  // writes: \\ \' \" \a \b \f \n \r \t \v and three-digit octal \ooo; \xHH too). Escapes
  // make bytes, as in PyTorch. Raw non-ASCII bytes must be valid UTF-8.
  void lex_string() {
    const Location start = here();
    const char quote = s_[pos_];
    if (pos_ + 2 < s_.size() && s_[pos_ + 1] == quote && s_[pos_ + 2] == quote) {
      throw error_at(source_, start, "triple-quoted strings are not supported");
    }
    ++pos_;
    std::string value;
    for (;;) {
      if (pos_ >= s_.size() || s_[pos_] == '\n') throw error_at(source_, start, "unterminated string literal");
      const char c = s_[pos_];
      if (c == quote) {
        ++pos_;
        break;
      }
      if (static_cast<unsigned char>(c) >= 0x80) {
        const std::size_t n = utf8_sequence_length(s_, pos_);
        if (n == 0) throw error_at(source_, here(), "invalid UTF-8 in string literal");
        value.append(s_.substr(pos_, n));
        pos_ += n;
        continue;
      }
      if (c != '\\') {
        value += c;
        ++pos_;
        continue;
      }
      const Location esc = here();
      if (pos_ + 1 >= s_.size()) throw error_at(source_, start, "unterminated string literal");
      const char e = s_[pos_ + 1];
      pos_ += 2;
      switch (e) {
        case '\\': value += '\\'; break;
        case '\'': value += '\''; break;
        case '"': value += '"'; break;
        case 'a': value += '\a'; break;
        case 'b': value += '\b'; break;
        case 'f': value += '\f'; break;
        case 'n': value += '\n'; break;
        case 'r': value += '\r'; break;
        case 't': value += '\t'; break;
        case 'v': value += '\v'; break;
        case 'x': {
          const int hi = pos_ < s_.size() ? hex_value(s_[pos_]) : -1;
          const int lo = pos_ + 1 < s_.size() ? hex_value(s_[pos_ + 1]) : -1;
          if (hi < 0 || lo < 0) throw error_at(source_, esc, "\\x escape needs two hex digits");
          value += static_cast<char>(hi * 16 + lo);
          pos_ += 2;
          break;
        }
        default: {
          if (e >= '0' && e <= '7') {
            // Exactly three octal digits, as the printer writes and PyTorch reads them.
            const bool ok = pos_ + 1 < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '7' && s_[pos_ + 1] >= '0' &&
                            s_[pos_ + 1] <= '7';
            const int v = ok ? (e - '0') * 64 + (s_[pos_] - '0') * 8 + (s_[pos_ + 1] - '0') : 256;
            if (v > 255) throw error_at(source_, esc, "octal escape must be three digits from \\000 to \\377");
            value += static_cast<char>(v);
            pos_ += 2;
            break;
          }
          throw error_at(source_, esc, "unsupported escape '\\" + printable(std::string_view(&e, 1), 1, "'") +
                                           "' in string literal");
        }
      }
    }
    Token t;
    t.kind = TokenKind::string;
    t.loc = start;
    t.text = std::move(value);
    out_.push_back(std::move(t));
  }

  void lex_operator() {
    const Location loc = here();
    for (std::string_view op : kOperators) {
      if (s_.substr(pos_, op.size()) != op) continue;
      pos_ += op.size();
      if (op == "(" || op == "[" || op == "{") {
        brackets_.push_back({op[0], loc});
      } else if (op == ")" || op == "]" || op == "}") {
        const char want = op == ")" ? '(' : op == "]" ? '[' : '{';
        if (brackets_.empty()) throw error_at(source_, loc, "unmatched '" + std::string(op) + "'");
        if (brackets_.back().c != want) {
          const Open& open = brackets_.back();
          throw error_at(source_, loc,
                         "'" + std::string(op) + "' does not match '" + open.c + "' opened at " +
                             std::to_string(open.loc.line) + ":" + std::to_string(open.loc.column));
        }
        brackets_.pop_back();
      }
      push(TokenKind::op, loc, std::string(op));
      return;
    }
    throw error_at(source_, loc, "unexpected character '" + printable(s_.substr(pos_, 1), 1, "'") + "'");
  }

  std::string_view s_;
  const SourceName& source_;
  std::size_t pos_ = 0;
  std::size_t line_ = 1;
  std::size_t line_start_ = 0;
  bool at_line_start_ = true;
  std::vector<std::size_t> indents_;
  std::vector<Open> brackets_;
  std::vector<Token> out_;
};

}  // namespace

Error error_at(const SourceName& source, Location loc, const std::string& message) {
  return Error::bad_input(source.file,
                          source.record + ":" + std::to_string(loc.line) + ":" + std::to_string(loc.column), message);
}

std::vector<Token> tokenize(std::string_view text, const SourceName& source) { return Lexer(text, source).run(); }

std::string describe(const Token& t) {
  switch (t.kind) {
    case TokenKind::name: return "name '" + printable(t.text, 40, "'") + "'";
    case TokenKind::keyword: return "'" + t.text + "'";
    case TokenKind::integer:
    case TokenKind::floating: return "number " + printable(t.text, 40);
    case TokenKind::string: return "string \"" + printable(t.text, 40, "\"") + "\"";
    case TokenKind::op: return "'" + t.text + "'";
    case TokenKind::newline: return "end of line";
    case TokenKind::indent: return "indent";
    case TokenKind::dedent: return "dedent";
    case TokenKind::end: return "end of input";
  }
  return "token";
}

}  // namespace kiln::format::ts
