// moesim place --loads FILE --replicas R --groups G --nodes N --devices D [--report [--json]]
// Prints DeepSeek EPLB's placement for a multi-layer load matrix as JSON
// (phy2log, log2phy, logcnt), so it can be checked against the reference; or,
// with --report, how evenly each layer's load lands on the devices with and
// without it.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.hpp"
#include "moesim/error.hpp"
#include "moesim/metrics.hpp"
#include "moesim/placement.hpp"
#include "moesim/routing_trace.hpp"
#include "options.hpp"

namespace moesim::cli {

namespace {

constexpr std::int64_t kMaxReplicas = 1 << 20;
constexpr std::int64_t kMaxPlacementEntries = std::int64_t(1) << 26;  // layers × experts × replicas per expert

// Per layer: the experts' max/mean, and the devices' max/mean when the same
// slots are filled without knowing the load (EPLB on a uniform load: which
// experts get replicas is then arbitrary) and by EPLB from the layer's load.
int print_report(const LayerLoads& file, const EplbResult& balanced, const EplbResult& blind, int devices, bool json) {
  std::vector<double> expert_ratio, blind_ratio, eplb_ratio;
  for (int l = 0; l < file.layers(); ++l) {
    expert_ratio.push_back(max_over_mean(file.load[l]));
    blind_ratio.push_back(max_over_mean(device_loads(to_placement(blind, l, devices), file.load[l])));
    eplb_ratio.push_back(max_over_mean(device_loads(to_placement(balanced, l, devices), file.load[l])));
  }
  if (json) {
    nlohmann::ordered_json out;
    out["layer_ids"] = file.layer_ids;
    out["expert_max_over_mean"] = expert_ratio;
    out["device_max_over_mean_static"] = blind_ratio;
    out["device_max_over_mean_eplb"] = eplb_ratio;
    fmt::print("{}\n", out.dump());
    return 0;
  }
  fmt::print("{:>5}  {:>14}  {:>21}  {:>19}\n", "layer", "expert max/mean", "device max/mean static",
             "device max/mean EPLB");
  for (int l = 0; l < file.layers(); ++l)
    fmt::print("{:>5}  {:>15.3f}  {:>22.3f}  {:>20.3f}\n", file.layer_ids[l], expert_ratio[l], blind_ratio[l],
               eplb_ratio[l]);
  auto summary = [](const char* what, const std::vector<double>& v) {
    const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
    return fmt::format("{} {:.3f} (layers {:.3f}–{:.3f})", what, std::accumulate(v.begin(), v.end(), 0.0) / v.size(),
                       *lo, *hi);
  };
  fmt::print("mean over {} layers: {}; {}; {}\n", file.layers(), summary("experts", expert_ratio),
             summary("static", blind_ratio), summary("EPLB", eplb_ratio));
  return 0;
}

}  // namespace

int place_command(const Args& args) {
  po::options_description options("Options");
  options.add_options()
      ("loads", po::value<std::string>()->required(),
       "JSON file: [[load per expert], ...], one row per layer, or SGLang's {\"logical_count\": ...} (all-zero dense layers skipped)")
      ("replicas", po::value<int>()->required(), "physical expert slots in all (experts + redundant)")
      ("groups", po::value<int>()->required(), "expert groups (hierarchical packing); must divide the experts")
      ("nodes", po::value<int>()->required(), "server nodes")
      ("devices", po::value<int>()->required(), "devices (GPUs) in all; must divide replicas")
      ("report", po::bool_switch(), "instead of the placement, print each layer's device max/mean with EPLB and "
                                    "with the same slots filled without load knowledge")
      ("json", po::bool_switch(), "with --report: print the report as JSON");
  po::positional_options_description positional;
  po::variables_map vm;
  if (!parse_options("place", args, options, positional, vm)) return 0;
  const LayerLoads file = read_layer_loads(vm["loads"].as<std::string>());
  const auto& loads = file.load;
  const int experts = file.experts();
  auto in_range = [&](const char* name, int min, int max) { return integer_option<int>(vm, name, min, max); };
  // Bounded so the placement (layers × experts × replicas per expert) fits in memory.
  const std::int64_t layers = std::int64_t(loads.size());
  const int max_replicas = int(std::min<std::int64_t>(
      kMaxReplicas, experts - 1 + std::max<std::int64_t>(1, kMaxPlacementEntries / (layers * experts))));
  if (max_replicas < experts)
    throw InputError("--loads", "", fmt::format("{} layers × {} experts is too large to place", layers, experts));
  const int replicas = in_range("replicas", experts, max_replicas), groups = in_range("groups", 1, experts),
            nodes = in_range("nodes", 1, replicas), devices = in_range("devices", 1, replicas);
  EplbResult r, blind;
  try {
    r = rebalance_experts(loads, replicas, groups, nodes, devices);
    if (vm["report"].as<bool>())
      blind = rebalance_experts(std::vector<std::vector<double>>(loads.size(), std::vector<double>(experts, 1.0)),
                                replicas, groups, nodes, devices);
  } catch (const ParamError& e) {
    // eplb.py's argument names map one to one onto the flags.
    std::string flag = e.param();
    if (flag.rfind("num_", 0) == 0) flag = flag.substr(4);
    if (flag == "gpus") flag = "devices";
    throw InputError("--" + flag, "", e.what());
  }
  if (vm["report"].as<bool>()) return print_report(file, r, blind, devices, vm["json"].as<bool>());
  nlohmann::ordered_json out;
  // The file's layer ids, when dense layers were skipped.
  if (file.layer_ids.back() != file.layers() - 1) out["layer_ids"] = file.layer_ids;
  out["phy2log"] = r.phy2log;
  out["log2phy"] = r.log2phy;
  out["logcnt"] = r.logcnt;
  fmt::print("{}\n", out.dump());
  return 0;
}

}  // namespace moesim::cli
