// kiln::Error — the one exception type thrown by kiln's C++ code.
//
// Every error names what went wrong and where: the file (model, .npy, vocabulary),
// a location inside it (zip record, pickle offset, source line, input name) when there
// is one, and a message. kind() says whose fault it is, which the CLI maps to its exit
// code (1 bad input or model, 2 usage, 3 internal). The C API turns these into codes.
//
//   try { kiln::Model::load("traced_bert.pt"); }
//   catch (const kiln::Error& e) { std::cerr << e.what() << "\n"; }   // "<file>:<where>: <what>"
#pragma once

#include <exception>
#include <string>
#include <utility>

namespace kiln {

enum class ErrorKind {
  bad_input,  // a malformed or unsupported file, tensor or argument value
  usage,      // the caller used the API or CLI wrongly
  internal,   // a bug in kiln
};

class Error : public std::exception {
 public:
  Error(ErrorKind kind, std::string file, std::string where, std::string message)
      : kind_(kind), file_(std::move(file)), where_(std::move(where)), message_(std::move(message)) {
    if (!file_.empty()) {
      what_ = file_;
      if (!where_.empty()) what_ += ":" + where_;
      what_ += ": ";
    }
    what_ += message_;
  }

  // A malformed or unsupported input; `where` may be empty.
  static Error bad_input(std::string file, std::string where, std::string message) {
    return Error(ErrorKind::bad_input, std::move(file), std::move(where), std::move(message));
  }

  ErrorKind kind() const noexcept { return kind_; }
  const std::string& file() const noexcept { return file_; }
  const std::string& where() const noexcept { return where_; }
  const std::string& message() const noexcept { return message_; }
  // "<file>[:<where>]: <message>", or just the message when no file is known.
  const char* what() const noexcept override { return what_.c_str(); }

 private:
  ErrorKind kind_;
  std::string file_;
  std::string where_;
  std::string message_;
  std::string what_;
};

}  // namespace kiln
