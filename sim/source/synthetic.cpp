// Synthetic token stream (MODEL.md §1, §9): domains with Gaussian centres, Zipf
// popularity, coherent sequences with a per-token mixing probability; across
// layers the hidden state evolves as x⁽ˡ⁾ = ρ·x⁽ˡ⁻¹⁾ + sqrt(1−ρ²)·(μ⁽ˡ⁾_c + σ·ε⁽ˡ⁾).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "moesim/components.hpp"
#include "moesim/error.hpp"
#include "moesim/rng.hpp"
#include "popularity.hpp"

namespace moesim {

namespace {

class SyntheticSource final : public TokenSource {
 public:
  SyntheticSource(const Params& p, const Shape& shape)
      : shape_(shape),
        domains_(int(p.integer("domains"))),
        spread_(p.real("spread")),
        noise_(p.real("noise")),
        mix_(p.real("mix")),
        popularity_(p, domains_) {
    // One entry per layer: spread, noise and the correlation with the previous layer.
    const LayerGeometry base{spread_, noise_, p.real("layer_correlation")};
    layer_.assign(std::size_t(shape.layers), base);
  }

  SourceOutput output() const override { return SourceOutput::hidden; }

  void configure_layers(const std::vector<Params>& per_layer, const std::vector<std::string>& overridden) override {
    for (const std::string& name : overridden)
      if (name != "spread" && name != "noise" && name != "layer_correlation")
        throw ParamError("layers", fmt::format("'{}' cannot differ between layers: a token's domain is drawn once "
                                               "and kept through every layer; per layer you may set spread, noise "
                                               "and layer_correlation",
                                               name));
    for (std::size_t l = 0; l < layer_.size() && l < per_layer.size(); ++l)
      layer_[l] = {per_layer[l].real("spread"), per_layer[l].real("noise"), per_layer[l].real("layer_correlation")};
  }

  void seed(std::uint64_t seed) override {
    seed_ = seed;
    // μ⁽ˡ⁾_c ~ N(0, I)/sqrt(d)·spread, per layer (layer 0's sub-stream is the
    // single-layer stream's).
    const int d = shape_.hidden;
    centres_.resize(layer_.size() * domains_ * d);
    for (std::size_t l = 0; l < layer_.size(); ++l) {
      Rng rng = Rng::stream(seed, "generator/centres", l);
      const double scale = layer_[l].spread / std::sqrt(double(d));
      for (std::size_t i = 0; i < std::size_t(domains_) * d; ++i)
        centres_[l * domains_ * d + i] = float(rng.normal() * scale);
    }
  }

  // Every sequence of the step, in parallel, with nothing to hand the tokens to.
  void next(int step, int layer, StepData& data) override {
    struct Ignore final : TokenSink {
      void tokens(int, int) override {}
    } ignore;
    prepare(step);
#pragma omp parallel for schedule(static)
    for (int n = 0; n < shape_.sequences; ++n) next_sequence(step, layer, n, data, ignore);
  }

  bool by_sequence() const override { return true; }
  void prepare(int step) override {
    cdf_ = &popularity_.cdf(step);
    prepared_step_ = step;
  }

  // One stream per (step, sequence) at layer 0, per (step, sequence, layer)
  // above: sequences are independent, so they can be generated in any order
  // or in parallel with identical results.
  void next_sequence(int step, int layer, int n, StepData& data, TokenSink& sink) const override {
    if (layer == 0) first_layer(step, n, data, sink);
    else next_layer(step, layer, n, data, sink);
  }

 private:
  struct LayerGeometry {
    double spread, noise, correlation;
  };
  static constexpr int kChunk = TokenSink::kChunk;

  const float* centre(int layer, int domain) const {
    return &centres_[(std::size_t(layer) * domains_ + domain) * shape_.hidden];
  }

