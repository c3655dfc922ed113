// OptionReader — walks a subcommand's arguments the way every kiln subcommand takes them:
// options as `--name value` or `--name=value`, flags without a value, and bare arguments.
// Mistakes are kiln::Error (usage, exit 2) worded "<command>: ... (see 'kiln <command>
// --help')".
//
//   OptionReader r(args, "embed");
//   while (r.next()) {
//     if (r.is("--vocab")) vocab = r.value();
//     else if (r.is("--normalize")) r.flag(), normalize = true;
//   }
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/error.hpp"

namespace kiln::cli {

// "<command>: <message> (see 'kiln <command> --help')", a usage error (exit 2).
inline Error usage_error(const std::string& command, const std::string& message) {
  return Error(ErrorKind::usage, "", "", command + ": " + message + " (see 'kiln " + command + " --help')");
}

class OptionReader {
 public:
  OptionReader(const std::vector<std::string_view>& args, std::string command)
      : args_(args), command_(std::move(command)) {}

  // Moves to the next argument; false after the last.
  bool next() {
    if (++i_ >= args_.size()) return false;
    arg_ = args_[i_];
    inline_value_.reset();
    if (arg_.starts_with("--") && arg_.find('=') != std::string_view::npos) {
      inline_value_ = arg_.substr(arg_.find('=') + 1);
      arg_ = arg_.substr(0, arg_.find('='));
    }
    return true;
  }
  // The argument, without an inline "=value".
  std::string_view arg() const { return arg_; }
  bool is(std::string_view name) const { return arg_ == name; }
  bool is_option() const { return !arg_.empty() && arg_[0] == '-'; }
  // The option's value: inline, or the next argument.
  std::string_view value() {
    if (inline_value_) return *inline_value_;
    if (i_ + 1 >= args_.size()) throw error(std::string(arg_) + " needs a value");
    return args_[++i_];
  }
  // The option is a flag: "--flag=value" is a mistake.
  void flag() const {
    if (inline_value_) throw error(std::string(arg_) + " takes no value");
  }
  // The option's value as a whole number in [lo, hi].
  std::int64_t number(std::int64_t lo, std::int64_t hi) {
    const std::string name(arg_);
    const std::string_view s = value();
    std::int64_t n = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec != std::errc() || end != s.data() + s.size() || n < lo || n > hi)
      throw error(name + " needs a whole number from " + std::to_string(lo) + " to " + std::to_string(hi) + ", not '" +
                  std::string(s) + "'");
    return n;
  }
  // A usage error for this command.
  Error error(const std::string& message) const { return usage_error(command_, message); }

 private:
  const std::vector<std::string_view>& args_;
  std::string command_;
  std::size_t i_ = static_cast<std::size_t>(-1);
  std::string_view arg_;
  std::optional<std::string_view> inline_value_;
};

}  // namespace kiln::cli
