#pragma once
// Records named per-step statistics and accumulates the run summary
// (MODEL.md §7). Memory grows only with recorded steps, never with tokens.
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
  Recorder(const Scenario& scenario, const std::vector<std::unique_ptr<Balancer>>& balancers);
  void record(const StepData& data, std::span<const float> bias, const StepLosses& losses,
              const std::vector<std::unique_ptr<Balancer>>& balancers, const StepTiming& timing);
  // The placement that served `step` (record.placement_history): replicas per expert.
  void record_placement(int step, const std::vector<int>& replicas);
  Result finish(std::span<const float> bias);

 private:
  const Scenario& sc_;
  std::vector<std::string> loss_series_;  // per balancer; empty: not recorded
  Result result_;
  int steps_seen_ = 0;
  double maxvio_batch_sum_ = 0, maxvio_seq_sum_ = 0, quality_window_sum_ = 0;
  double step_time_sum_ = 0, idle_sum_ = 0, rank_imbalance_sum_ = 0, bytes_intra_ = 0, bytes_inter_ = 0;
  std::int64_t dropped_ = 0, fully_dropped_ = 0, seqs_with_drops_ = 0, protected_drops_ = 0;
  std::vector<double> routed_total_, processed_total_, device_total_;
  std::vector<double> routed_window_, processed_window_;
};

}  // namespace moesim
