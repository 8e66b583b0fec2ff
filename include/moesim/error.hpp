#pragma once
// Error types. InputError means the user's input is wrong (exit code 2);
// anything else escaping main is an internal error (exit code 1).
#include <stdexcept>
#include <string>

namespace moesim {

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
    std::string s = file;
    if (!where.empty()) s += (s.empty() ? "" : ": ") + where;
    return s + (s.empty() ? "" : ": ") + message;
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
