// Aux-loss-free balancing (DeepSeek-V3 §2.1.2; Loss-Free Balancing, arXiv
// 2408.15664): after each step b_i += u·sign(c̄ − c_i) (or the proportional
// variant u·(c̄ − c_i)/c̄), with c̄ the mean count. The bias changes selection
// only, never gate values, and gets no gradient.
#include <numeric>

#include "moesim/components.hpp"

namespace moesim {
namespace {

class BiasBalancer final : public Balancer {
 public:
  BiasBalancer(const Params& p, const Shape&)
      : u_(p.real("u")),
        proportional_(p.str("rule") == "proportional"),
        processed_(p.str("counts") == "processed"),
        freeze_(p.boolean("freeze")) {}

  std::string series_name() const override { return {}; }  // the bias itself is recorded as bias_min/max/mean

  void end_of_step(const StepData& data, const Shape&, std::span<float> bias) override {
    if (freeze_) return;
    // Routed counts (the papers) or processed ones (Megatron-Core counts after drops).
    const std::vector<double>& c = processed_ ? data.processed : data.routed;
    const double mean = std::accumulate(c.begin(), c.end(), 0.0) / double(c.size());
    if (!(mean > 0)) return;
    for (std::size_t i = 0; i < c.size(); ++i) {
      const double error = mean - c[i];
      const double step = proportional_ ? u_ * error / mean : u_ * double((error > 0) - (error < 0));
      bias[i] += float(step);
    }
  }

 private:
  double u_;
  bool proportional_, processed_, freeze_;
};

const Registration<Balancer> registration{{
    "bias",
    "aux-loss-free bias (DeepSeek-V3): b_i += u·sign(mean − c_i) after each step; selection only",
    {
        ParamSpec::real("u", 0.001, 0.0, 1e3, "bias update speed"),
        ParamSpec::choice("rule", {"sign", "proportional"}, "u·sign(c̄ − c_i), or u·(c̄ − c_i)/c̄"),
        ParamSpec::choice("counts", {"routed", "processed"}, "counts before drops (papers) or after (Megatron-Core)"),
        ParamSpec::boolean("freeze", false, "keep the bias fixed (inference studies)"),
    },
    make<Balancer, BiasBalancer>,
}};

}  // namespace
}  // namespace moesim
