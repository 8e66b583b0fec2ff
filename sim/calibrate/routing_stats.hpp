#pragma once
// The statistics of real routing that the calibrated stream reproduces
// (MODEL.md §11, docs/calibration.md), defined once for `moesim fit` and
// `moesim stats`. Each is measured per layer, then summarised as the mean
// over layers.
#include <cstdint>
#include <string>
#include <vector>

#include "moesim/routing_trace.hpp"

namespace moesim {

struct StatsOptions {
  int window = 64;           // tokens per batch window (batch imbalance)
  std::int64_t seq_len = 0;  // tokens per sequence; 0: the trace is one sequence
};

struct RoutingStats {
  std::vector<std::vector<double>> popularity;  // L × E: each expert's share of the layer's assignments
  std::vector<double> max_over_mean;            // L: max/mean of the layer's expert counts
  std::vector<double> batch_imbalance;          // L: max/mean of expert counts per window, mean over windows
  std::vector<double> locality;                 // L: share of a token's k experts also chosen by the previous token
  std::vector<double> nmi;                      // L − 1: NMI of top-1 experts of layers l and l + 1
  bool per_token = false;                       // false: aggregate loads (only popularity, max/mean)

  double mean_max_over_mean() const;
  double mean_batch_imbalance() const;
  double mean_locality() const;
  double mean_nmi() const;
};

// Per-expert shares of one layer's counts (E entries, not all zero); their
// max/mean is moesim::max_over_mean (metrics.hpp).
std::vector<double> shares(const std::vector<double>& counts);
// Normalised mutual information 2·I(X;Y)/(H(X)+H(Y)) of paired labels in
// [0, n); 0 when both are constant.
double normalised_mutual_information(const std::int32_t* x, const std::int32_t* y, std::int64_t count,
                                     std::int64_t stride, int n);
// Total-variation distance ½·Σ|p − q| of two distributions.
double total_variation(const std::vector<double>& p, const std::vector<double>& q);

RoutingStats measure(const RoutingTrace& trace, const StatsOptions& options = {});
RoutingStats measure(const LayerLoads& loads);

}  // namespace moesim
