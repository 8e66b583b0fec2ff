#pragma once
// Router learning (MODEL.md §3): per-expert, per-domain competence κ, the
// per-token task-loss proxy, and one SGD step of the router per training step.
#include <span>
#include <vector>

#include "moesim/components.hpp"
#include "moesim/scenario.hpp"

namespace moesim {

class Learner {
 public:
  Learner(const Scenario& scenario, std::uint64_t seed, int layer = 0);
  // Mean task loss ℓ over the step's tokens. When `grad_selected` (T×k) is
  // non-empty, sets it to task_weight·∂mean(ℓ)/∂s at each token's selected
  // experts (data.expert); ℓ depends on no other score.
  double task_loss(const StepData& data, std::span<float> grad_selected) const;
  // κ update from the tokens each expert processed (drops excluded).
  void update_competence(const StepData& data);
  const std::vector<float>& competence() const { return kappa_; }  // E×C

 private:
  Shape shape_;
  LearningSpec spec_;
  int domains_;
  std::vector<float> kappa_;
  std::vector<double> n_;               // E×C scratch: tokens of domain c processed by expert i
  std::vector<std::int32_t> counts_;    // per thread: its share of n_, counted
};

}  // namespace moesim
