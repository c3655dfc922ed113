// ts parser — serialized TorchScript source (one `code/**/*.py` file) to a ts::Module.
//
// Reads the Python subset that PyTorch's printer (python_print.cpp) writes: classes, free
// functions, statements, expressions; docs/torchscript-source.md has the grammar.
// `to_source` prints a tree back as canonical source (tests, messages).
#pragma once

#include <string>
#include <string_view>

#include "format/ts_ast.hpp"

namespace kiln::format::ts {

// Parses one code file. `file` is the archive and `record` the code record inside it
// ("model/code/__torch__/a.py"); errors are kiln::Error bad_input with
// where = "<record>:<line>:<column>". The tree respects kMaxExprDepth and kMaxBlockDepth.
Module parse_module_source(std::string_view text, const std::string& file, const std::string& record);

// Canonical source: 2-space indents, one-line signatures, minimal parentheses, strings in
// double quotes with octal escapes for non-printable bytes, numbers in their original
// spelling. parse_module_source(to_source(m)) prints the same as m.
std::string to_source(const Module& module);
std::string to_source(const Expr& expr);
std::string to_source(const TypeExpr& type);

}  // namespace kiln::format::ts
