// moesim run SCENARIO [-o DIR] [--strategy NAME]... [--set PATH=VALUE]... [--seeds LIST] [--threads N] [--quiet]
//            [--trace-out FILE] [--requests-out FILE]
#include <fmt/format.h>

#include "commands.hpp"
#include "moesim/atomic_file.hpp"
#include "moesim/error.hpp"
#include "moesim/result.hpp"
#include "moesim/routing_trace.hpp"
#include "moesim/simulation.hpp"
#include "options.hpp"
#include "progress.hpp"
#include "../serve/requests.hpp"
#include "seeds.hpp"

namespace moesim::cli {

namespace {

// --requests-out: one JSON line per request of a serving result.
std::string request_lines(const std::string& strategy, std::uint64_t seed, const Result& result) {
  std::string out;
  const auto* arrival = result.requests.find("arrival");
  if (!arrival) return out;
  const char* fields[] = {"arrival", "prompt", "output", "first_token", "finish", "ttft", "tpot", "e2e"};
  for (std::size_t i = 0; i < arrival->size(); ++i) {
    out += fmt::format("{{\"strategy\": \"{}\", \"seed\": {}, \"id\": {}", strategy, seed, i);
    for (const char* f : fields) {
      const double v = (*result.requests.find(f))[i];
      if (std::string_view(f) == "prompt" || std::string_view(f) == "output") out += fmt::format(", \"{}\": {}", f, std::int64_t(v));
      else out += fmt::format(", \"{}\": {}", f, v);
    }
    out += "}\n";
  }
  return out;
}

}  // namespace

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
       "JSONL trace (one token per line: [[layer, expert], ...]); overrides record.trace")
      ("requests-out", po::value<std::string>(),
       "mode serve: also write one JSON line per request of every strategy run (strategy, seed, id, arrival, "
       "prompt, output, first_token, finish, ttft, tpot, e2e; seconds)");
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

  if (vm.count("requests-out") && !first.serve.enabled)
    throw InputError("--requests-out", "", fmt::format("needs a scenario in mode serve; {} is mode {}", first.file,
                                                       first.train ? "train" : "inference"));
  const std::size_t requests_out = vm.count("requests-out") ? batch.begin(vm["requests-out"].as<std::string>()) : 0;

  const std::size_t total = scenarios.size() * first.strategies.size();
  std::size_t done = 0;
  for (const Scenario& sc : scenarios) {
    for (const StrategySpec& st : sc.strategies) {
      const bool traced = !trace_path.empty() && done == 0;
      const std::string label = seeded ? fmt::format("[{}/{}] {} seed {}", ++done, total, st.name, sc.seed)
                                       : fmt::format("[{}/{}] {}", ++done, total, st.name);
      const bool serving = sc.serve.enabled;
      const auto total_work = serving ? std::min<std::int64_t>(expected_requests(sc.serve), INT32_MAX) : sc.steps;
      Progress progress(!quiet, label, int(total_work), stderr_is_terminal(), 5, serving ? "requests" : "steps");
      const Result result = simulate_or_fail(sc, st, fmt::format("strategy '{}'", st.name),
                                             [&](int steps) { progress.update(steps); },
                                             traced ? write_trace : RoutingFn{});
      progress.finish();
      if (vm.count("requests-out")) batch.append(requests_out, request_lines(st.name, sc.seed, result));
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
