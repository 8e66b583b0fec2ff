#include "moesim/step.hpp"

namespace moesim {

void StepData::resize(const Shape& shape) {
  const std::size_t T = shape.tokens(), E = shape.experts, k = shape.top_k;
  x.resize(T * shape.hidden);
  domain.assign(T, -1);
  z.resize(T * E);
  s.resize(T * E);
  allowed.resize(T * E);
  expert.resize(T * k);
  gate.resize(T * k);
  affinity.resize(T * k);
  keep.assign(T * k, 1);
  routed.assign(E, 0.0);
  expert_device.resize(E);
  for (std::size_t e = 0; e < E; ++e) expert_device[e] = int(e / (E / shape.devices()));  // contiguous until placed
  processed.assign(E, 0.0);
  device_load.assign(shape.devices(), 0.0);
  device_dropped.assign(shape.devices(), 0.0);
  seq_max_vio.assign(shape.sequences, 0.0);
}

}  // namespace moesim
