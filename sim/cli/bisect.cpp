#include "bisect.hpp"

#include <cmath>

namespace moesim::cli {

BisectResult bisect_smallest(double low, double high, double tolerance, bool integer,
                             const std::function<bool(double)>& holds) {
  if (integer) {
    low = std::ceil(low);
    high = std::floor(high);
    tolerance = 1;
  }
  int evaluations = 2;
  if (!holds(high)) return {high, 1, false};
  if (holds(low)) return {low, evaluations, true};
  // Invariant: the constraint fails at low and holds at high.
  while (high - low > tolerance) {
    double mid = low + (high - low) / 2;
    if (integer) mid = std::floor(mid);
    ++evaluations;
    (holds(mid) ? high : low) = mid;
  }
  return {high, evaluations, true};
}

}  // namespace moesim::cli
