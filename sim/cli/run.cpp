// moesim run SCENARIO [-o DIR] [--strategy NAME]... [--set PATH=VALUE]... [--seeds LIST] [--threads N] [--quiet]
//            [--trace-out FILE]
#include <fmt/format.h>

#include "commands.hpp"
#include "moesim/atomic_file.hpp"
#include "moesim/error.hpp"
#include "moesim/result.hpp"
#include "moesim/routing_trace.hpp"
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
      ("quiet,q", po::bool_switch(), "no progress and no list of written files")
      ("trace-out", po::value<std::string>(),
       "also write every token's routing in every layer, of the first strategy run (and first seed), as a pairs "
       "JSONL trace (one token per line: [[layer, expert], ...]); overrides record.trace");
  po::positional_options_description positional;
  positional.add("scenario", 1);
  po::variables_map vm;
  if (!parse_options("run", args, options, positional, vm)) return 0;
  set_threads(vm);

  // Each seed is one more --set /seed=N, so the result echoes it like any other value.
  std::vector<std::vector<std::string>> runs{strings(vm, "set")};
  const bool seeded = vm.count("seeds") > 0;
  if (seeded) {
    runs.clear();
    for (const auto seed : parse_seeds(vm["seeds"].as<std::string>())) {
      runs.push_back(strings(vm, "set"));
      runs.back().push_back(fmt::format("/seed={}", seed));
    }
  }
  std::vector<Scenario> scenarios;
  for (const auto& sets : runs) {  // all checked before any runs
    scenarios.push_back(load_scenario(vm["scenario"].as<std::string>(), sets));
    select_strategies(scenarios.back(), strings(vm, "strategy"));
  }
  const bool quiet = vm["quiet"].as<bool>();
  const std::string dir = vm["output"].as<std::string>();

  // Every result (and the trace) is staged and committed once all have run:
  // a later strategy that fails leaves no result of this run behind.
  OutputBatch batch;
  const Scenario& first = scenarios[0];
  const std::string trace_path = vm.count("trace-out") ? vm["trace-out"].as<std::string>() : first.record.trace;
  const std::size_t trace = trace_path.empty() ? 0 : batch.begin(trace_path);
  std::string lines;  // one step's lines, reused
  const RoutingFn write_trace = [&](int, std::span<const std::int32_t> expert) {
    const std::size_t per_token = first.layer_ids.size() * std::size_t(first.shape.top_k);
    lines.clear();
    for (std::size_t t = 0; t < expert.size() / per_token; ++t)
      append_pairs_line(lines, first.layer_ids, &expert[t * per_token], first.shape.top_k);
    batch.append(trace, lines);
  };

  const std::size_t total = scenarios.size() * first.strategies.size();
  std::size_t done = 0;
  for (const Scenario& sc : scenarios) {
    for (const StrategySpec& st : sc.strategies) {
      const bool traced = !trace_path.empty() && done == 0;
      const std::string label = seeded ? fmt::format("[{}/{}] {} seed {}", ++done, total, st.name, sc.seed)
                                       : fmt::format("[{}/{}] {}", ++done, total, st.name);
      Progress progress(!quiet, label, sc.steps, stderr_is_terminal());
      const Result result = simulate_or_fail(sc, st, fmt::format("strategy '{}'", st.name),
                                             [&](int steps) { progress.update(steps); },
                                             traced ? write_trace : RoutingFn{});
      progress.finish();
      const std::string subdir = seeded ? fmt::format("{}/{}/seed-{}", dir, sc.name, sc.seed) : "";
      if (seeded) batch.add(fmt::format("{}/{}.json", subdir, st.name), result_text(sc, st, result));
      else write_result(batch, dir, sc, st, result);
    }
  }
  for (const std::string& path : batch.commit())
    if (!quiet) fmt::print("wrote {}\n", path);
  return 0;
}

}  // namespace moesim::cli
