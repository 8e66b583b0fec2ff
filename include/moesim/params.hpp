#pragma once
// Typed component parameters (SimGrid-style): every component declares a
// schema; the scenario reader validates a JSON object against it, fills in
// defaults, and hands the component a Params it can read without JSON.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace moesim {

using RealList = std::vector<double>;
using RealMatrix = std::vector<std::vector<double>>;
using ParamValue = std::variant<std::int64_t, double, bool, std::string, RealList, RealMatrix>;

enum class ParamKind { integer, real, boolean, choice, real_list, real_matrix, path };

struct ParamSpec {
  std::string name;
  ParamKind kind = ParamKind::real;
  std::string doc;
  std::optional<ParamValue> default_value;  // none: required, or derived (see `derived`)
  double min = -1e300, max = 1e300;         // inclusive bounds for numbers and list entries
  std::vector<std::string> choices;         // for ParamKind::choice
  std::string derived;                      // e.g. "cluster.nodes": default computed by the component

  // Builders keep registrations to one readable line per parameter.
  static ParamSpec integer(std::string name, std::int64_t def, std::int64_t min, std::int64_t max, std::string doc);
  static ParamSpec required_integer(std::string name, std::int64_t min, std::int64_t max, std::string doc);
  static ParamSpec real(std::string name, double def, double min, double max, std::string doc);
  static ParamSpec boolean(std::string name, bool def, std::string doc);
  static ParamSpec choice(std::string name, std::vector<std::string> choices, std::string doc);  // first is default
  static ParamSpec list(std::string name, double min, double max, std::string doc);             // optional
  static ParamSpec matrix(std::string name, double min, double max, std::string doc);           // optional
  static ParamSpec file(std::string name, std::string doc);  // required; relative to the scenario file
  ParamSpec& derived_from(std::string what);

  std::string describe() const;  // "cf (real in [0, 64], default 1): capacity factor"
};

// Validated parameter values of one component instance. Absent entries are
// optional parameters the scenario did not set and that have no default.
class Params {
 public:
  void set(const std::string& name, ParamValue v) { values_[name] = std::move(v); }
  bool has(const std::string& name) const { return values_.count(name) != 0; }
  std::int64_t integer(const std::string& name) const;
  double real(const std::string& name) const;  // accepts integers too
  bool boolean(const std::string& name) const;
  const std::string& str(const std::string& name) const;
  const RealList& list(const std::string& name) const;
  const RealMatrix& matrix(const std::string& name) const;
  const std::map<std::string, ParamValue>& values() const { return values_; }

 private:
  const ParamValue& at(const std::string& name) const;
  std::map<std::string, ParamValue> values_;
};

}  // namespace moesim
