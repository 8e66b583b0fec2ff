#pragma once
// One serving instance (MODEL.md §10): a cluster with its own size and, per
// MoE layer, its own placement, timing each iteration's tokens with the
// multi-layer step model (§6) and running online EPLB between iterations,
// with the weight migration costed.
#include <memory>
#include <span>
#include <vector>

#include "../cluster/traffic.hpp"
#include "moesim/components.hpp"
#include "moesim/scenario.hpp"

namespace moesim {

struct IterationTiming {
  double time = 0;            // seconds, migration delay included
  double rank_imbalance = 0;  // mean over layers of device max/mean − 1
  double migration_delay = 0; // seconds this iteration waited for weight moves
};

class ServingInstance {
 public:
  ServingInstance(const Scenario& sc, const StrategySpec& strategy, InstanceSize size);
  // Times an iteration of home.size() tokens: `routes` holds each token's
  // expert ids (layers × top_k), `home` its device. Then lets each layer's
  // placement observe the iteration's loads; a changed placement moves
  // expert weights before (blocking) or during (async) the next iteration.
  IterationTiming run(std::span<const std::uint16_t> routes, std::span<const std::int32_t> home);
  int devices() const { return shape_.devices(); }
  double inter_bandwidth() const { return hw_.inter_bandwidth; }
  std::int64_t moved_slots() const { return moved_slots_; }  // expert slots loaded by migrations so far

 private:
  Shape shape_;
  ClusterHardware hw_;
  bool blocking_;
  std::vector<std::unique_ptr<Placement>> placements_;  // per layer
  std::vector<PlacementMap> maps_;
  TrafficBuilder traffic_;
  StepData data_;                    // expert, keep, device loads of the layer being added
  std::vector<double> routed_;       // L×E: each layer's routed assignments per expert this iteration
  std::vector<double> move_bytes_;   // D: weight bytes each device must load before/while the next iteration runs
  int iteration_ = 0;
  std::int64_t moved_slots_ = 0;
};

}  // namespace moesim
