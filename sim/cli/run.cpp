// moesim run SCENARIO [-o DIR] [--strategy NAME]... [--set PATH=VALUE]... [--seeds LIST] [--threads N] [--quiet]
#include <fmt/format.h>

#include "commands.hpp"
#include "moesim/atomic_file.hpp"
#include "moesim/error.hpp"
#include "moesim/result.hpp"
#include "moesim/simulation.hpp"
#include "options.hpp"
#include "progress.hpp"
#include "seeds.hpp"

namespace moesim::cli {

int run_command(const Args& args) {
  po::options_description options("Options");
  options.add_options()
      ("scenario", po::value<std::string>()->required(), "scenario file (JSON, // comments allowed)")
      ("output,o", po::value<std::string>()->default_value("results"), "output directory; results go to DIR/<scenario>/<strategy>.json")
      ("strategy", po::value<std::vector<std::string>>(), "run only this strategy (repeatable)")
      ("set", po::value<std::vector<std::string>>(), "override a scenario value by JSON pointer, e.g. --set /steps=50 (repeatable)")
      ("seeds", po::value<std::string>(),
       "run each of these seeds (1-5, 1,3,7); results go to DIR/<scenario>/seed-<N>/<strategy>.json")
      ("threads", po::value<int>(), "worker threads (default: all cores); results do not depend on it")
      ("quiet,q", po::bool_switch(), "no progress and no list of written files");
  po::positional_options_description positional;
  positional.add("scenario", 1);
  po::variables_map vm;
  if (!parse_options("run", args, options, positional, vm)) return 0;
  set_threads(vm);

  auto strings = [&](const char* key) {
    return vm.count(key) ? vm[key].as<std::vector<std::string>>() : std::vector<std::string>{};
  };
  // Each seed is one more --set /seed=N, so the result echoes it like any other value.
  std::vector<std::vector<std::string>> runs{strings("set")};
  const bool seeded = vm.count("seeds") > 0;
  if (seeded) {
    runs.clear();
    for (const auto seed : parse_seeds(vm["seeds"].as<std::string>())) {
      runs.push_back(strings("set"));
      runs.back().push_back(fmt::format("/seed={}", seed));
    }
  }
  std::vector<Scenario> scenarios;
  for (const auto& sets : runs) {  // all checked before any runs
    scenarios.push_back(load_scenario(vm["scenario"].as<std::string>(), sets));
    select_strategies(scenarios.back(), strings("strategy"));
  }
  const bool quiet = vm["quiet"].as<bool>();
  const std::string dir = vm["output"].as<std::string>();
  const std::size_t total = scenarios.size() * scenarios[0].strategies.size();
  std::size_t done = 0;
  for (const Scenario& sc : scenarios) {
    for (const StrategySpec& st : sc.strategies) {
      const std::string label =
          seeded ? fmt::format("[{}/{}] {} seed {}", ++done, total, st.name, sc.seed)
                 : fmt::format("[{}/{}] {}", ++done, total, st.name);
      Progress progress(!quiet, label, sc.steps, stderr_is_terminal());
      const Result result = simulate_or_fail(sc, st, fmt::format("strategy '{}'", st.name),
                                             [&](int steps) { progress.update(steps); });
      progress.finish();
      std::string path;
      if (seeded) {
        path = fmt::format("{}/{}/seed-{}/{}.json", dir, sc.name, sc.seed, st.name);
        write_file_atomically(path, result_text(sc, st, result));
      } else {
        path = write_result(dir, sc, st, result);
      }
      if (!quiet) fmt::print("wrote {}\n", path);
    }
  }
  return 0;
}

}  // namespace moesim::cli