  // x⁽ˡ⁾ = ρ·x⁽ˡ⁻¹⁾ + sqrt(1−ρ²)·(μ⁽ˡ⁾_c + σ·ε⁽ˡ⁾), in place over data.x.
  void next_layer(int step, int layer, int n, StepData& data, TokenSink& sink) const {
    const int d = shape_.hidden, L = shape_.seq_len;
    const LayerGeometry& g = layer_[layer];
    const float rho = float(g.correlation), fresh = float(std::sqrt(1.0 - g.correlation * g.correlation));
    thread_local std::vector<float> e;  // μ⁽ˡ⁾_c + σ·ε of one token; per thread, allocated once
    e.resize(std::size_t(d));
    Rng rng = Rng::stream(seed_, "generator/layer_tokens", std::uint64_t(step),
                          (std::uint64_t(n) << 20) | std::uint64_t(layer));
    for (int j0 = 0; j0 < L; j0 += kChunk) {
      const int j1 = std::min(L, j0 + kChunk);
      for (int j = j0; j < j1; ++j) {
        const std::size_t t = std::size_t(n) * L + j;
        rng.add_normals(centre(layer, data.domain[t]), g.noise, e.data(), d);
        float* x = &data.x[t * d];
        for (int i = 0; i < d; ++i) x[i] = rho * x[i] + fresh * e[i];
      }
      sink.tokens(n * L + j0, n * L + j1);
    }
  }

  void first_layer(int step, int n, StepData& data, TokenSink& sink) const {
    const int d = shape_.hidden, L = shape_.seq_len;
    const double noise = layer_[0].noise;
    if (cdf_ == nullptr || step != prepared_step_)  // the interface's contract (components.hpp)
      throw std::logic_error("SyntheticSource: next_sequence for a step that prepare() did not start");
    const std::vector<double>& cdf = *cdf_;
    Rng rng = Rng::stream(seed_, "generator/tokens", std::uint64_t(step), std::uint64_t(n));
    const int seq_domain = Popularity::draw(cdf, rng);
    for (int j0 = 0; j0 < L; j0 += kChunk) {
      const int j1 = std::min(L, j0 + kChunk);
      for (int j = j0; j < j1; ++j) {
        const std::size_t t = std::size_t(n) * L + j;
        int c = seq_domain;
        if (mix_ > 0 && rng.uniform() < mix_) c = Popularity::draw(cdf, rng);
        data.domain[t] = c;
        rng.add_normals(centre(0, c), noise, &data.x[t * d], d);
      }
      sink.tokens(n * L + j0, n * L + j1);
    }
  }

  Shape shape_;
  int domains_;
  double spread_, noise_, mix_;
  Popularity popularity_;
  std::uint64_t seed_ = 0;
  std::vector<LayerGeometry> layer_;  // L
  std::vector<float> centres_;        // L×C×d
  const std::vector<double>* cdf_ = nullptr;  // popularity at the prepared step
  int prepared_step_ = -1;
};

const Registration<TokenSource> registration{{
    "synthetic",
    "tokens from C topic domains: Gaussian centres, Zipf popularity, coherent sequences (MODEL.md §1)",
    {
        ParamSpec::integer("domains", 32, 1, 100000, "number of topic domains C"),
        ParamSpec::real("zipf", 1.0, 0.0, 100.0, "Zipf exponent of domain popularity (0 = uniform)"),
        ParamSpec::list("weights", 0.0, 1e300, "explicit domain popularity (one weight per domain; overrides zipf)"),
        ParamSpec::real("spread", 1.0, 0.0, 1e6, "norm scale of the domain centres"),
        ParamSpec::real("noise", 0.5, 0.0, 1e6, "per-dimension standard deviation of a token around its centre"),
        ParamSpec::real("mix", 0.0, 0.0, 1.0, "probability that a token redraws its domain instead of its sequence's"),
        ParamSpec::real("layer_correlation", 0.5, 0.0, 1.0,
                        "ρ: weight of the previous layer's hidden state in the next one's (MODEL.md §9)"),
        ParamSpec::integer("rotate_every", 0, 0, 1 << 30, "drift: rotate popularity by one domain every n steps (0 = off)"),
        ParamSpec::matrix("schedule", 0.0, 1e300, "drift: list of popularity vectors, one per schedule_every steps"),
        ParamSpec::integer("schedule_every", 0, 0, 1 << 30, "steps each schedule entry lasts"),
        ParamSpec::integer("burst_every", 0, 0, 1 << 30, "burst: period in steps (0 = off)"),
        ParamSpec::integer("burst_length", 1, 1, 1 << 30, "burst: steps a burst lasts"),
        ParamSpec::real("burst_factor", 10.0, 0.0, 1e6, "burst: multiplier on the bursting domain's weight"),
        ParamSpec::integer("burst_domain", 0, 0, 100000, "burst: which domain bursts"),
    },
    make<TokenSource, SyntheticSource>,
}};

}  // namespace
}  // namespace moesim
