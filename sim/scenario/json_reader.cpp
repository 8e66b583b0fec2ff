#include "json_reader.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <regex>

#include "moesim/error.hpp"
#include "moesim/input.hpp"

namespace moesim {

namespace {

std::string number_text(double v) { return fmt::format("{}", v); }

std::string got(const Json& v) {
  // Replace, not throw, on invalid UTF-8: a message must never fail to print.
  std::string text = v.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return fmt::format("got {}", text);
}

}  // namespace

std::string json_type(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null: return "null";
    case Json::value_t::object: return "an object";
    case Json::value_t::array: return "an array";
    case Json::value_t::string: return "a string";
    case Json::value_t::boolean: return "a boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned: return "an integer";
    case Json::value_t::number_float: return "a number";
    default: return "an unsupported value";
  }
}

JsonReader::JsonReader(const Json& object, std::string pointer, std::string file, OrderedJson& out)
    : JsonReader(object, std::move(pointer), std::move(file), &out) {}

JsonReader::JsonReader(const Json& object, std::string pointer, std::string file, OrderedJson* root)
    : object_(object), pointer_(std::move(pointer)), file_(std::move(file)), root_(root) {
  if (!object_.is_object())
    throw InputError(file_, pointer_.empty() ? "/" : pointer_,
                     fmt::format("expected an object, got {}", json_type(object_)));
  if (!out().is_object()) out() = OrderedJson::object();
}

std::string JsonReader::pointer(const std::string& key) const { return pointer_ + "/" + pointer_token(key); }

void JsonReader::fail(const std::string& key, const std::string& message) const {
  throw InputError(file_, key.empty() ? pointer_ : pointer(key), message);
}

void JsonReader::fail_path(const std::string& path, const std::string& message) const {
  throw InputError(file_, pointer_ + "/" + path, message);
}

const Json& JsonReader::field(const std::string& key) {
  read_.insert(key);
  return object_.at(key);
}

std::int64_t JsonReader::integer(const std::string& key, std::int64_t def, std::int64_t min, std::int64_t max) {
  std::int64_t v = def;
  if (has(key)) {
    const Json& j = field(key);
    bool integral = j.is_number_integer() ||
                    (j.is_number_float() && std::floor(j.get<double>()) == j.get<double>() &&
                     std::abs(j.get<double>()) < 9e15);
    if (!integral) fail(key, fmt::format("expected an integer in [{}, {}], {}", min, max, got(j)));
    v = j.is_number_float() ? static_cast<std::int64_t>(j.get<double>()) : j.get<std::int64_t>();
    if (j.is_number_unsigned() && j.get<std::uint64_t>() > std::uint64_t(INT64_MAX))
      fail(key, fmt::format("expected an integer in [{}, {}], {}", min, max, got(j)));
    if (v < min || v > max) fail(key, fmt::format("expected an integer in [{}, {}], {}", min, max, got(j)));
  }
  out()[key] = v;
  return v;
}

std::int64_t JsonReader::required_integer(const std::string& key, std::int64_t min, std::int64_t max) {
  if (!has(key)) fail(key, fmt::format("is required: an integer in [{}, {}]", min, max));
  return integer(key, 0, min, max);
}

double JsonReader::real(const std::string& key, double def, double min, double max) {
  double v = def;
  if (has(key)) {
    const Json& j = field(key);
    if (!j.is_number())
      fail(key, fmt::format("expected a number in [{}, {}], {}", number_text(min), number_text(max), got(j)));
    v = j.get<double>();
    if (!std::isfinite(v) || v < min || v > max)
      fail(key, fmt::format("expected a number in [{}, {}], {}", number_text(min), number_text(max), got(j)));
  }
  out()[key] = v;
  return v;
}

bool JsonReader::boolean(const std::string& key, bool def) {
  bool v = def;
  if (has(key)) {
    const Json& j = field(key);
    if (!j.is_boolean()) fail(key, fmt::format("expected true or false, {}", got(j)));
    v = j.get<bool>();
  }
  out()[key] = v;
  return v;
}

std::string JsonReader::choice(const std::string& key, const std::vector<std::string>& choices) {
  std::string v = choices.front();
  if (has(key)) {
    const Json& j = field(key);
    bool ok = j.is_string() && std::find(choices.begin(), choices.end(), j.get<std::string>()) != choices.end();
    if (!ok) fail(key, fmt::format("expected one of: {}; {}", fmt::join(choices, ", "), got(j)));
    v = j.get<std::string>();
  }
  out()[key] = v;
  return v;
}

std::string JsonReader::name(const std::string& key, const std::string& def) {
  static const std::regex valid("[A-Za-z0-9._-]{1,100}");
  if (!has(key)) {
    if (def.empty()) fail(key, "is required: a name of letters, digits, '.', '_' or '-' (it becomes a file name)");
    out()[key] = def;
    return def;
  }
  const Json& j = field(key);
  if (!j.is_string() || !std::regex_match(j.get<std::string>(), valid) || j.get<std::string>() == "." ||
      j.get<std::string>() == "..")
    fail(key, fmt::format("expected a name of 1 to 100 letters, digits, '.', '_' or '-' (it becomes a file name), {}",
                          got(j)));
  out()[key] = j.get<std::string>();
  return j.get<std::string>();
}

