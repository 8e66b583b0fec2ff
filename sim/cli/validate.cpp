// moesim validate SCENARIO... : checks scenarios (and the files they name) without running.
#include <fmt/format.h>

#include "commands.hpp"
#include "../serve/requests.hpp"
#include "moesim/error.hpp"
#include "moesim/scenario.hpp"
#include "options.hpp"

namespace moesim::cli {

int validate_command(const Args& args) {
  po::options_description options("Options");
  options.add_options()
      ("scenario", po::value<std::vector<std::string>>()->required(), "scenario files")
      ("set", po::value<std::vector<std::string>>(), "override a value by JSON pointer before checking (repeatable)");
  po::positional_options_description positional;
  positional.add("scenario", -1);
  po::variables_map vm;
  if (!parse_options("validate", args, options, positional, vm)) return 0;
  const auto sets = vm.count("set") ? vm["set"].as<std::vector<std::string>>() : std::vector<std::string>{};
  int bad = 0;
  for (const auto& path : vm["scenario"].as<std::vector<std::string>>()) {
    try {
      Scenario sc = load_scenario(path, sets);
      if (sc.serve.enabled)
        fmt::print("{}: ok ({}, {} strategies, serving {} requests{})\n", path, sc.name, sc.strategies.size(),
                   sc.serve.duration > 0 ? fmt::format("~{}", expected_requests(sc.serve))
                                         : fmt::format("{}", expected_requests(sc.serve)),
                   sc.serve.disaggregated ? " on prefill and decode instances" : "");
      else
        fmt::print("{}: ok ({}, {} strategies, {} steps of {} tokens)\n", path, sc.name, sc.strategies.size(),
                   sc.steps, sc.shape.tokens());
    } catch (const InputError& e) {
      fmt::print(stderr, "moesim: error: {}\n", e.what());
      ++bad;
    }
  }
  return bad == 0 ? 0 : 2;
}

}  // namespace moesim::cli
