#include "popularity.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

#include "moesim/error.hpp"

namespace moesim {

namespace {
std::vector<double> normalised(std::vector<double> w) {
  double total = 0;
  for (double v : w) total += v;
  for (double& v : w) v /= total;
  return w;
}
}  // namespace

Popularity::Popularity(const Params& p, int domains) {
  if (p.has("weights")) {
    base_ = p.list("weights");
    if (int(base_.size()) != domains)
      throw ParamError("weights", fmt::format("expected {} weights (one per domain), got {}", domains, base_.size()));
  } else {
    // Zipf: π_c ∝ (c+1)^-zipf.
    for (int c = 0; c < domains; ++c) base_.push_back(std::pow(double(c + 1), -p.real("zipf")));
  }
  double total = 0;
  for (double v : base_) total += v;
  if (!(total > 0)) throw ParamError("weights", "at least one weight must be positive");
  base_ = normalised(base_);
  rotate_every_ = int(p.integer("rotate_every"));
  if (p.has("schedule")) {
    schedule_ = p.matrix("schedule");
    for (std::size_t i = 0; i < schedule_.size(); ++i) {
      double sum = 0;
      for (double v : schedule_[i]) sum += v;
      if (int(schedule_[i].size()) != domains || !(sum > 0))
        throw ParamError("schedule/" + std::to_string(i),
                         fmt::format("expected {} non-negative weights (one per domain) with a positive sum", domains));
      schedule_[i] = normalised(schedule_[i]);
    }
    schedule_every_ = int(p.integer("schedule_every"));
    if (!schedule_.empty() && schedule_every_ <= 0)
      throw ParamError("schedule_every", "must be at least 1 when a schedule is given");
  }
  burst_every_ = int(p.integer("burst_every"));
  burst_length_ = int(p.integer("burst_length"));
  burst_factor_ = p.real("burst_factor");
  burst_domain_ = int(p.integer("burst_domain"));
  if (burst_domain_ >= domains)
    throw ParamError("burst_domain", fmt::format("expected a domain index in [0, {}], got {}", domains - 1, burst_domain_));
}

std::vector<double> Popularity::weights(int step) const {
  std::vector<double> w = base_;
  if (!schedule_.empty()) w = schedule_[std::min<std::size_t>(step / schedule_every_, schedule_.size() - 1)];
  if (rotate_every_ > 0) {  // domain c takes the popularity of domain c - r
    const int C = int(w.size());
    const int r = (step / rotate_every_) % C;
    std::rotate(w.rbegin(), w.rbegin() + r, w.rend());
  }
  if (burst_every_ > 0 && step % burst_every_ < burst_length_) w[burst_domain_] *= burst_factor_;
  return normalised(w);
}

const std::vector<double>& Popularity::cdf(int step) {
  if (step != cached_step_) {
    std::vector<double> w = weights(step);
    cdf_.resize(w.size());
    double acc = 0;
    for (std::size_t c = 0; c < w.size(); ++c) cdf_[c] = (acc += w[c]);
    cdf_.back() = 1.0;
    cached_step_ = step;
  }
  return cdf_;
}

int Popularity::draw(const std::vector<double>& cdf, Rng& rng) {
  const double u = rng.uniform();
  return int(std::upper_bound(cdf.begin(), cdf.end(), u) - cdf.begin());
}

}  // namespace moesim
