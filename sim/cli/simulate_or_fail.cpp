#include <fmt/format.h>

#include "commands.hpp"
#include "moesim/error.hpp"

namespace moesim::cli {

Result simulate_or_fail(const Scenario& scenario, const StrategySpec& strategy, const std::string& what,
                        const ProgressFn& progress, const RoutingFn& on_routing) {
  try {
    return simulate(scenario, strategy, progress, on_routing);
  } catch (const DivergenceError& e) {
    throw InputError(scenario.file, "/model/lr", fmt::format("{}: {}", what, e.what()));
  }
}

}  // namespace moesim::cli