JsonReader JsonReader::object(const std::string& key) {
  static const Json empty = Json::object();
  out()[key] = OrderedJson::object();
  if (!has(key)) return JsonReader(empty, pointer(key), file_, root_);
  return JsonReader(field(key), pointer(key), file_, root_);
}

JsonReader JsonReader::object_from(const std::string& key, const Json& replacement) {
  out()[key] = OrderedJson::object();
  return JsonReader(replacement, pointer(key), file_, root_);
}

const Json* JsonReader::take(const std::string& key) { return has(key) ? &field(key) : nullptr; }

std::vector<JsonReader> JsonReader::objects(const std::string& key, bool required_nonempty) {
  std::vector<JsonReader> out;
  this->out()[key] = OrderedJson::array();
  if (!has(key)) {
    if (required_nonempty) fail(key, "is required: a non-empty array of objects");
    return out;
  }
  const Json& j = field(key);
  if (!j.is_array()) fail(key, fmt::format("expected an array of objects, got {}", json_type(j)));
  if (required_nonempty && j.empty()) fail(key, "expected a non-empty array of objects, got []");
  for (std::size_t i = 0; i < j.size(); ++i) this->out()[key].push_back(OrderedJson::object());
  for (std::size_t i = 0; i < j.size(); ++i)
    out.push_back(JsonReader(j[i], pointer(key) + "/" + std::to_string(i), file_, root_));
  return out;
}

namespace {

std::vector<double> read_list(const JsonReader& r, const std::string& key, const Json& j, const ParamSpec& spec) {
  if (!j.is_array()) r.fail_path(key, fmt::format("expected an array of numbers, got {}", json_type(j)));
  std::vector<double> out;
  for (std::size_t i = 0; i < j.size(); ++i) {
    if (!j[i].is_number() || !std::isfinite(j[i].get<double>()) || j[i].get<double>() < spec.min ||
        j[i].get<double>() > spec.max)
      r.fail_path(key + "/" + std::to_string(i),
             fmt::format("expected a number in [{}, {}], {}", number_text(spec.min), number_text(spec.max), got(j[i])));
    out.push_back(j[i].get<double>());
  }
  if (out.size() > 1'000'000) r.fail_path(key, "too many entries (at most 1000000)");
  return out;
}

}  // namespace

Params JsonReader::params(const std::vector<ParamSpec>& schema) {
  Params p;
  for (const ParamSpec& spec : schema) {
    const bool present = has(spec.name);
    if (!present && !spec.default_value) {
      if (spec.derived.empty() && (spec.kind == ParamKind::integer || spec.kind == ParamKind::path))
        fail(spec.name, fmt::format("is required: {}", spec.describe()));
      continue;  // optional list / derived value: the component decides
    }
    switch (spec.kind) {
      case ParamKind::integer: {
        auto def = spec.default_value ? std::get<std::int64_t>(*spec.default_value) : 0;
        p.set(spec.name, integer(spec.name, def, std::int64_t(spec.min), std::int64_t(spec.max)));
        break;
      }
      case ParamKind::real:
        p.set(spec.name, real(spec.name, std::get<double>(*spec.default_value), spec.min, spec.max));
        break;
      case ParamKind::boolean:
        p.set(spec.name, boolean(spec.name, std::get<bool>(*spec.default_value)));
        break;
      case ParamKind::choice:
        p.set(spec.name, choice(spec.name, spec.choices));
        break;
      case ParamKind::real_list: {
        auto v = read_list(*this, spec.name, field(spec.name), spec);
        out()[spec.name] = v;
        p.set(spec.name, std::move(v));
        break;
      }
      case ParamKind::path: {
        const Json& j = field(spec.name);
        if (!j.is_string() || j.get<std::string>().empty())
          fail(spec.name, fmt::format("expected a file path (a non-empty string), {}", got(j)));
        out()[spec.name] = j.get<std::string>();
        p.set(spec.name, j.get<std::string>());
        break;
      }
      case ParamKind::real_matrix: {
        const Json& j = field(spec.name);
        if (!j.is_array()) fail(spec.name, fmt::format("expected an array of arrays of numbers, got {}", json_type(j)));
        RealMatrix m;
        for (std::size_t i = 0; i < j.size(); ++i) m.push_back(read_list(*this, spec.name + "/" + std::to_string(i), j[i], spec));
        out()[spec.name] = m;
        p.set(spec.name, std::move(m));
        break;
      }
    }
  }
  return p;
}

void JsonReader::finish() const {
  for (const auto& [key, _] : object_.items()) {
    if (read_.count(key)) continue;
    std::vector<std::string> valid;
    for (const auto& [k, _v] : out().items()) valid.push_back(k);
    fail(key, fmt::format("unknown key '{}'; valid keys here are: {}", excerpt(key),
                          valid.empty() ? std::string("none") : fmt::format("{}", fmt::join(valid, ", "))));
  }
}

}  // namespace moesim
