#pragma once
// A serving run (MODEL.md §10): requests served by continuous batching on one
// instance, or prefill and decode instances, each iteration timed by the
// multi-layer step model.
#include "moesim/result.hpp"
#include "moesim/scenario.hpp"
#include "moesim/simulation.hpp"

namespace moesim {

// Serves the scenario's requests with `strategy`; progress counts completed requests.
Result serve(const Scenario& sc, const StrategySpec& strategy, const ProgressFn& progress = {});

}  // namespace moesim
