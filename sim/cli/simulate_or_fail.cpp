#include <fmt/format.h>

#include "commands.hpp"
#include "moesim/error.hpp"

namespace moesim::cli {

namespace {

// The field most likely at fault for a diverged router: a loss weight whose
// product with the learning rate breaks plain SGD's stability rule
// (MODEL.md §3: lr·alpha ≲ 2.5), the largest such; else the learning rate.
std::string divergence_field(const Scenario& scenario, const StrategySpec& strategy) {
  constexpr double kStableProduct = 2.5;
  std::string field = "/model/lr";
  double worst = kStableProduct;
  for (const ComponentSpec& b : strategy.balancers)
    for (const char* weight : {"alpha", "beta"})
      if (b.params.has(weight) && scenario.model.lr * b.params.real(weight) > worst) {
        worst = scenario.model.lr * b.params.real(weight);
        field = b.pointer + "/" + weight;
      }
  return field;
}

}  // namespace

Result simulate_or_fail(const Scenario& scenario, const StrategySpec& strategy, const std::string& what,
                        const ProgressFn& progress) {
  try {
    return simulate(scenario, strategy, progress);
  } catch (const DivergenceError& e) {
    throw InputError(scenario.file, divergence_field(scenario, strategy), fmt::format("{}: {}", what, e.what()));
  }
}

}  // namespace moesim::cli
