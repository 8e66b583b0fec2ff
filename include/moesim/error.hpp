#pragma once
// Error types. InputError means the user's input is wrong (exit code 2);
// anything else escaping main is an internal error (exit code 1).
#include <cstdio>
#include <stdexcept>
#include <string>
#include <string_view>

namespace moesim {

// Text made safe for a one-line message: control characters (newline, tab,
// ESC, ...) become \n, \t, \xNN, so no input can start a second line or
// forge a "moesim: error:" of its own; longer than max_chars it is cut with
// "...". Idempotent (a backslash is kept as is).
inline std::string one_line(std::string_view text, std::size_t max_chars = 2000) {
  std::string out;
  for (unsigned char c : text) {
    if (out.size() >= max_chars) {
      out.resize(max_chars > 3 ? max_chars - 3 : 0);
      return out + "...";
    }
    if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    } else {
      out += char(c);
    }
  }
  return out;
}

// A problem with user input: a scenario field, a flag, a trace or load file.
// `file` names the input, `where` the JSON pointer (`/strategies/1/cf`) or a
// line (`line 12`), `what` says what was expected and the valid values.
class InputError : public std::runtime_error {
 public:
  InputError(std::string file, std::string where, const std::string& message)
      : std::runtime_error(format(file, where, message)),
        file_(std::move(file)), where_(std::move(where)), message_(message) {}
  const std::string& file() const { return file_; }
  const std::string& where() const { return where_; }
  const std::string& message() const { return message_; }

 private:
  static std::string format(const std::string& file, const std::string& where,
                            const std::string& message) {
    // Every piece one line, and bounded: a crafted key or value can neither
    // add a line nor flood the terminal.
    std::string s = one_line(file, 4096);
    if (!where.empty()) s += (s.empty() ? "" : ": ") + one_line(where, 400);
    return s + (s.empty() ? "" : ": ") + one_line(message, 2000);
  }
  std::string file_, where_, message_;
};

// A component parameter is invalid for the scenario it is used in (e.g.
// `m` larger than the number of devices). The scenario reader turns it into an
// InputError naming the parameter's JSON pointer.
class ParamError : public std::runtime_error {
 public:
  ParamError(std::string param, const std::string& message)
      : std::runtime_error(message), param_(std::move(param)) {}
  const std::string& param() const { return param_; }

 private:
  std::string param_;
};

}  // namespace moesim
