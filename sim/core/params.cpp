#include "moesim/params.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "moesim/error.hpp"

namespace moesim {

namespace {
ParamSpec spec(std::string name, ParamKind kind, std::string doc) {
  ParamSpec s;
  s.name = std::move(name);
  s.kind = kind;
  s.doc = std::move(doc);
  return s;
}
}  // namespace

ParamSpec ParamSpec::integer(std::string name, std::int64_t def, std::int64_t min, std::int64_t max, std::string doc) {
  ParamSpec s = spec(std::move(name), ParamKind::integer, std::move(doc));
  s.default_value = def;
  s.min = double(min);
  s.max = double(max);
  return s;
}

ParamSpec ParamSpec::required_integer(std::string name, std::int64_t min, std::int64_t max, std::string doc) {
  ParamSpec s = spec(std::move(name), ParamKind::integer, std::move(doc));
  s.min = double(min);
  s.max = double(max);
  return s;
}

ParamSpec ParamSpec::real(std::string name, double def, double min, double max, std::string doc) {
  ParamSpec s = spec(std::move(name), ParamKind::real, std::move(doc));
  s.default_value = def;
  s.min = min;
  s.max = max;
  return s;
}

ParamSpec ParamSpec::boolean(std::string name, bool def, std::string doc) {
  ParamSpec s = spec(std::move(name), ParamKind::boolean, std::move(doc));
  s.default_value = def;
  return s;
}

ParamSpec ParamSpec::choice(std::string name, std::vector<std::string> choices, std::string doc) {
  ParamSpec s = spec(std::move(name), ParamKind::choice, std::move(doc));
  s.default_value = choices.front();
  s.choices = std::move(choices);
  return s;
}

ParamSpec ParamSpec::list(std::string name, double min, double max, std::string doc) {
  ParamSpec s = spec(std::move(name), ParamKind::real_list, std::move(doc));
  s.min = min;
  s.max = max;
  return s;
}

ParamSpec ParamSpec::matrix(std::string name, double min, double max, std::string doc) {
  ParamSpec s = spec(std::move(name), ParamKind::real_matrix, std::move(doc));
  s.min = min;
  s.max = max;
  return s;
}

ParamSpec ParamSpec::file(std::string name, std::string doc) {
  ParamSpec s = spec(std::move(name), ParamKind::path, std::move(doc));
  return s;
}

ParamSpec& ParamSpec::derived_from(std::string what) {
  derived = std::move(what);
  return *this;
}

std::string ParamSpec::describe() const {
  std::string type;
  switch (kind) {
    case ParamKind::integer: type = fmt::format("integer in [{}, {}]", std::int64_t(min), std::int64_t(max)); break;
    case ParamKind::real: type = fmt::format("real in [{}, {}]", min, max); break;
    case ParamKind::boolean: type = "boolean"; break;
    case ParamKind::choice: type = fmt::format("one of {}", fmt::join(choices, " / ")); break;
    case ParamKind::real_list: type = fmt::format("list of reals in [{}, {}]", min, max); break;
    case ParamKind::real_matrix: type = fmt::format("list of lists of reals in [{}, {}]", min, max); break;
    case ParamKind::path: type = "file path, relative to the scenario file"; break;
  }
  std::string def;
  if (!derived.empty()) {
    def = fmt::format(", default {}", derived);
  } else if (default_value) {
    std::visit(
        [&](const auto& v) {
          using V = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<V, bool>) def = v ? ", default true" : ", default false";
          else if constexpr (std::is_same_v<V, std::int64_t> || std::is_same_v<V, double> ||
                             std::is_same_v<V, std::string>)
            def = fmt::format(", default {}", v);
        },
        *default_value);
  } else if (kind == ParamKind::integer || kind == ParamKind::path) {
    def = ", required";
  } else {
    def = ", optional";
  }
  return fmt::format("{} ({}{}): {}", name, type, def, doc);
}

const ParamValue& Params::at(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) throw std::logic_error("parameter not set: " + name);
  return it->second;
}

std::int64_t Params::integer(const std::string& name) const { return std::get<std::int64_t>(at(name)); }

double Params::real(const std::string& name) const {
  const ParamValue& v = at(name);
  if (const auto* i = std::get_if<std::int64_t>(&v)) return double(*i);
  return std::get<double>(v);
}

bool Params::boolean(const std::string& name) const { return std::get<bool>(at(name)); }
const std::string& Params::str(const std::string& name) const { return std::get<std::string>(at(name)); }
const RealList& Params::list(const std::string& name) const { return std::get<RealList>(at(name)); }
const RealMatrix& Params::matrix(const std::string& name) const { return std::get<RealMatrix>(at(name)); }

}  // namespace moesim
