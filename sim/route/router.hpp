#pragma once
// The router (MODEL.md §2): logits z = W·x, scores s = softmax(z) or
// sigmoid(z), top-k selection over s + b within the allowed experts, and gate
// weights from the unbiased scores.
#include <span>
#include <vector>

#include "moesim/components.hpp"
#include "moesim/scenario.hpp"

namespace moesim {

class Router {
 public:
  // Layer `layer` draws its initial weights from its own seed sub-stream.
  Router(const Scenario& scenario, std::uint64_t seed, int layer = 0);

  void logits(StepData& data) const;  // z = W·x (sources that give hidden vectors)
  void scores(StepData& data) const;  // s = f(z)
  // Fills expert, affinity and gate; `constraint` may restrict the choice,
  // seeing each expert on the device of the replica that serves the token
  // (`map`; data.expert_device must hold each expert's first-replica device).
  void select(StepData& data, std::span<const float> bias, const RoutingConstraint& constraint,
              const PlacementMap& map) const;

  // Router weights stored transposed, d×E (row i = input dimension i), so
  // z_t = Σ_i x_{t,i}·W[i,:] is a contiguous, vectorisable axpy over experts.
  std::vector<float>& weights() { return W_; }
  const Shape& shape() const { return shape_; }

 private:
  Shape shape_;
  ModelSpec model_;
  std::vector<float> W_;
};

}  // namespace moesim
