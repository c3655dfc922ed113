// What the text commands (embed, fill-mask, classify, qa) read from stdin: one text per
// line, or JSON lines whose fields hold the texts; and errors put back on stdin's lines.
// A bad line (invalid UTF-8 or JSON, a missing field) is kiln::Error "<stdin>:N: ...".
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/error.hpp"
#include "kiln/text.hpp"
#include "tools/kiln/option_reader.hpp"

namespace kiln::cli {

// The arguments every text command takes: MODEL, --vocab FILE, --jsonl, --max-length N,
// --batch-size N, --threads N.
struct TextArgs {
  std::string model;
  std::string vocab;
  bool jsonl = false;
};

// Takes r's current argument, one the command did not take itself, into args and
// options. Unknown options and extra bare arguments are usage errors.
void read_text_arg(OptionReader& r, TextArgs& args, TextOptions& options);

// Usage errors for a missing MODEL or --vocab.
void check_text_args(const TextArgs& args, const std::string& command);

// Every line of stdin, a trailing CR dropped from each. Split by hand rather than with
// getline so that a NUL byte is just another (deleted) control character.
std::vector<std::string> read_stdin_lines();

// Throws "<stdin>:number: invalid UTF-8 (byte 0xFF at column 5)".
void check_utf8(std::string_view line, std::size_t number);

// The string fields `keys` of a JSON-object line, in that order.
std::vector<std::string> json_line_fields(std::string_view line, std::size_t number,
                                          const std::vector<std::string>& keys);

// Every stdin line as a text: the line itself, or with `jsonl` its "text" field.
std::vector<std::string> read_texts(bool jsonl);

// An error from the library about input N of a chunk ("text N", "question N") as one about
// stdin's line first_line + N; other errors unchanged.
Error at_stdin_line(const Error& e, std::size_t first_line);

// The JSON text of a float that reads back as the same float ("0.0564725250"); null for
// NaN and infinity, which JSON lacks.
std::string json_float(float v);

}  // namespace kiln::cli
