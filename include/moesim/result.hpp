#pragma once
// What one strategy's run produces (FORMATS.md result file), independent of
// JSON; write_result turns it into `moesim.result/2` (many layers: MODEL.md §9).
#include <string>
#include <utility>
#include <vector>

#include "moesim/atomic_file.hpp"
#include "moesim/scenario.hpp"

namespace moesim {

inline constexpr const char* kResultSchema = "moesim.result/2";
inline constexpr const char* kVersion = "0.1.0";

// Named columns in first-recorded order (OMNeT++-style statistics by name),
// so the output's key order is stable.
template <class T>
class NamedColumns {
 public:
  T& operator[](const std::string& name) {
    for (auto& [n, v] : columns_)
      if (n == name) return v;
    columns_.emplace_back(name, T{});
    return columns_.back().second;
  }
  const std::vector<std::pair<std::string, T>>& columns() const { return columns_; }
  const T* find(const std::string& name) const {
    for (const auto& [n, v] : columns_)
      if (n == name) return &v;
    return nullptr;
  }

 private:
  std::vector<std::pair<std::string, T>> columns_;
};

using Matrix = std::vector<std::vector<double>>;

struct Result {
  std::vector<int> layer_ids;                       // the model's layer ids
  NamedColumns<double> summary;                     // the whole model (MODEL.md §9: means over layers, pooled rates)
  NamedColumns<std::vector<double>> summary_by_layer;  // metric → one value per layer
  NamedColumns<std::vector<double>> series;         // one entry per recorded step; includes "step"
  NamedColumns<Matrix> series_by_layer;             // metric → [layer][recorded step]
  NamedColumns<Matrix> per_step;                    // whole-step rows: [recorded step][device]
  NamedColumns<std::vector<Matrix>> per_step_by_layer;  // [recorded step][layer][expert or device]
  NamedColumns<Matrix> final;                       // [layer][expert or device]
  NamedColumns<std::vector<double>> requests;       // serving: one entry per request, in request order
};

// The parts of a result file that `compare` reads.
struct ResultSummary {
  std::string path, scenario, strategy;
  std::string configuration;  // the echoed scenario and strategy, as compact JSON
  NamedColumns<double> summary;
};
// The same compact JSON for a configuration about to run: equal to a saved
// result's `configuration` exactly when that result came from this scenario
// and strategy (defaults filled in, so spelling does not matter) and the
// same input files (size and hash, the result's `inputs`).
std::string configuration_text(const Scenario&, const StrategySpec&);
// Reads and checks a result file's schema; InputError if it is not one.
ResultSummary read_result_summary(const std::string& path);

// Stages DIR/<scenario>/<strategy>.json in `batch` (written when the batch
// commits, so a run's results appear together or not at all); returns the path.
std::string write_result(OutputBatch& batch, const std::string& dir, const Scenario&, const StrategySpec&,
                         const Result&);
// The result document as text (what write_result writes).
std::string result_text(const Scenario&, const StrategySpec&, const Result&);

}  // namespace moesim
