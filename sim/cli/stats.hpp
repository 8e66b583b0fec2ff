#pragma once
// Seed statistics for `compare`, `search` and the plots: mean and a Student-t
// 95% confidence interval over independent seeds.
#include <span>

namespace moesim::cli {

// Two-sided Student-t quantile: t such that P(|T_df| ≤ t) = level (df ≥ 1).
double student_t_quantile(double level, int df);

struct Interval {
  int n = 0;
  double mean = 0, half_width = 0;  // half_width 0 when n < 2 (no interval)
  double low() const { return mean - half_width; }
  double high() const { return mean + half_width; }
};

// mean ± t_{0.975, n−1} · s/√n with s the sample standard deviation (n − 1).
Interval mean_interval(std::span<const double> values, double level = 0.95);

}  // namespace moesim::cli
