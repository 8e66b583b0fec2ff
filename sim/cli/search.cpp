// moesim search SCENARIO --param PATH --low A --high B --metric M (--below V | --above V) ...
// Finds, per strategy and by bisection on one parameter, the smallest value
// at which a summary metric meets a constraint (the mean over --seeds when
// given), e.g. the capacity factor at which drop_rate < 1%. The constraint
// must hold for every value above the answer (a monotone metric).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "bisect.hpp"
#include "commands.hpp"
#include "moesim/error.hpp"
#include "moesim/metrics.hpp"
#include "moesim/simulation.hpp"
#include "options.hpp"
#include "seeds.hpp"

namespace moesim::cli {

int search_command(const Args& args) {
  po::options_description options("Options");
  options.add_options()
      ("scenario", po::value<std::string>()->required(), "scenario file")
      ("param", po::value<std::string>()->required(), "JSON pointer of the searched value (a * matches every array entry)")
      ("low", po::value<double>()->required(), "lower end of the range")
      ("high", po::value<double>()->required(), "upper end of the range (the constraint must hold there)")
      ("metric", po::value<std::string>()->required(), "summary metric of the constraint (see 'moesim list')")
      ("below", po::value<double>(), "constraint: metric < V")
      ("above", po::value<double>(), "constraint: metric > V")
      ("tolerance", po::value<double>(), "stop when the range is this narrow (default (high − low)/1000)")
      ("integer", po::bool_switch(), "the parameter takes whole numbers only")
      ("seeds", po::value<std::string>(), "average the metric over these seeds (1-5, 1,3,7)")
      ("strategy", po::value<std::vector<std::string>>(), "search only for this strategy (repeatable)")
      ("set", po::value<std::vector<std::string>>(), "override a value by JSON pointer (repeatable)")
      ("threads", po::value<int>(), "worker threads (default: all cores); results do not depend on it")
      ("json", po::bool_switch(), "print the answers as JSON")
      ("quiet,q", po::bool_switch(), "no line per evaluation");
  po::positional_options_description positional;
  positional.add("scenario", 1);
  po::variables_map vm;
  if (!parse_options("search", args, options, positional, vm)) return 0;
  set_threads(vm);
  const std::string file = vm["scenario"].as<std::string>(), param = vm["param"].as<std::string>();
  const std::string metric = vm["metric"].as<std::string>();
  const double low = vm["low"].as<double>(), high = vm["high"].as<double>();
  if (!find_metric(metric))
    throw InputError("--metric " + metric, "", "unknown metric; 'moesim list' names every summary metric");
  if (vm.count("below") == vm.count("above"))
    throw InputError("moesim search", "", "give exactly one constraint: --below V or --above V");
  if (!(low < high)) throw InputError("--low", "", fmt::format("expected --low < --high, got {} and {}", low, high));
  if (param.empty() || param[0] != '/') throw InputError("--param " + param, "", "expected a JSON pointer, e.g. /strategies/*/dropper/cf");
  const double tolerance = vm.count("tolerance") ? vm["tolerance"].as<double>() : (high - low) / 1000;
  if (!(tolerance > 0)) throw InputError("--tolerance", "", "expected a positive number");
  const bool below = vm.count("below");
  const double target = below ? vm["below"].as<double>() : vm["above"].as<double>();
  const bool integer = vm["integer"].as<bool>(), quiet = vm["quiet"].as<bool>();
  std::vector<std::uint64_t> seeds;
  if (vm.count("seeds")) seeds = parse_seeds(vm["seeds"].as<std::string>());

  auto scenario_at = [&](double x, std::optional<std::uint64_t> seed) {
    auto sets = strings(vm, "set");
    sets.push_back(fmt::format("{}={}", param, integer ? fmt::format("{}", std::int64_t(x)) : fmt::format("{}", x)));
    if (seed) sets.push_back(fmt::format("/seed={}", *seed));
    return load_scenario(file, sets);
  };
  Scenario base = scenario_at(high, std::nullopt);  // checks the file, the pointer and the range end
  scenario_at(low, std::nullopt);
  select_strategies(base, strings(vm, "strategy"));

  nlohmann::ordered_json answers = nlohmann::ordered_json::array();
  for (const auto& st : base.strategies) {
    double last = 0;
    auto holds = [&](double x) {
      double sum = 0;
      const auto runs = seeds.empty() ? std::vector<std::optional<std::uint64_t>>{std::nullopt}
                                      : std::vector<std::optional<std::uint64_t>>(seeds.begin(), seeds.end());
      for (const auto& seed : runs) {
        Scenario sc = scenario_at(x, seed);
        select_strategies(sc, {st.name});
        const Result r = simulate_or_fail(sc, sc.strategies[0], fmt::format("strategy '{}' at {}={}", st.name, param, x));
        const double* v = r.summary.find(metric);
        if (!v) throw InputError("--metric " + metric, "", "this run's summary has no such metric");
        sum += *v;
      }
      last = sum / double(runs.size());
      const bool ok = below ? last < target : last > target;
      if (!quiet) fmt::print(stderr, "{}: {}={} gives {} {} ({})\n", st.name, param, x, metric, last, ok ? "meets" : "fails");
      return ok;
    };
    const BisectResult r = bisect_smallest(low, high, tolerance, integer, holds);
    if (!r.found)
      throw InputError("--high", "", fmt::format("strategy '{}': {} = {} at {}={} does not meet {} {} {}; raise --high",
                                                 st.name, metric, last, param, high, metric, below ? "<" : ">", target));
    holds(r.value);  // the metric at the answer, for the report
    answers.push_back({{"strategy", st.name}, {"param", param}, {"value", r.value}, {"metric", metric},
                       {"metric_value", last}, {"evaluations", r.evaluations + 1}});
  }
  if (vm["json"].as<bool>()) {
    fmt::print("{}\n", answers.dump(2));
    return 0;
  }
  for (const auto& a : answers)
    fmt::print("{}: smallest {} = {} ({} = {:.6g} {} {}; {} runs)\n", a["strategy"].get<std::string>(), param,
               a["value"].get<double>(), metric, a["metric_value"].get<double>(), below ? "<" : ">", target,
               a["evaluations"].get<int>());
  return 0;
}

}  // namespace moesim::cli
