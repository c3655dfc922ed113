// ts lexer — tokens of serialized TorchScript source (what PyTorch's printer writes).
//
// Splits a `code/**/*.py` file into names, keywords, numbers, strings and operators, with
// Python's NEWLINE / INDENT / DEDENT for the layout; strings come decoded (UTF-8 checked).
// Errors are kiln::Error bad_input at "<record>:<line>:<column>".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "format/ts_ast.hpp"
#include "kiln/error.hpp"

namespace kiln::format::ts {

enum class TokenKind : std::uint8_t {
  name,      // identifier that is not a keyword
  keyword,   // def class return if elif else for while in not and or is pass break continue
             // raise assert True False None import from global del lambda with as
  integer,   // decimal; int_value (up to 2^63, which only unary minus may use)
  floating,  // float_value
  string,    // text is the decoded value
  op,        // punctuation and operators, text is the spelling: ( ) [ ] { } , : . -> = == ...
  newline,   // end of a logical line
  indent,
  dedent,
  end,       // end of input (always last)
};

struct Token {
  TokenKind kind = TokenKind::end;
  Location loc;
  std::string text;  // spelling; the decoded bytes for strings
  std::uint64_t int_value = 0;
  double float_value = 0;
};

// Names the source in errors: `file` is the archive, `record` the code record inside it.
struct SourceName {
  std::string file;
  std::string record;
};

// The error every ts stage throws: bad_input at "<record>:<line>:<column>".
Error error_at(const SourceName& source, Location loc, const std::string& message);

// Tokenizes a whole file. The result ends with NEWLINE (when there was any token), DEDENTs
// back to column 1, and END.
std::vector<Token> tokenize(std::string_view text, const SourceName& source);

// How a token is named in messages: "name 'x'", "'('", "end of line", ...
std::string describe(const Token& token);

}  // namespace kiln::format::ts
