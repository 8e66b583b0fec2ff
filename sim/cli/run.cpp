// moesim run SCENARIO [-o DIR] [--strategy NAME]... [--set PATH=VALUE]... [--threads N] [--quiet] [--trace-out FILE]
#include <fmt/format.h>

#include "commands.hpp"
#include "moesim/atomic_file.hpp"
#include "moesim/error.hpp"
#include "moesim/routing_trace.hpp"
#include "moesim/result.hpp"
#include "moesim/simulation.hpp"
#include "options.hpp"
#include "progress.hpp"

namespace moesim::cli {

int run_command(const Args& args) {
  po::options_description options("Options");
  options.add_options()
      ("scenario", po::value<std::string>()->required(), "scenario file (JSON, // comments allowed)")
      ("output,o", po::value<std::string>()->default_value("results"), "output directory; results go to DIR/<scenario>/<strategy>.json")
      ("strategy", po::value<std::vector<std::string>>(), "run only this strategy (repeatable)")
      ("set", po::value<std::vector<std::string>>(), "override a scenario value by JSON pointer, e.g. --set /steps=50 (repeatable)")
      ("threads", po::value<int>(), "worker threads (default: all cores); results do not depend on it")
      ("quiet,q", po::bool_switch(), "no progress bar and no list of written files")
      ("trace-out", po::value<std::string>(),
       "also write every token's routing in every layer, of the first strategy run, as a pairs JSONL trace "
       "(one token per line: [[layer, expert], ...]); overrides record.trace");
  po::positional_options_description positional;
  positional.add("scenario", 1);
  po::variables_map vm;
  if (!parse_options("run", args, options, positional, vm)) return 0;
  set_threads(vm);

  auto strings = [&](const char* key) {
    return vm.count(key) ? vm[key].as<std::vector<std::string>>() : std::vector<std::string>{};
  };
  Scenario sc = load_scenario(vm["scenario"].as<std::string>(), strings("set"));
  select_strategies(sc, strings("strategy"));
  const bool quiet = vm["quiet"].as<bool>();
  const std::string dir = vm["output"].as<std::string>();

  // Every strategy's result is staged and committed once all have run: a
  // later strategy that fails leaves no result of this run behind.
  OutputBatch batch;
  const std::string trace_path = vm.count("trace-out") ? vm["trace-out"].as<std::string>() : sc.record.trace;
  const std::size_t trace = trace_path.empty() ? 0 : batch.begin(trace_path);
  std::string lines;  // one step's lines, reused
  const RoutingFn write_trace = [&](int, std::span<const std::int32_t> expert) {
    const std::size_t per_token = sc.layer_ids.size() * std::size_t(sc.shape.top_k);
    lines.clear();
    for (std::size_t t = 0; t < expert.size() / per_token; ++t)
      append_pairs_line(lines, sc.layer_ids, &expert[t * per_token], sc.shape.top_k);
    batch.append(trace, lines);
  };
  for (std::size_t i = 0; i < sc.strategies.size(); ++i) {
    const StrategySpec& st = sc.strategies[i];
    Progress progress(!quiet && stderr_is_terminal(),
                      fmt::format("[{}/{}] {}", i + 1, sc.strategies.size(), st.name), sc.steps);
    const Result result = simulate_or_fail(sc, st, fmt::format("strategy '{}'", st.name),
                                           [&](int done) { progress.update(done); },
                                           i == 0 && !trace_path.empty() ? write_trace : RoutingFn{});
    progress.finish();
    write_result(batch, dir, sc, st, result);
  }
  for (const std::string& path : batch.commit())
    if (!quiet) fmt::print("wrote {}\n", path);
  return 0;
}

}  // namespace moesim::cli
