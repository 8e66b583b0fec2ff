#include "latency_summary.hpp"

#include <algorithm>
#include <cmath>

namespace moesim {

double quantile(std::span<const double> values, double p) {
  if (values.empty()) return 0.0;
  std::vector<double> v(values.begin(), values.end());
  std::sort(v.begin(), v.end());
  const double pos = p * double(v.size() - 1);
  const auto lo = std::size_t(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - double(lo)) * (v[hi] - v[lo]);
}

void summarize_requests(std::span<const RequestRecord> requests, const ServeSpec& spec, double duration,
                        Result& result) {
  auto& columns = result.requests;
  std::vector<double> ttft, tpot, e2e;
  double tokens = 0, good = 0;
  for (const RequestRecord& r : requests) {
    ttft.push_back(r.ttft());
    e2e.push_back(r.e2e());
    if (r.output > 1) tpot.push_back(r.tpot());
    tokens += double(r.output);
    if (r.ttft() <= spec.slo_ttft && (r.output <= 1 || r.tpot() <= spec.slo_tpot)) good += 1;
    columns["arrival"].push_back(r.arrival);
    columns["prompt"].push_back(double(r.prompt));
    columns["output"].push_back(double(r.output));
    columns["first_token"].push_back(r.first_token);
    columns["finish"].push_back(r.finish);
    columns["ttft"].push_back(r.ttft());
    columns["tpot"].push_back(r.tpot());
    columns["e2e"].push_back(r.e2e());
  }
  auto& s = result.summary;
  for (const auto& [name, v] : {std::pair{"ttft", &ttft}, std::pair{"tpot", &tpot}, std::pair{"e2e", &e2e}}) {
    double sum = 0;
    for (double x : *v) sum += x;
    const std::string n = name;
    s[n + "_mean"] = v->empty() ? 0.0 : sum / double(v->size());
    s[n + "_p50"] = quantile(*v, 0.50);
    s[n + "_p90"] = quantile(*v, 0.90);
    s[n + "_p99"] = quantile(*v, 0.99);
  }
  s["throughput"] = duration > 0 ? tokens / duration : 0.0;
  s["goodput"] = duration > 0 ? good / duration : 0.0;
  s["requests_completed"] = double(requests.size());
  s["duration"] = duration;
}

}  // namespace moesim
