#pragma once
// Runs one strategy of a scenario over all steps (the MoE model; knows
// nothing about JSON or files).
#include <functional>
#include <memory>
#include <span>

#include "moesim/result.hpp"
#include "moesim/scenario.hpp"

namespace moesim {

// The router diverged (non-finite weights or loss): the scenario's learning
// rate or loss weights are too large for plain SGD.
class DivergenceError : public std::runtime_error {
 public:
  DivergenceError(int step, const std::string& what) : std::runtime_error(what), step_(step) {}
  int step() const { return step_; }

 private:
  int step_;
};

using ProgressFn = std::function<void(int steps_done)>;
// Sees every step's routing: `expert` holds T × L × k expert ids (token by
// token, each token's layers in order, each layer's k experts in rank order).
using RoutingFn = std::function<void(int step, std::span<const std::int32_t> expert)>;

// Simulates `strategy` on the scenario's token stream and returns its metrics.
Result simulate(const Scenario& scenario, const StrategySpec& strategy, const ProgressFn& progress = {},
                const RoutingFn& on_routing = {});

}  // namespace moesim
