// Reading the text commands' stdin (tools/kiln/text_input.hpp).
#include "tools/kiln/text_input.hpp"

#include <cmath>
#include <cstdio>
#include <string>

#include "format/json.hpp"
#include "format/utf8.hpp"

namespace kiln::cli {

namespace {

Error line_error(std::size_t line, const std::string& message) {
  return Error::bad_input("<stdin>", std::to_string(line), message);
}

}  // namespace

void read_text_arg(OptionReader& r, TextArgs& args, TextOptions& options) {
  if (r.is("--vocab")) {
    args.vocab = std::string(r.value());
  } else if (r.is("--jsonl")) {
    r.flag();
    args.jsonl = true;
  } else if (r.is("--max-length")) {
    options.max_length = static_cast<std::size_t>(r.number(2, std::int64_t{1} << 20));
  } else if (r.is("--batch-size")) {
    options.batch_size = static_cast<std::size_t>(r.number(1, 65536));
  } else if (r.is("--threads")) {
    options.threads = static_cast<int>(r.number(0, 1024));
  } else if (r.is_option() && r.arg().size() > 1) {
    throw r.error("unknown option '" + std::string(r.arg()) + "'");
  } else if (args.model.empty()) {
    args.model = std::string(r.arg());
  } else {
    throw r.error("unexpected argument '" + std::string(r.arg()) + "' (texts come from stdin)");
  }
}

void check_text_args(const TextArgs& args, const std::string& command) {
  if (args.model.empty()) throw usage_error(command, "no MODEL given");
  if (args.vocab.empty()) throw usage_error(command, "no --vocab FILE given");
}

std::vector<std::string> read_stdin_lines() {
  std::string buffer;
  char chunk[1 << 16];
  while (true) {
    const std::size_t got = std::fread(chunk, 1, sizeof chunk, stdin);
    if (got == 0) {
      if (std::ferror(stdin)) throw Error::bad_input("<stdin>", "", "read error");
      break;
    }
    buffer.append(chunk, got);
  }
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < buffer.size()) {
    std::size_t newline = buffer.find('\n', start);
    if (newline == std::string::npos) newline = buffer.size();  // a last line without one
    std::string_view line(buffer.data() + start, newline - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.emplace_back(line);
    start = newline + 1;
  }
  return lines;
}

void check_utf8(std::string_view line, std::size_t number) {
  for (std::size_t i = 0; i < line.size();) {
    const std::size_t n = format::utf8_sequence_length(line, i);
    if (n == 0) {
      char byte[8];
      std::snprintf(byte, sizeof byte, "0x%02X", static_cast<unsigned>(static_cast<unsigned char>(line[i])));
      throw line_error(number, std::string("invalid UTF-8 (byte ") + byte + " at column " + std::to_string(i + 1) + ")");
    }
    i += n;
  }
}

std::vector<std::string> json_line_fields(std::string_view line, std::size_t number,
                                          const std::vector<std::string>& keys) {
  format::JsonValue v;
  try {
    v = format::parse_json(line, "<stdin>");
  } catch (const Error& e) {
    // The parser saw one line; keep its column, put the real line number in front.
    const std::size_t column = e.where().find("column");
    throw line_error(number, "bad JSON" + (column == std::string::npos ? "" : " at " + e.where().substr(column)) +
                                 ": " + e.message());
  }
  std::string wanted;
  for (const std::string& k : keys) wanted += (wanted.empty() ? "\"" : ", \"") + k + "\": ...";
  if (!v.is_object()) {
    throw line_error(number, "expected a JSON object {" + wanted + "}, got " + std::string(format::json_kind_name(v.kind())));
  }
  std::vector<std::string> fields;
  for (const std::string& k : keys) {
    const format::JsonValue* f = v.find(k);
    if (!f) throw line_error(number, "missing \"" + k + "\"");
    if (!f->is_string()) {
      throw line_error(number, "\"" + k + "\" must be a string, not " + std::string(format::json_kind_name(f->kind())));
    }
    fields.push_back(f->as_string());
  }
  return fields;
}

std::vector<std::string> read_texts(bool jsonl) {
  std::vector<std::string> texts = read_stdin_lines();
  for (std::size_t i = 0; i < texts.size(); ++i) {
    if (jsonl) {
      texts[i] = std::move(json_line_fields(texts[i], i + 1, {"text"})[0]);
    } else {
      check_utf8(texts[i], i + 1);
    }
  }
  return texts;
}

Error at_stdin_line(const Error& e, std::size_t first_line) {
  if (!e.file().empty()) return e;
  const std::size_t space = e.where().find(' ');
  if (space == std::string::npos) return e;
  const std::string kind = e.where().substr(0, space);
  if (kind != "text" && kind != "question") return e;
  const std::size_t n = std::stoul(e.where().substr(space + 1));
  return Error(e.kind(), "<stdin>", std::to_string(first_line + n), e.message());
}

std::string json_float(float v) {
  if (!std::isfinite(v)) return "null";
  char buf[32];
  const int n = std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(v));
  return std::string(buf, static_cast<std::size_t>(n));
}

}  // namespace kiln::cli
