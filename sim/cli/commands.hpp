#pragma once
// The `moesim` commands (FORMATS.md "Command line"). Each takes the arguments
// after its name and returns the exit code; InputError propagates to main.
#include <string>
#include <vector>

#include "moesim/simulation.hpp"

namespace moesim::cli {

using Args = std::vector<std::string>;

struct Command {
  const char* name;
  const char* synopsis;  // usage line
  const char* summary;   // one line
  int (*run)(const Args&);
};

const std::vector<Command>& commands();
const Command* find_command(const std::string& name);

int run_command(const Args&);
int validate_command(const Args&);
int compare_command(const Args&);
int list_command(const Args&);
int place_command(const Args&);
int sweep_command(const Args&);
int search_command(const Args&);
int help_command(const Args&);
int fit_command(const Args&);
int stats_command(const Args&);

// simulate() for a command: a diverging router becomes an input error on the
// field most likely at fault (a balancer's alpha or beta, else /model/lr),
// prefixed with `what` (e.g. "strategy 'bias'").
Result simulate_or_fail(const Scenario& scenario, const StrategySpec& strategy, const std::string& what,
                        const ProgressFn& progress = {}, const RoutingFn& on_routing = {});

// `place --loads`: a JSON array of layers of per-expert loads (InputError if malformed).
std::vector<std::vector<double>> read_loads(const std::string& path);

// Prints a command's usage and option help to stdout.
void print_usage(const Command& command, const std::string& options_help);

}  // namespace moesim::cli
