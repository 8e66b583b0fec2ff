// moesim place --loads FILE --replicas R --groups G --nodes N --devices D
// Prints DeepSeek EPLB's placement for a multi-layer load matrix as JSON
// (phy2log, log2phy, logcnt), so it can be checked against the reference.
#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.hpp"
#include "moesim/error.hpp"
#include "moesim/placement.hpp"
#include "moesim/routing_trace.hpp"
#include "options.hpp"

namespace moesim::cli {

int place_command(const Args& args) {
  po::options_description options("Options");
  options.add_options()
      ("loads", po::value<std::string>()->required(),
       "JSON file: [[load per expert], ...], one row per layer, or SGLang's {\"logical_count\": ...} (all-zero dense layers skipped)")
      ("replicas", po::value<int>()->required(), "physical expert slots in all (experts + redundant)")
      ("groups", po::value<int>()->required(), "expert groups (hierarchical packing); must divide the experts")
      ("nodes", po::value<int>()->required(), "server nodes")
      ("devices", po::value<int>()->required(), "devices (GPUs) in all; must divide replicas");
  po::positional_options_description positional;
  po::variables_map vm;
  if (!parse_options("place", args, options, positional, vm)) return 0;
  const LayerLoads file = read_layer_loads(vm["loads"].as<std::string>());
  const auto& loads = file.load;
  const int experts = file.experts();
  auto positive = [&](const char* name) {
    const int v = vm[name].as<int>();
    if (v < 1) throw InputError(fmt::format("--{}", name), "", fmt::format("expected an integer ≥ 1, got {}", v));
    return v;
  };
  const int replicas = positive("replicas"), groups = positive("groups"), nodes = positive("nodes"),
            devices = positive("devices");
  if (replicas < experts)
    throw InputError("--replicas", "", fmt::format("expected at least the {} experts, got {}", experts, replicas));
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
  // The file's layer ids, when dense layers were skipped.
  if (file.layer_ids.back() != file.layers() - 1) out["layer_ids"] = file.layer_ids;
  out["phy2log"] = r.phy2log;
  out["log2phy"] = r.log2phy;
  out["logcnt"] = r.logcnt;
  fmt::print("{}\n", out.dump());
  return 0;
}

}  // namespace moesim::cli
