// Router z-loss (ST-MoE, Zoph et al. 2022, eq. 5): β·mean_t(logsumexp(z_t)²).
#include <algorithm>
#include <cmath>
#include <vector>

#include "moesim/components.hpp"

namespace moesim {
namespace {

class ZLoss final : public Balancer {
 public:
  ZLoss(const Params& p, const Shape&) : beta_(p.real("beta")) {}
  std::string series_name() const override { return "z_loss"; }
  bool needs_scores() const override { return true; }
  bool uses_logit_gradient() const override { return true; }

  double loss(const StepData& data, const Shape& s, const LossGrad& grad) override {
    // Tokens in parallel (each writes its own gradient row); their lse² added
    // in token order afterwards, so the loss has the same bits for any thread
    // count, and as one fused multiply-add each where the machine has them
    // (as the compiler contracted the sum when it ran inside the token loop).
    const int T = s.tokens(), E = s.experts;
    lse_.resize(std::size_t(T));
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; ++t) {
      const float* z = &data.z[std::size_t(t) * E];
      const double m = *std::max_element(z, z + E);
      double sum = 0.0;
      for (int i = 0; i < E; ++i) sum += std::exp(z[i] - m);
      const double lse = m + std::log(sum);
      lse_[t] = lse;
      if (grad.z.empty()) continue;
      // ∂/∂z_j of β·lse²/T = 2β·lse·softmax(z)_j / T.
      const double c = 2.0 * beta_ * lse / T;
      for (int i = 0; i < E; ++i) grad.z[std::size_t(t) * E + i] += float(c * std::exp(z[i] - m) / sum);
    }
    double total = 0.0;
    for (double lse : lse_) {
#ifdef FP_FAST_FMA
      total = std::fma(lse, lse, total);  // what the compiler made of `total += lse * lse` inline
#else
      total += lse * lse;
#endif
    }
    return beta_ * total / T;
  }

 private:
  double beta_;
  std::vector<double> lse_;  // per token: logsumexp(z_t)
};

const Registration<Balancer> registration{{
    "z_loss", "router z-loss β·mean(logsumexp(z)²) (ST-MoE); keeps logits small",
    {ParamSpec::real("beta", 0.001, 0.0, 1e6, "loss weight β")}, make<Balancer, ZLoss>}};

}  // namespace
}  // namespace moesim
