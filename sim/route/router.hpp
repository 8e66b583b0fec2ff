#pragma once
// The router (MODEL.md §2): logits z = W·x, scores s = softmax(z) or
// sigmoid(z), top-k selection over s + b within the allowed experts, and gate
// weights from the unbiased scores.
#include <span>
#include <vector>

#include "moesim/components.hpp"
#include "moesim/placement.hpp"
#include "moesim/scenario.hpp"

namespace moesim {

class Router {
 public:
  // Layer `layer` draws its initial weights from its own seed sub-stream.
  Router(const Scenario& scenario, std::uint64_t seed, int layer = 0);

  void logits(StepData& data) const;  // z = W·x (sources that give hidden vectors)
  // z rows of tokens [t0, t0 + n), n ≤ kLogitsBlock, from their hidden
  // vectors x: the product by itself, as route_tokens runs it on rows that
  // stay in cache (BM_GatingInCache times it so).
  void logits_block(const float* x, int n, float* z) const;
  static constexpr int kLogitsBlock = 48;
  void scores(StepData& data) const;  // s = f(z)
  // Fills expert, affinity and gate; `constraint` may restrict the choice,
  // seeing each expert on the device of the replica that serves the token
  // (`replicas`, the layer's placement; data.expert_device must hold each
  // expert's first-replica device).
  void select(StepData& data, std::span<const float> bias, const RoutingConstraint& constraint,
              const ReplicaIndex& replicas) const;

  // Per-thread buffers of route_tokens, reused from call to call.
  struct Scratch {
    std::vector<float> z, s, biased;
    std::vector<std::int32_t> device_row;  // a token's replica devices, where ReplicaIndex has no table of them
  };
  // Logits, scores and selection of tokens [t0, t1) of `data` (x written),
  // a cache-sized block at a time: the rows of tokens below data.score_rows
  // are stored in data.z and data.s, the others only pass through `scratch`.
  // The same results as logits, scores and select. Returns false if the
  // constraint allowed some token fewer than top_k experts (see select).
  // Called concurrently on disjoint tokens.
  bool route_tokens(StepData& data, int t0, int t1, std::span<const float> bias, const RoutingConstraint& constraint,
                    const ReplicaIndex& replicas, Scratch& scratch) const;
  // Throws the internal error of a constraint that broke its contract.
  void check_selection(bool complete) const;

  // Router weights stored transposed, d×E (row i = input dimension i), so
  // z_t = Σ_i x_{t,i}·W[i,:] is a contiguous, vectorisable axpy over experts.
  std::vector<float>& weights() { return W_; }
  const Shape& shape() const { return shape_; }

 private:
  // One token's selection from its scores s; false if short (see select).
  bool select_token(StepData& data, int t, const float* s, std::span<const float> bias,
                    const RoutingConstraint& constraint, const ReplicaIndex& replicas, bool replicated,
                    Scratch& scratch) const;
  // Whether the constraint must see each token's own row of devices.
  bool replicated(const RoutingConstraint& constraint, const ReplicaIndex& replicas) const;

  Shape shape_;
  ModelSpec model_;
  std::vector<float> W_;
};

}  // namespace moesim
