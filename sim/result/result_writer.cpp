// Result file `moesim.result/1` (FORMATS.md). Key order is fixed by insertion
// order, so the same scenario and seed give byte-identical files.
#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "moesim/atomic_file.hpp"
#include "moesim/result.hpp"

namespace moesim {

namespace {

using OrderedJson = nlohmann::ordered_json;

// Nothing non-finite is ever written (MODEL.md §7): a NaN here is a bug.
double finite(double v, const std::string& where) {
  if (!std::isfinite(v)) throw std::logic_error(fmt::format("internal error: non-finite value in {}", where));
  return v;
}

OrderedJson numbers(const std::vector<double>& v, const std::string& where) {
  OrderedJson a = OrderedJson::array();
  for (double x : v) a.push_back(finite(x, where));
  return a;
}

}  // namespace

std::string result_text(const Scenario& sc, const StrategySpec& st, const Result& r) {
  OrderedJson doc;
  doc["schema"] = kResultSchema;
  doc["moesim_version"] = kVersion;
  doc["scenario"] = OrderedJson::parse(sc.normalized);
  doc["strategy"] = OrderedJson::parse(st.normalized);
  doc["seed"] = sc.seed;
  OrderedJson& summary = doc["summary"] = OrderedJson::object();
  for (const auto& [name, v] : r.summary.columns()) summary[name] = finite(v, "summary/" + name);
  OrderedJson& series = doc["series"] = OrderedJson::object();
  for (const auto& [name, v] : r.series.columns()) {
    series[name] = numbers(v, "series/" + name);
    if (name == "step")  // step numbers are integers: 10, not 10.0
      for (auto& x : series[name]) x = static_cast<std::int64_t>(x.get<double>());
  }
  if (!r.per_step.columns().empty()) {
    OrderedJson& per_step = doc["per_step"] = OrderedJson::object();
    for (const auto& [name, rows] : r.per_step.columns()) {
      OrderedJson a = OrderedJson::array();
      for (const auto& row : rows) a.push_back(numbers(row, "per_step/" + name));
      per_step[name] = std::move(a);
    }
  }
  OrderedJson& fin = doc["final"] = OrderedJson::object();
  for (const auto& [name, v] : r.final.columns()) fin[name] = numbers(v, "final/" + name);
  return doc.dump(1) + "\n";
}

std::string configuration_text(const Scenario& sc, const StrategySpec& st) {
  return OrderedJson::array({OrderedJson::parse(sc.normalized), OrderedJson::parse(st.normalized)}).dump();
}

std::string write_result(const std::string& dir, const Scenario& sc, const StrategySpec& st, const Result& r) {
  const std::string path = fmt::format("{}/{}/{}.json", dir, sc.name, st.name);
  write_file_atomically(path, result_text(sc, st, r));
  return path;
}

}  // namespace moesim
