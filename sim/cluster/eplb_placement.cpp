// EPLB as a placement: DeepSeek's hierarchical balancer with redundant
// experts, recomputed every `rebalance_every` steps from the routed loads of
// the last `window` steps (as deployed: loads are tracked over a sliding
// window and the placement is refreshed periodically).
#include <fmt/format.h>

#include "moesim/components.hpp"
#include "moesim/error.hpp"

namespace moesim {
namespace {

class EplbPlacement final : public Placement {
 public:
  EplbPlacement(const Params& p, const Shape& s)
      : redundant_(int(p.integer("redundant_experts"))),
        every_(int(p.integer("rebalance_every"))),
        max_rebalances_(p.integer("max_rebalances")),
        // Never more rows than the run has steps (the ring would not wrap).
        window_(int(s.steps > 0 ? std::min<std::int64_t>(p.integer("window"), s.steps) : p.integer("window"))),
        groups_(p.has("groups") ? int(p.integer("groups")) : s.nodes),
        shape_(s) {
    const int slots = s.experts + redundant_;
    if (slots % s.devices() != 0)
      throw ParamError("redundant_experts",
                       fmt::format("experts + redundant_experts = {} must be divisible by the {} devices", slots,
                                   s.devices()));
    if (s.experts % groups_ != 0)
      throw ParamError("groups", fmt::format("must divide the {} experts, got {}", s.experts, groups_));
    (void)initial(s);  // surfaces any remaining shape error now, as a ParamError
  }

  PlacementMap initial(const Shape& s) override {
    // Before any load is seen, balance a uniform load.
    return place(std::vector<double>(s.experts, 1.0), s);
  }

  void observe(int step, std::span<const double> routed, PlacementMap& map) override {
    const std::size_t E = routed.size();
    if (history_.empty()) history_.assign(std::size_t(window_) * E, 0.0);  // at run time, not at validation
    std::copy(routed.begin(), routed.end(), history_.begin() + std::size_t(step % window_) * E);
    if ((step + 1) % every_ != 0 || (max_rebalances_ > 0 && rebalances_ >= max_rebalances_)) return;
    ++rebalances_;
    std::vector<double> load(E, 0.0);
    for (int w = 0; w < window_; ++w)
      for (std::size_t e = 0; e < E; ++e) load[e] += history_[std::size_t(w) * E + e];
    map = place(load, shape_);
  }

 private:
  PlacementMap place(const std::vector<double>& load, const Shape& s) {
    try {
      EplbResult r = rebalance_experts({load}, s.experts + redundant_, groups_, s.nodes, s.devices());
      return to_placement(r, 0, s.devices());
    } catch (const ParamError& e) {  // name our parameters, not eplb.py's arguments
      throw ParamError(e.param() == "num_groups" ? "groups" : "redundant_experts", e.what());
    }
  }

  int redundant_, every_;
  std::int64_t max_rebalances_, rebalances_ = 0;
  int window_, groups_;
  Shape shape_;
  std::vector<double> history_;  // window × E ring of routed loads
};

const Registration<Placement> registration{{
    "eplb",
    "DeepSeek EPLB: hierarchical balanced packing plus redundant replicas, rebalanced from a window of loads",
    {
        ParamSpec::integer("redundant_experts", 0, 0, 65536, "extra replica slots (experts + this must divide by devices)"),
        ParamSpec::integer("rebalance_every", 10, 1, 1 << 30, "steps (serving: the instance's iterations) between placement refreshes"),
        ParamSpec::integer("window", 10, 1, 100000, "steps (serving: iterations) of routed load the refresh looks at"),
        ParamSpec::integer("max_rebalances", 0, 0, 1 << 30,
                           "stop refreshing after this many (0: never stop; 1: placed once from the first window, "
                           "then static)"),
        ParamSpec::required_integer("groups", 1, 65536, "expert groups for hierarchical packing").derived_from("cluster.nodes"),
    },
    make<Placement, EplbPlacement>,
}};

}  // namespace
}  // namespace moesim
