#pragma once
// Turns a step's kept assignments into what the cluster must move and compute
// (MODEL.md §6): tokens of sequence n start on device n mod D (data-parallel
// attention, as DeepSeek-V3 deploys it); each kept assignment goes to its
// expert's replicas, which share the expert's tokens evenly; shared experts
// run on the token's own device.
#include <vector>

#include "moesim/cluster.hpp"
#include "moesim/placement.hpp"
#include "moesim/step.hpp"

namespace moesim {

class TrafficBuilder {
 public:
  explicit TrafficBuilder(const Shape& shape);
  // Fills the traffic and data.device_load (processed assignments per device
  // after replication). `padded_capacity` > 0 charges every slot that much
  // compute (capacity padding) instead of its actual load.
  const StepTraffic& build(StepData& data, const PlacementMap& map, double padded_capacity);

 private:
  Shape shape_;
  std::vector<double> from_device_;  // D×E kept assignments by source device and expert
  StepTraffic traffic_;
};

}  // namespace moesim
