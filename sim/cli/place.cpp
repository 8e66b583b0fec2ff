// moesim place --loads FILE --replicas R --groups G --nodes N --devices D
// Prints DeepSeek EPLB's placement for a multi-layer load matrix as JSON
// (phy2log, log2phy, logcnt), so it can be checked against the reference.
#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "moesim/error.hpp"
#include "moesim/input.hpp"
#include "moesim/placement.hpp"
#include "options.hpp"

namespace moesim::cli {

namespace {

constexpr double kMaxLoad = 1e30;
constexpr std::int64_t kMaxReplicas = 1 << 20;
constexpr std::int64_t kMaxPlacementEntries = std::int64_t(1) << 26;  // layers × experts × replicas per expert

}  // namespace

// A JSON array of layers, each an array of per-expert loads in [0, kMaxLoad]
// (a single flat array is one layer).
std::vector<std::vector<double>> read_loads(const std::string& path) {
  const auto doc0 = parse_json_bounded(read_input_file(path, kMaxLoadsBytes, "load file"), path);
  const nlohmann::json doc =
      doc0.is_array() && !doc0.empty() && doc0[0].is_number() ? nlohmann::json::array({doc0}) : doc0;
  if (!doc.is_array() || doc.empty())
    throw InputError(path, "/", "expected a non-empty array of layers, each an array of per-expert loads");
  std::vector<std::vector<double>> loads;
  for (std::size_t l = 0; l < doc.size(); ++l) {
    const auto& layer = doc[l];
    if (!layer.is_array() || layer.empty() || (l > 0 && layer.size() != doc[0].size()))
      throw InputError(path, fmt::format("/{}", l),
                       fmt::format("expected an array of {} per-expert loads", l > 0 ? doc[0].size() : 1));
    loads.emplace_back();
    for (std::size_t e = 0; e < layer.size(); ++e) {
      const std::string where = doc0.is_array() && !doc0.empty() && doc0[0].is_number() ? fmt::format("/{}", e)
                                                                                           : fmt::format("/{}/{}", l, e);
      if (!layer[e].is_number())
        throw InputError(path, where, fmt::format("expected a number in [0, {:g}], got {}", kMaxLoad, excerpt(layer[e].dump())));
      // EPLB sums loads in float32: the bound keeps every sum finite.
      loads.back().push_back(finite_number(layer[e].get<double>(), 0.0, kMaxLoad, path, where, "load"));
    }
  }
  return loads;
}

int place_command(const Args& args) {
  po::options_description options("Options");
  options.add_options()
      ("loads", po::value<std::string>()->required(), "JSON file: [[load per expert], ...], one row per layer")
      ("replicas", po::value<int>()->required(), "physical expert slots in all (experts + redundant)")
      ("groups", po::value<int>()->required(), "expert groups (hierarchical packing); must divide the experts")
      ("nodes", po::value<int>()->required(), "server nodes")
      ("devices", po::value<int>()->required(), "devices (GPUs) in all; must divide replicas");
  po::positional_options_description positional;
  po::variables_map vm;
  if (!parse_options("place", args, options, positional, vm)) return 0;
  const auto loads = read_loads(vm["loads"].as<std::string>());
  const int experts = int(loads[0].size());
  auto in_range = [&](const char* name, int min, int max) {
    const int v = vm[name].as<int>();
    if (v < min || v > max)
      throw InputError(fmt::format("--{}", name), "", fmt::format("expected an integer in [{}, {}], got {}", min, max, v));
    return v;
  };
  // Bounded so the placement (layers × experts × replicas per expert) fits in memory.
  const std::int64_t layers = std::int64_t(loads.size());
  const int max_replicas = int(std::min<std::int64_t>(
      kMaxReplicas, experts - 1 + std::max<std::int64_t>(1, kMaxPlacementEntries / (layers * experts))));
  if (max_replicas < experts)
    throw InputError("--loads", "", fmt::format("{} layers × {} experts is too large to place", layers, experts));
  const int replicas = in_range("replicas", experts, max_replicas), groups = in_range("groups", 1, experts),
            nodes = in_range("nodes", 1, replicas), devices = in_range("devices", 1, replicas);
  EplbResult r;
  try {
    r = rebalance_experts(loads, replicas, groups, nodes, devices);
  } catch (const ParamError& e) {
    // eplb.py's argument names map one to one onto the flags.
    std::string flag = e.param();
    if (flag.rfind("num_", 0) == 0) flag = flag.substr(4);
    if (flag == "gpus") flag = "devices";
    throw InputError("--" + flag, "", e.what());
  }
  nlohmann::ordered_json out;
  out["phy2log"] = r.phy2log;
  out["log2phy"] = r.log2phy;
  out["logcnt"] = r.logcnt;
  fmt::print("{}\n", out.dump());
  return 0;
}

}  // namespace moesim::cli
