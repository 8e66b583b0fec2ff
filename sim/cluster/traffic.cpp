#include "traffic.hpp"

#include <algorithm>
#include <stdexcept>

namespace moesim {

TrafficBuilder::TrafficBuilder(const Shape& shape, const ClusterHardware& hw) : shape_(shape), hw_(hw) {
  need_.assign(std::size_t(shape.devices()), 0.0);
  node_need_.assign(std::size_t(shape.nodes), 0.0);
  token_devices_.reserve(std::size_t(shape.top_k));
  token_nodes_.reserve(std::size_t(shape.top_k));
  traffic_.devices = shape.devices();
  traffic_.micro_batches = hw.micro_batches;
  traffic_.shared_experts = shape.shared_experts;
}

void TrafficBuilder::begin_step(int layers) {
  StepTraffic& t = traffic_;
  t.layers = layers;
  t.flows.clear();
  t.flow_begin.assign(1, 0);
  t.slot_copies.clear();
  t.slot_begin.clear();
  t.slots_per_device.clear();
  t.home_tokens.assign(std::size_t(t.cells()) * t.devices, 0.0);
  layers_added_ = 0;
}

void TrafficBuilder::add_layer(int layer, StepData& data, const PlacementMap& map, double padded_capacity) {
  if (layer != layers_added_ || layer >= traffic_.layers)
    throw std::logic_error("TrafficBuilder::add_layer: layers must be added in order, within begin_step's count");
  ++layers_added_;
  const int D = shape_.devices(), G = shape_.devices_per_node, k = shape_.top_k, L = shape_.seq_len;
  const int B = shape_.sequences, m = traffic_.micro_batches;
  const bool per_token = hw_.dispatch == DispatchMode::per_token;
  StepTraffic& t = traffic_;
  std::fill(data.device_load.begin(), data.device_load.end(), 0.0);
  std::fill(data.device_dropped.begin(), data.device_dropped.end(), 0.0);
  for (int b = 0; b < m; ++b) {
    const int cell = layer * m + b;
    const std::size_t slots = t.slot_copies.size();
    t.slot_begin.push_back(int(slots));
    t.slots_per_device.push_back(map.slots_per_device);
    t.slot_copies.resize(slots + map.phy2log.size(), padded_capacity > 0 ? padded_capacity / m : 0.0);
    double* slot_copies = &t.slot_copies[slots];
    double* home_tokens = &t.home_tokens[std::size_t(cell) * D];
    // Micro-batch b: sequences [b·B/m, (b+1)·B/m), contiguous.
    const int first = int(static_cast<long long>(b) * B / m), last = int(static_cast<long long>(b + 1) * B / m);
    for (int h = 0; h < D; ++h) {
      std::fill(need_.begin(), need_.end(), 0.0);
      std::fill(node_need_.begin(), node_need_.end(), 0.0);
      // The first sequence ≥ first homed on h (n mod D = h), then every D-th.
      for (int n = first + ((h - first % D) % D + D) % D; n < last; n += D) {
        home_tokens[h] += L;
        for (long long tok = static_cast<long long>(n) * L; tok < static_cast<long long>(n + 1) * L; ++tok) {
          token_devices_.clear();
          token_nodes_.clear();
          for (int r = 0; r < k; ++r) {
            const std::size_t a = std::size_t(tok) * k + r;
            const int slot = map.slot_for(data.expert[a], tok);
            const int dev = map.device_of_slot(slot);
            if (!data.keep[a]) {
              data.device_dropped[dev] += 1.0;
              continue;
            }
            data.device_load[dev] += 1.0;
            if (padded_capacity <= 0) slot_copies[slot] += 1.0;
            // DeepEP sends one copy per destination device (and per node when forwarding).
            const bool new_device = std::find(token_devices_.begin(), token_devices_.end(), dev) == token_devices_.end();
            const int node = dev / G;
            const bool new_node = std::find(token_nodes_.begin(), token_nodes_.end(), node) == token_nodes_.end();
            if (new_device) token_devices_.push_back(dev);
            if (new_node) token_nodes_.push_back(node);
            if (!per_token || new_device) need_[dev] += 1.0;
            if (!per_token || new_node) node_need_[node] += 1.0;
          }
        }
      }
      emit_flows(h);
    }
    t.flow_begin.push_back(int(t.flows.size()));
  }
}

void TrafficBuilder::emit_flows(int h) {
  const int G = shape_.devices_per_node, home_node = h / G;
  std::vector<TrafficFlow>& flows = traffic_.flows;
  for (int node = 0; node < shape_.nodes; ++node) {
    if (node == home_node || !hw_.forwarding) {
      for (int e = node * G; e < (node + 1) * G; ++e)
        if (e != h && need_[e] > 0) flows.push_back({h, e, TrafficFlow::direct, 0, need_[e], false});
      continue;
    }
    if (node_need_[node] == 0) continue;
    // One IB crossing to the relay, the node's device with h's local index.
    const int relay = node * G + h % G;
    const std::size_t parent = flows.size();
    flows.push_back({h, relay, TrafficFlow::to_relay, 0, node_need_[node], need_[relay] > 0});
    for (int e = node * G; e < (node + 1) * G; ++e)
      if (e != relay && need_[e] > 0) flows.push_back({relay, e, TrafficFlow::fan_out, 0, need_[e], false});
    flows[parent].children = int(flows.size() - parent - 1);
  }
}

}  // namespace moesim
