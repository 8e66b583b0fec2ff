#pragma once
// Bisection for `moesim search`: the smallest x in [low, high] at which a
// monotone constraint holds (it holds for every x above the answer).
#include <functional>

namespace moesim::cli {

struct BisectResult {
  double value;     // smallest x found meeting the constraint (within tolerance)
  int evaluations;  // calls of `holds`
  bool found;       // false when the constraint fails at `high`
};

// Requires low < high and tolerance > 0. `integer`: only whole numbers are tried, tolerance 1.
BisectResult bisect_smallest(double low, double high, double tolerance, bool integer,
                             const std::function<bool(double)>& holds);

}  // namespace moesim::cli
