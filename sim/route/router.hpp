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
  Router(const Scenario& scenario, std::uint64_t seed);

  void logits(StepData& data) const;  // z = W·x (sources that give hidden vectors)
  void scores(StepData& data) const;  // s = f(z)
  // Fills expert, affinity and gate; `constraint` may restrict the choice.
  void select(StepData& data, std::span<const float> bias, const RoutingConstraint& constraint) const;

  std::vector<float>& weights() { return W_; }  // E×d, row e = expert e
  const Shape& shape() const { return shape_; }

 private:
  Shape shape_;
  ModelSpec model_;
  std::vector<float> W_;
};

// Top-k of `value` among `allowed` (nullptr: all), in rank order: descending
// value, ties to the lower index; never the same expert twice. O(E·k), no allocation.
void select_topk(const float* value, const std::uint8_t* allowed, int E, int k, std::int32_t* out);

}  // namespace moesim
