#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>

#include "moesim/metrics.hpp"

namespace moesim {

namespace {
double sum(std::span<const double> v) { return std::accumulate(v.begin(), v.end(), 0.0); }
double mean(std::span<const double> v) { return v.empty() ? 0.0 : sum(v) / double(v.size()); }
}  // namespace

double maxvio(std::span<const double> loads, double m) {
  if (loads.empty() || !(m > 0)) return 0.0;
  return (*std::max_element(loads.begin(), loads.end()) - m) / m;
}

double entropy_norm(std::span<const double> loads) {
  const double total = sum(loads);
  if (loads.size() < 2 || !(total > 0)) return 0.0;
  double h = 0.0;
  for (double c : loads)
    if (c > 0) h -= (c / total) * std::log(c / total);
  return h / std::log(double(loads.size()));
}

double cv(std::span<const double> loads) {
  const double m = mean(loads);
  if (!(m > 0)) return 0.0;
  double var = 0.0;
  for (double c : loads) var += (c - m) * (c - m);
  return std::sqrt(var / double(loads.size())) / m;
}

double max_over_mean(std::span<const double> loads) {
  const double m = mean(loads);
  if (!(m > 0)) return 0.0;
  return *std::max_element(loads.begin(), loads.end()) / m;
}

double rank_imbalance(std::span<const double> device_loads) {
  const double m = max_over_mean(device_loads);
  return m > 0 ? m - 1.0 : 0.0;
}

int dead_experts(std::span<const double> loads, double threshold) {
  return int(std::count_if(loads.begin(), loads.end(), [&](double c) { return c < threshold; }));
}

double top10_share(std::span<const double> loads) {
  const double total = sum(loads);
  if (loads.empty() || !(total > 0)) return 0.0;
  std::vector<double> sorted(loads.begin(), loads.end());
  const std::size_t top = (sorted.size() + 9) / 10;  // ceil(E/10)
  std::partial_sort(sorted.begin(), sorted.begin() + top, sorted.end(), std::greater<>());
  return std::accumulate(sorted.begin(), sorted.begin() + top, 0.0) / total;
}

}  // namespace moesim
