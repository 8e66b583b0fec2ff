#include <fmt/format.h>

#include <algorithm>

#include "commands.hpp"
#include "moesim/error.hpp"

namespace moesim::cli {

namespace {

// The field most likely at fault for a diverged router: the learning rate or
// a loss weight, whichever is further beyond its stable range. Plain SGD
// needs lr·alpha ≲ 2.5 (MODEL.md §3), with lr's defaults 25 (sigmoid) and
// 15 (softmax): lr counts as lr / default, a weight as weight·default / 2.5.
std::string divergence_field(const Scenario& scenario, const StrategySpec& strategy) {
  constexpr double kStableProduct = 2.5;
  const double default_lr = scenario.model.score == ScoreFunction::sigmoid ? 25.0 : 15.0;
  std::string field = "/model/lr";
  double worst = scenario.model.lr / default_lr;
  for (const ComponentSpec& b : strategy.balancers)
    for (const char* weight : {"alpha", "beta"})
      if (b.params.has(weight) && b.params.real(weight) * default_lr / kStableProduct > std::max(worst, 1.0)) {
        worst = b.params.real(weight) * default_lr / kStableProduct;
        field = b.pointer + "/" + weight;
      }
  return field;
}

}  // namespace

Result simulate_or_fail(const Scenario& scenario, const StrategySpec& strategy, const std::string& what,
                        const ProgressFn& progress, const RoutingFn& on_routing) {
  try {
    return simulate(scenario, strategy, progress, on_routing);
  } catch (const DivergenceError& e) {
    throw InputError(scenario.file, divergence_field(scenario, strategy), fmt::format("{}: {}", what, e.what()));
  }
}

}  // namespace moesim::cli
