#include "requests.hpp"

#include <algorithm>
#include <cmath>

#include "moesim/rng.hpp"

namespace moesim {

std::int64_t LengthDist::draw(Rng& rng) const {
  switch (kind) {
    case Kind::fixed: return value;
    case Kind::uniform: return min + std::int64_t(rng.uniform() * double(max - min + 1));
    case Kind::lognormal: {
      // ln X ~ N(mu, sigma²) with E[X] = mean: mu = ln(mean) − sigma²/2.
      const double mu = std::log(mean) - 0.5 * sigma * sigma;
      const double x = std::exp(mu + sigma * rng.normal());
      return std::clamp<std::int64_t>(std::llround(std::min(x, 1e18)), 1, max);
    }
  }
  return value;
}

std::vector<RequestSpec> make_requests(const ServeSpec& spec, std::uint64_t seed) {
  std::vector<RequestSpec> out;
  const bool by_duration = spec.duration > 0;
  if (!spec.arrivals.empty()) {
    for (const ArrivalRecord& a : spec.arrivals) {
      if (by_duration ? a.time >= spec.duration : std::int64_t(out.size()) >= spec.requests) break;
      out.push_back({a.time, a.prompt, a.output});
    }
    return out;
  }
  Rng gaps = Rng::stream(seed, "serve-arrivals"), lengths = Rng::stream(seed, "serve-lengths");
  double t = 0;
  for (;;) {
    t += -std::log(1.0 - gaps.uniform()) / spec.rate;  // uniform() is in [0, 1): 1 − U > 0
    if (by_duration ? t >= spec.duration : std::int64_t(out.size()) >= spec.requests) break;
    RequestSpec r;
    r.arrival = t;
    r.prompt = spec.prompt.draw(lengths);
    r.output = spec.output.draw(lengths);
    out.push_back(r);
  }
  return out;
}

std::int64_t expected_requests(const ServeSpec& spec) {
  if (spec.duration <= 0) return spec.requests;
  if (spec.arrivals.empty()) return std::int64_t(std::ceil(spec.rate * spec.duration));
  return std::int64_t(std::count_if(spec.arrivals.begin(), spec.arrivals.end(),
                                    [&](const ArrivalRecord& a) { return a.time < spec.duration; }));
}

}  // namespace moesim
