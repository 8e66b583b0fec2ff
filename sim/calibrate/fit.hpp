#pragma once
// `moesim fit`'s estimator (docs/calibration.md): per-layer expert weights by
// iterative proportional fitting to the data's popularity, and, for a
// per-token trace, the stream's scalar parameters by a Nelder-Mead search on
// the distance between the data's statistics and the stream's, measured on
// samples of the data's size.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "routing_stats.hpp"
#include "stream_model.hpp"

namespace moesim {

struct FitOptions {
  std::uint64_t seed = 1;  // structure seed of the model and seed of every sample
  int samples = 8;         // samples of the data's size for each comparison
  int window = 64;         // batch window (tokens)
  int max_evaluations = 30;  // Nelder-Mead budget (trace fits)
  int top_k = 8;             // k of the model (loads files do not say)
  std::function<void(const std::string&)> log;  // progress lines (may be empty)
};

// One statistic: the data's value and the fitted stream's over samples.
struct StatComparison {
  std::string name;
  double data = 0.0, mean = 0.0, sd = 0.0;
};

struct FitResult {
  StreamModel model;
  RoutingStats data;
  std::vector<StatComparison> stats;   // summary statistics, data vs fitted
  std::vector<double> total_variation; // per layer: data popularity vs the fitted stream's expected popularity
  std::vector<double> max_over_mean;   // per layer: the fitted stream's, from its expected popularity
  std::int64_t sample_tokens = 0;      // tokens per sample
  int evaluations = 0;                 // stream evaluations the search used
};

// Multiplies each layer's weights by (target / sampled share)^damping until
// the stream's popularity matches `target` (L × E shares) on a sample of
// `tokens` tokens; experts with target 0 get weight 0.
void fit_weights(StreamModel& model, const RealMatrix& target, std::int64_t tokens, std::int64_t seq_len,
                 std::uint64_t seed, int iterations, double damping = 1.0);

// Data vs stream on `samples` samples of `tokens` tokens (seeds seed+1, …).
void compare(const StreamModel& model, const RoutingStats& data, std::int64_t tokens, const FitOptions& options,
             FitResult& out);

FitResult fit_trace(const RoutingTrace& trace, const FitOptions& options);
// Loads carry popularity only: the per-token structure stays at the
// defaults. Throws InputError (naming `path` and the layer) for loads that
// cannot be top-k counts.
FitResult fit_loads(const LayerLoads& loads, const std::string& path, const FitOptions& options);
void check_loads(const LayerLoads& loads, int top_k, const std::string& path);

}  // namespace moesim
