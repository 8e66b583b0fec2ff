// Synthetic token stream (MODEL.md §1): domains with Gaussian centres, Zipf
// popularity, coherent sequences with a per-token mixing probability.
#include <cmath>

#include "moesim/components.hpp"
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
        popularity_(p, domains_) {}

  SourceOutput output() const override { return SourceOutput::hidden; }

  void seed(std::uint64_t seed) override {
    seed_ = seed;
    // μ_c ~ N(0, I)/sqrt(d)·spread.
    const int d = shape_.hidden;
    centres_.resize(std::size_t(domains_) * d);
    Rng rng = Rng::stream(seed, "generator/centres");
    const double scale = spread_ / std::sqrt(double(d));
    for (float& v : centres_) v = float(rng.normal() * scale);
  }

  void next(int step, StepData& data) override {
    const int d = shape_.hidden, L = shape_.seq_len;
    const std::vector<double>& cdf = popularity_.cdf(step);
    // One stream per (step, sequence): sequences are independent, so they can
    // be generated in any order or in parallel with identical results.
#pragma omp parallel for schedule(static)
    for (int n = 0; n < shape_.sequences; ++n) {
      Rng rng = Rng::stream(seed_, "generator/tokens", std::uint64_t(step), std::uint64_t(n));
      const int seq_domain = Popularity::draw(cdf, rng);
      for (int j = 0; j < L; ++j) {
        const std::size_t t = std::size_t(n) * L + j;
        int c = seq_domain;
        if (mix_ > 0 && rng.uniform() < mix_) c = Popularity::draw(cdf, rng);
        data.domain[t] = c;
        const float* mu = &centres_[std::size_t(c) * d];
        float* x = &data.x[t * d];
        rng.add_normals(mu, noise_, x, d);
      }
    }
  }

 private:
  Shape shape_;
  int domains_;
  double spread_, noise_, mix_;
  Popularity popularity_;
  std::uint64_t seed_ = 0;
  std::vector<float> centres_;  // C×d
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
