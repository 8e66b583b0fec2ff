#include "moe_layer.hpp"

#include <algorithm>

namespace moesim {

namespace {

template <class Interface>
std::unique_ptr<Interface> build(const ComponentSpec& spec, const Shape& shape) {
  return Registry<Interface>::instance().find(spec.type)->make(spec.params, shape);
}

}  // namespace

MoeLayer::MoeLayer(const Scenario& sc, const StrategySpec& strategy, int layer)
    : router(sc, sc.seed, layer),
      learner(sc, sc.seed, layer),
      constraint(build<RoutingConstraint>(strategy.routing, sc.shape)),
      dropper(build<Dropper>(strategy.dropper, sc.shape)),
      placement(build<Placement>(strategy.placement, sc.shape)),
      bias(std::size_t(sc.shape.experts), 0.0f) {
  const Shape& shape = sc.shape;
  for (const auto& b : strategy.balancers) balancers.push_back(build<Balancer>(b, shape));
  map = placement->initial(shape);
  placed();
  padded = dropper->padded_capacity(shape);
  protected_seq = dropper->protected_sequences(shape);
}

void MoeLayer::placed() {
  expert_device.resize(map.logcnt.size());
  for (std::size_t e = 0; e < expert_device.size(); ++e) expert_device[e] = map.device_of_slot(map.log2phy[e][0]);
}

void MoeLayer::route(TokenSource& source, int step, int layer, StepData& data) const {
  std::copy(expert_device.begin(), expert_device.end(), data.expert_device.begin());
  source.next(step, layer, data);
  if (source.output() == SourceOutput::hidden) router.logits(data);
  if (source.output() != SourceOutput::choices) {
    router.scores(data);
    router.select(data, bias, *constraint, map);
  }
}

}  // namespace moesim
