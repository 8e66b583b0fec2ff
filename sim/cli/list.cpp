// moesim list : every registered component with its one-line description and parameters.
#include <fmt/format.h>

#include "commands.hpp"
#include "moesim/components.hpp"
#include "moesim/metrics.hpp"
#include "options.hpp"

namespace moesim::cli {

namespace {

template <class Interface>
void print_section(const char* title, const char* where) {
  fmt::print("{} ({}):\n", title, where);
  for (const auto* e : Registry<Interface>::instance().entries()) {
    fmt::print("  {:<16} {}\n", e->name, e->description);
    for (const auto& p : e->params) fmt::print("  {:<16}   - {}\n", "", p.describe());
  }
  fmt::print("\n");
}

}  // namespace

int list_command(const Args& args) {
  po::options_description options("Options");
  po::positional_options_description positional;
  po::variables_map vm;
  if (!parse_options("list", args, options, positional, vm)) return 0;
  print_section<TokenSource>("Token sources", "stream.source");
  print_section<RoutingConstraint>("Routing constraints", "strategies[i].routing.type");
  print_section<Balancer>("Balancers", "strategies[i].balancers[j].type");
  print_section<Dropper>("Droppers", "strategies[i].dropper.type");
  print_section<Placement>("Placements", "cluster.placement");
  fmt::print("Metrics (result summary):\n");
  for (const auto& m : metric_catalog()) {
    // A description may already say which way is better; say it once.
    const bool says = m.description.find(" is better") != std::string::npos;
    fmt::print("  {:<24} {}{}\n", m.name, m.description,
               says ? "" : fmt::format(" ({} is better)", m.lower_is_better ? "lower" : "higher"));
  }
  return 0;
}

}  // namespace moesim::cli
