#pragma once
// Domain popularity π over steps (MODEL.md §1): Zipf or explicit weights,
// optionally drifting (rotation, schedule) and bursting.
#include <cstdint>
#include <vector>

#include "moesim/params.hpp"
#include "moesim/rng.hpp"

namespace moesim {

class Popularity {
 public:
  // Reads zipf / weights / rotate_every / schedule / schedule_every / burst_*.
  Popularity(const Params& p, int domains);
  // Cumulative distribution of π at `step` (size C, last entry 1).
  const std::vector<double>& cdf(int step);
  // Draws a domain from a cdf.
  static int draw(const std::vector<double>& cdf, Rng& rng);
  // π at `step` (normalised), for tests and reports.
  std::vector<double> weights(int step) const;

 private:
  std::vector<double> base_;   // normalised base weights
  RealMatrix schedule_;
  int schedule_every_ = 0, rotate_every_ = 0;
  int burst_every_ = 0, burst_length_ = 0, burst_domain_ = 0;
  double burst_factor_ = 1.0;
  int cached_step_ = -1;
  std::vector<double> cdf_;
};

}  // namespace moesim
