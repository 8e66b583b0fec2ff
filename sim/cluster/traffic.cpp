#include "traffic.hpp"

#include <algorithm>

namespace moesim {

TrafficBuilder::TrafficBuilder(const Shape& shape) : shape_(shape) {
  const int D = shape.devices();
  from_device_.assign(std::size_t(D) * shape.experts, 0.0);
  traffic_.devices = D;
  traffic_.sent.assign(std::size_t(D) * D, 0.0);
  traffic_.compute.assign(D, 0.0);
}

const StepTraffic& TrafficBuilder::build(StepData& data, const PlacementMap& map, double padded_capacity) {
  const int D = shape_.devices(), E = shape_.experts, k = shape_.top_k, L = shape_.seq_len;
  std::fill(from_device_.begin(), from_device_.end(), 0.0);
  std::fill(traffic_.sent.begin(), traffic_.sent.end(), 0.0);
  std::fill(traffic_.compute.begin(), traffic_.compute.end(), 0.0);
  std::fill(data.device_load.begin(), data.device_load.end(), 0.0);
  for (int n = 0; n < shape_.sequences; ++n) {
    double* row = &from_device_[std::size_t(n % D) * E];
    for (std::size_t t = std::size_t(n) * L; t < std::size_t(n + 1) * L; ++t)
      for (int r = 0; r < k; ++r)
        if (data.keep[t * k + r]) row[data.expert[t * k + r]] += 1.0;
    // Shared experts process every token on the device it starts on.
    traffic_.compute[n % D] += double(shape_.shared_experts) * L;
  }
  for (int src = 0; src < D; ++src) {
    for (int e = 0; e < E; ++e) {
      const double count = from_device_[std::size_t(src) * E + e];
      if (count == 0.0) continue;
      for (int rank = 0; rank < map.logcnt[e]; ++rank) {
        const int dst = map.device_of_slot(map.log2phy[e][rank]);
        const double share = replica_share(count, map.logcnt[e], rank);
        traffic_.sent[std::size_t(src) * D + dst] += share;
        data.device_load[dst] += share;
      }
    }
  }
  std::fill(data.device_dropped.begin(), data.device_dropped.end(), 0.0);
  for (int e = 0; e < E; ++e)
    data.device_dropped[map.device_of_slot(map.log2phy[e][0])] += data.routed[e] - data.processed[e];
  for (int d = 0; d < D; ++d)
    traffic_.compute[d] += padded_capacity > 0 ? padded_capacity * map.slots_per_device : data.device_load[d];
  return traffic_;
}

}  // namespace moesim
