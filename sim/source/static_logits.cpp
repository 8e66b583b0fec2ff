// Static source (MODEL.md §1): no hidden vectors; router logits drawn around a
// fixed per-expert popularity, for routing and drop studies without learning.
#include <cmath>
#include <numeric>

#include "moesim/components.hpp"
#include "moesim/rng.hpp"

namespace moesim {

namespace {

class StaticSource final : public TokenSource {
 public:
  StaticSource(const Params& p, const Shape& shape)
      : shape_(shape), skew_(p.real("skew")), noise_(p.real("noise")) {}

  SourceOutput output() const override { return SourceOutput::logits; }

  void seed(std::uint64_t seed) override {
    seed_ = seed;
    // Popularity p_i ∝ (rank_i + 1)^-skew with ranks in a random permutation
    // per layer, so the popular experts are not simply the low indices and
    // differ between layers.
    const int E = shape_.experts;
    log_pop_.assign(std::size_t(shape_.layers) * E, 0.0);
    for (int l = 0; l < shape_.layers; ++l) {
      std::vector<int> rank(E);
      std::iota(rank.begin(), rank.end(), 0);
      Rng rng = Rng::stream(seed, "static/permutation", std::uint64_t(l));
      for (int i = E - 1; i > 0; --i) std::swap(rank[i], rank[int(rng.next() % std::uint64_t(i + 1))]);
      const double skew = layer_params_.empty() ? skew_ : layer_params_[l].real("skew");
      for (int i = 0; i < E; ++i) log_pop_[std::size_t(l) * E + i] = -skew * std::log(double(rank[i] + 1));
    }
  }

  void configure_layers(const std::vector<Params>& per_layer, const std::vector<std::string>&) override {
    layer_params_ = per_layer;  // skew and noise may differ per layer
  }

  void next(int step, int layer, StepData& data) override {
    const int E = shape_.experts, L = shape_.seq_len;
    const double* log_pop = &log_pop_[std::size_t(layer) * E];
    const double noise = layer_params_.empty() ? noise_ : layer_params_[layer].real("noise");
#pragma omp parallel for schedule(static)
    for (int n = 0; n < shape_.sequences; ++n) {
      // Layer 0 keeps the single-layer stream's sub-streams exactly.
      Rng rng = layer == 0 ? Rng::stream(seed_, "static/logits", std::uint64_t(step), std::uint64_t(n))
                           : Rng::stream(seed_, "static/logits/layer", std::uint64_t(step),
                                         (std::uint64_t(n) << 20) | std::uint64_t(layer));
      for (int j = 0; j < L; ++j) {
        const std::size_t t = std::size_t(n) * L + j;
        data.domain[t] = -1;
        float* z = &data.z[t * E];
        for (int i = 0; i < E; ++i) z[i] = float(log_pop[i] + noise * rng.normal());
      }
    }
  }

 private:
  Shape shape_;
  double skew_, noise_;
  std::uint64_t seed_ = 0;
  std::vector<double> log_pop_;  // L×E
  std::vector<Params> layer_params_;
};

const Registration<TokenSource> registration{{
    "static",
    "router logits around a fixed per-expert Zipf popularity; no hidden vectors, inference only",
    {
        ParamSpec::real("skew", 1.0, 0.0, 100.0, "Zipf exponent of expert popularity (0 = uniform)"),
        ParamSpec::real("noise", 1.0, 0.0, 1e6, "standard deviation of each logit around log popularity"),
    },
    make<TokenSource, StaticSource>,
}};

}  // namespace
}  // namespace moesim
