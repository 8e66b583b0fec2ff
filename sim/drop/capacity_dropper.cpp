// Per-expert capacity dropping (MODEL.md §5; Switch/GShard/DeepSpeed):
// C = max(ceil(cf·T·k/E), min_capacity) assignments per expert and step.
#include "moesim/components.hpp"
#include "moesim/drop_rules.hpp"

namespace moesim {
namespace {

class CapacityDropper final : public Dropper {
 public:
  CapacityDropper(const Params& p, const Shape& s)
      : capacity_(expert_capacity(p.real("cf"), s.tokens(), s.top_k, s.experts, p.integer("min_capacity"))),
        policy_(p.str("policy") == "position" ? CapacityPolicy::position : CapacityPolicy::probs),
        pad_(p.boolean("pad")) {}

  void keep(StepData& data, const Shape& s, const PlacementMap&) override {
    capacity_keep(data.expert, data.gate, s.tokens(), s.top_k, s.experts, capacity_, policy_, data.keep, workspace_);
  }
  double padded_capacity(const Shape&) const override { return pad_ ? double(capacity_) : 0.0; }

 private:
  std::int64_t capacity_;
  CapacityPolicy policy_;
  bool pad_;
  CapacityWorkspace workspace_;
};

const Registration<Dropper> registration{{
    "capacity",
    "per-expert capacity C = max(ceil(cf·T·k/E), min_capacity); overflow assignments are dropped",
    {
        ParamSpec::real("cf", 1.0, 0.0, 1024.0, "capacity factor"),
        ParamSpec::choice("policy", {"probs", "position"},
                          "which assignments an expert keeps: highest gate (probs) or first by (rank, token) (position)"),
        ParamSpec::integer("min_capacity", 0, 0, 1 << 30, "lower bound on C"),
        ParamSpec::boolean("pad", false, "charge compute for C per expert (padded batches) instead of the kept load"),
    },
    make<Dropper, CapacityDropper>,
}};

}  // namespace
}  // namespace moesim
