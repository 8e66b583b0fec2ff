#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "moesim/error.hpp"
#include "moesim/input.hpp"
#include "moesim/result.hpp"

namespace moesim {

ResultSummary read_result_summary(const std::string& path) {
  // Only the echoed configuration and the summary are kept: a long run's
  // series never occupy memory here.
  JsonParseOptions options;
  options.keep = [](int depth, const std::string& key) {
    return depth != 1 || (key != "series" && key != "per_step" && key != "final");
  };
  const auto doc = parse_ordered_json_bounded(read_input_file(path, kMaxResultBytes, "result file"), path, options);
  if (!doc.is_object()) throw InputError(path, "", "not a JSON object (is this a moesim result file?)");
  // /2 adds a layer dimension to per_step and final; summary, series and the
  // echoes, all this reads, keep their meaning.
  if (!doc.contains("schema") || (doc["schema"] != "moesim.result/1" && doc["schema"] != "moesim.result/2"))
    throw InputError(path, "/schema", "expected \"moesim.result/1\" or \"moesim.result/2\" (a moesim result file)");
  auto need = [&](const char* pointer, auto check, const char* what) -> const nlohmann::ordered_json& {
    const auto ptr = nlohmann::ordered_json::json_pointer(pointer);
    if (!doc.contains(ptr) || !check(doc[ptr])) throw InputError(path, pointer, fmt::format("expected {}", what));
    return doc[ptr];
  };
  ResultSummary r;
  r.path = path;
  r.scenario = need("/scenario/name", [](const auto& j) { return j.is_string(); }, "a string").template get<std::string>();
  r.strategy = need("/strategy/name", [](const auto& j) { return j.is_string(); }, "a string").template get<std::string>();
  auto configuration = nlohmann::ordered_json::array({doc["scenario"], doc["strategy"]});
  if (doc.contains("inputs")) configuration.push_back(doc["inputs"]);  // see configuration_text
  r.configuration = configuration.dump();
  const auto& summary = need("/summary", [](const auto& j) { return j.is_object(); }, "an object");
  for (const auto& [name, value] : summary.items()) {
    if (!value.is_number()) throw InputError(path, "/summary/" + name, "expected a number");
    r.summary[name] = finite_number(value.get<double>(), -1e300, 1e300, path, "/summary/" + name, "value");
  }
  return r;
}

}  // namespace moesim
