#pragma once
// Records named per-step statistics of every layer and accumulates the run
// summary (MODEL.md §7, §9). Memory grows only with recorded steps and
// layers, never with tokens.
#include <memory>
#include <span>
#include <vector>

#include "moesim/cluster.hpp"
#include "moesim/components.hpp"
#include "moesim/result.hpp"

namespace moesim {

struct StepLosses {
  double quality = 0.0;         // mean task loss ℓ of the step
  std::vector<double> balance;  // one value per balancer, in strategy order
};

class Recorder {
 public:
  // `series_names`: one per balancer of the strategy (every layer has the same balancers).
  Recorder(const Scenario& scenario, const std::vector<std::unique_ptr<Balancer>>& balancers);
  // One layer of the current step, after its routing, drops and device loads.
  void record_layer(int layer, const StepData& data, std::span<const float> bias, const StepLosses& losses);
  // The placement that served the step (record.placement_history): replicas per expert.
  void record_placement(int layer, int step, const std::vector<int>& replicas);
  // The whole step, after every layer: timing and the per-step rows.
  void end_step(int step, const StepTiming& timing);
  // `bias`: each layer's final bias.
  Result finish(const std::vector<std::vector<float>>& bias);

 private:
  // Running totals of one layer.
  struct LayerTotals {
    double maxvio_batch_sum = 0, maxvio_seq_sum = 0, quality_window_sum = 0, rank_imbalance_sum = 0;
    std::int64_t dropped = 0, fully_dropped = 0, seqs_with_drops = 0, protected_drops = 0;
    std::vector<double> routed_total, processed_total, device_total, routed_window, processed_window;
    // This step's values, for the series.
    double vio_batch = 0, vio_seq = 0, quality = 0, rank_imbalance = 0;
    std::int64_t step_dropped = 0, step_fully_dropped = 0;
    std::vector<double> routed, processed, device_load, device_dropped;
    std::vector<double> balance;
    std::vector<double> bias, replicas;  // record.bias_trajectory / placement_history
    double bias_min = 0, bias_max = 0, bias_sum = 0;
  };

  bool recorded(int step) const { return step % sc_.record.every == 0; }
  void record_timing(const StepTiming& timing);
  void record_timeline(const StepTiming& timing);

  const Scenario& sc_;
  std::vector<std::string> loss_series_;  // per balancer; empty: not recorded
  std::vector<LayerTotals> layers_;
  Result result_;
  int steps_seen_ = 0;
  double step_time_sum_ = 0, idle_sum_ = 0, bytes_intra_ = 0, bytes_inter_ = 0;
  Matrix timeline_;  // the last step's critical-device schedule, one row
  double critical_device_ = 0;
};

}  // namespace moesim
