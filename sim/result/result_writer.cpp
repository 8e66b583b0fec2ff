// Result file `moesim.result/2` (FORMATS.md, "Additions"). Key order is fixed
// by insertion order, so the same scenario and seed give byte-identical files.
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
  if (!std::isfinite(v)) throw std::logic_error(fmt::format("non-finite value in {}", where));
  return v;
}

OrderedJson numbers(const std::vector<double>& v, const std::string& where) {
  OrderedJson a = OrderedJson::array();
  for (double x : v) a.push_back(finite(x, where));
  return a;
}
OrderedJson numbers(const Matrix& m, const std::string& where) {
  OrderedJson a = OrderedJson::array();
  for (const auto& row : m) a.push_back(numbers(row, where));
  return a;
}
OrderedJson numbers(const std::vector<Matrix>& m, const std::string& where) {
  OrderedJson a = OrderedJson::array();
  for (const auto& row : m) a.push_back(numbers(row, where));
  return a;
}

template <class T>
OrderedJson columns(const NamedColumns<T>& c, const std::string& where) {
  OrderedJson o = OrderedJson::object();
  for (const auto& [name, v] : c.columns()) o[name] = numbers(v, where + "/" + name);
  return o;
}

// The files the scenario read, by size and content hash: a resumed sweep
// re-runs a configuration whose trace was regenerated at the same path.
OrderedJson inputs_json(const Scenario& sc) {
  OrderedJson a = OrderedJson::array();
  for (const InputFile& f : sc.inputs) a.push_back({{"path", f.path}, {"size", f.size}, {"hash", f.hash}});
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
  if (!sc.inputs.empty()) doc["inputs"] = inputs_json(sc);
  doc["layer_ids"] = r.layer_ids;
  OrderedJson& summary = doc["summary"] = OrderedJson::object();
  for (const auto& [name, v] : r.summary.columns()) summary[name] = finite(v, "summary/" + name);
  doc["summary_by_layer"] = columns(r.summary_by_layer, "summary_by_layer");
  doc["series"] = columns(r.series, "series");
  if (doc["series"].contains("step"))  // step numbers are integers: 10, not 10.0
    for (auto& x : doc["series"]["step"]) x = static_cast<std::int64_t>(x.get<double>());
  doc["series_by_layer"] = columns(r.series_by_layer, "series_by_layer");
  if (!r.per_step.columns().empty() || !r.per_step_by_layer.columns().empty()) {
    OrderedJson per_step = columns(r.per_step_by_layer, "per_step");
    OrderedJson whole_step = columns(r.per_step, "per_step");
    for (auto& [name, v] : whole_step.items()) per_step[name] = std::move(v);
    doc["per_step"] = std::move(per_step);
  }
  doc["final"] = columns(r.final, "final");
  if (!r.requests.columns().empty()) doc["requests"] = columns(r.requests, "requests");
  return doc.dump(1) + "\n";
}

std::string configuration_text(const Scenario& sc, const StrategySpec& st) {
  OrderedJson c = OrderedJson::array({OrderedJson::parse(sc.normalized), OrderedJson::parse(st.normalized)});
  if (!sc.inputs.empty()) c.push_back(inputs_json(sc));
  return c.dump();
}

std::string write_result(OutputBatch& batch, const std::string& dir, const Scenario& sc, const StrategySpec& st,
                         const Result& r) {
  const std::string path = fmt::format("{}/{}/{}.json", dir, sc.name, st.name);
  batch.add(path, result_text(sc, st, r));
  return path;
}

}  // namespace moesim
