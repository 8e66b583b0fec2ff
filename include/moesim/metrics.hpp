#pragma once
// Load-balance and collapse metrics (MODEL.md §7), as pure functions of a
// load vector, plus the catalogue of every summary metric with its meaning.
#include <span>
#include <string>
#include <vector>

namespace moesim {

// MaxVio = (max_i c_i − c̄)/c̄ (Loss-Free Balancing, arXiv 2408.15664 §4.1); 0 when c̄ = 0.
double maxvio(std::span<const double> loads, double mean);
// H(c/Σc)/ln E, in [0, 1]; 1 for a uniform load; 0 when Σc = 0 or E = 1.
double entropy_norm(std::span<const double> loads);
// Coefficient of variation: population standard deviation / mean; 0 when the mean is 0.
double cv(std::span<const double> loads);
// max_i c_i / mean c; 0 when the mean is 0.
double max_over_mean(std::span<const double> loads);
// Rank imbalance as serving reports it: max/mean − 1 of per-device loads; 0 when the mean is 0.
double rank_imbalance(std::span<const double> device_loads);
// Experts whose load is below `threshold` (MODEL.md: processed < 1% of c̄).
int dead_experts(std::span<const double> loads, double threshold);
// Share of the total load carried by the ceil(E/10) most loaded experts.
double top10_share(std::span<const double> loads);

struct MetricInfo {
  std::string name;
  std::string description;
  bool lower_is_better;
};
// Every summary metric, in result-file order.
const std::vector<MetricInfo>& metric_catalog();
const MetricInfo* find_metric(const std::string& name);

}  // namespace moesim
