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
#include "options.hpp"

namespace moesim::cli {

namespace {

// A JSON array of layers, each an array of non-negative per-expert loads
// (a single flat array is one layer).
std::vector<std::vector<double>> read_loads(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path, "", "cannot open the load file (does it exist and is it readable?)");
  std::ostringstream text;
  text << in.rdbuf();
  auto doc = nlohmann::json::parse(text.str(), nullptr, false, true);
  if (doc.is_discarded()) throw InputError(path, "", "invalid JSON: expected [[load, ...], ...] (layers × experts)");
  if (doc.is_array() && !doc.empty() && doc[0].is_number()) doc = nlohmann::json::array({doc});
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
      if (!layer[e].is_number() || !std::isfinite(layer[e].get<double>()) || layer[e].get<double>() < 0)
        throw InputError(path, fmt::format("/{}/{}", l, e), fmt::format("expected a finite load ≥ 0, got {}", layer[e].dump()));
      loads.back().push_back(layer[e].get<double>());
    }
  }
  return loads;
}

}  // namespace

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
  out["phy2log"] = r.phy2log;
  out["log2phy"] = r.log2phy;
  out["logcnt"] = r.logcnt;
  fmt::print("{}\n", out.dump());
  return 0;
}

}  // namespace moesim::cli
