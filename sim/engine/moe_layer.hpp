#pragma once
// One MoE layer of a strategy's model (MODEL.md §9): everything that differs
// from layer to layer — router weights, competence, bias, balancer state,
// dropper and placement — owned together, so the step pipeline loops over
// layers without threading a layer index through every component.
#include <memory>
#include <vector>

#include "../learn/learner.hpp"
#include "../route/router.hpp"
#include "moesim/components.hpp"
#include "moesim/scenario.hpp"

namespace moesim {

class MoeLayer {
 public:
  MoeLayer(const Scenario& sc, const StrategySpec& strategy, int layer);

  // The layer's seed sub-streams: layer 0 keeps the single-layer model's.
  Router router;
  Learner learner;
  std::unique_ptr<RoutingConstraint> constraint;
  std::unique_ptr<Dropper> dropper;
  std::vector<std::unique_ptr<Balancer>> balancers;
  std::unique_ptr<Placement> placement;
  PlacementMap map;
  ReplicaIndex replicas;                    // `map`, indexed for lookups by token
  std::vector<std::int32_t> expert_device;  // E: first replica's device under `map`
  std::vector<float> bias;                  // E: the selection bias b
  std::vector<std::uint8_t> protected_seq;  // B: sequences the dropper never drops from
  double padded = 0;                        // compute slots per expert with capacity padding

  // Recomputes expert_device and replicas after the placement changed.
  void placed();
  // Fills `data` with this layer's routing of the source's tokens of `step`
  // (MODEL.md §2): the source's output, then logits, scores and top-k
  // selection as far as the source leaves them to the router.
  void route(TokenSource& source, int step, int layer, StepData& data) const;

 private:
  // route() for a source of hidden vectors: logits, scores and selection
  // fused per chunk of tokens (and generation too, by sequence).
  void route_hidden(TokenSource& source, int step, int layer, StepData& data) const;
};

}  // namespace moesim
