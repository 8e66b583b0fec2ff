#include "instance.hpp"

#include <algorithm>

#include "moesim/metrics.hpp"

namespace moesim {

namespace {

Shape instance_shape(const Shape& base, InstanceSize size) {
  Shape s = base;
  s.nodes = size.nodes;
  s.devices_per_node = size.devices_per_node;
  return s;
}

ClusterHardware instance_hardware(ClusterHardware hw, InstanceSize size) {
  hw.nodes = size.nodes;
  hw.devices_per_node = size.devices_per_node;
  return hw;
}

}  // namespace

ServingInstance::ServingInstance(const Scenario& sc, const StrategySpec& strategy, InstanceSize size)
    : shape_(instance_shape(sc.shape, size)),
      hw_(instance_hardware(sc.cluster.hardware, size)),
      blocking_(sc.serve.migration_blocking),
      traffic_(shape_, hw_) {
  const auto* entry = Registry<Placement>::instance().find(strategy.placement.type);
  for (int l = 0; l < shape_.layers; ++l) {
    placements_.push_back(entry->make(strategy.placement.params, shape_));
    maps_.push_back(placements_.back()->initial(shape_));
  }
  data_.device_load.assign(std::size_t(shape_.devices()), 0.0);
  data_.device_dropped.assign(std::size_t(shape_.devices()), 0.0);
  routed_.assign(std::size_t(shape_.layers) * shape_.experts, 0.0);
  move_bytes_.assign(std::size_t(shape_.devices()), 0.0);
}

IterationTiming ServingInstance::run(std::span<const std::uint16_t> routes, std::span<const std::int32_t> home) {
  const int L = shape_.layers, k = shape_.top_k, D = shape_.devices();
  const std::size_t T = home.size();
  traffic_.set_homes(home);
  traffic_.begin_step(L);
  data_.expert.resize(T * k);
  data_.keep.assign(T * k, 1);  // serving drops nothing
  IterationTiming out;
  const std::size_t E = std::size_t(shape_.experts);
  std::fill(routed_.begin(), routed_.end(), 0.0);
  for (int l = 0; l < L; ++l) {
    for (std::size_t t = 0; t < T; ++t)
      for (int r = 0; r < k; ++r) {
        const int e = routes[(t * L + l) * k + r];
        data_.expert[t * k + r] = e;
        routed_[std::size_t(l) * E + std::size_t(e)] += 1.0;
      }
    traffic_.add_layer(l, data_, maps_[std::size_t(l)], 0.0);
    out.rank_imbalance += rank_imbalance(data_.device_load) / L;
  }
  const StepTiming timing = simulate_step(hw_, traffic_.traffic());
  out.time = timing.step_time;

  // Weights moved by the last rebalance: blocking, the iteration starts once
  // the slowest device has loaded them; async, they share each device's
  // inter-node port with the iteration's own traffic.
  double delay = 0;
  for (int d = 0; d < D; ++d) {
    if (move_bytes_[std::size_t(d)] <= 0) continue;
    const double load = move_bytes_[std::size_t(d)] / hw_.inter_bandwidth;
    const double port = blocking_ ? 0.0 : timing.bytes_sent[std::size_t(d)] / hw_.inter_bandwidth;
    delay = std::max(delay, blocking_ ? load : std::max(0.0, load + port - timing.step_time));
  }
  std::fill(move_bytes_.begin(), move_bytes_.end(), 0.0);
  out.migration_delay = delay;
  out.time += delay;

  for (int l = 0; l < L; ++l) {
    PlacementMap& map = maps_[std::size_t(l)];
    const std::vector<int> before = map.phy2log;
    placements_[std::size_t(l)]->observe(iteration_, std::span(routed_).subspan(std::size_t(l) * E, E), map);
    for (std::size_t slot = 0; slot < before.size() && slot < map.phy2log.size(); ++slot)
      if (before[slot] != map.phy2log[slot]) {
        move_bytes_[std::size_t(map.device_of_slot(int(slot)))] += hw_.expert_bytes;
        ++moved_slots_;
      }
  }
  ++iteration_;
  return out;
}

}  // namespace moesim
