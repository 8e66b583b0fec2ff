#include "routing_stats.hpp"

#include "moesim/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace moesim {
namespace {

double mean(const std::vector<double>& v) {
  return v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
}

double entropy(const std::vector<double>& counts, double total) {
  double h = 0.0;
  for (double c : counts)
    if (c > 0.0) h -= c / total * std::log(c / total);
  return h;
}

}  // namespace

double RoutingStats::mean_max_over_mean() const { return mean(max_over_mean); }
double RoutingStats::mean_batch_imbalance() const { return mean(batch_imbalance); }
double RoutingStats::mean_locality() const { return mean(locality); }
double RoutingStats::mean_nmi() const { return mean(nmi); }

std::vector<double> shares(const std::vector<double>& counts) {
  const double total = std::accumulate(counts.begin(), counts.end(), 0.0);
  std::vector<double> out(counts.size());
  for (std::size_t e = 0; e < counts.size(); ++e) out[e] = counts[e] / total;
  return out;
}

double normalised_mutual_information(const std::int32_t* x, const std::int32_t* y, std::int64_t count,
                                     std::int64_t stride, int n) {
  std::vector<double> joint(std::size_t(n) * n, 0.0), px(n, 0.0), py(n, 0.0);
  for (std::int64_t t = 0; t < count; ++t) {
    const std::int32_t a = x[t * stride], b = y[t * stride];
    joint[std::size_t(a) * n + b] += 1.0;
    px[a] += 1.0;
    py[b] += 1.0;
  }
  const double total = double(count);
  const double hx = entropy(px, total), hy = entropy(py, total);
  if (hx + hy <= 0.0) return 0.0;
  const double mi = hx + hy - entropy(joint, total);
  return std::max(0.0, 2.0 * mi / (hx + hy));
}

double total_variation(const std::vector<double>& p, const std::vector<double>& q) {
  double d = 0.0;
  for (std::size_t i = 0; i < p.size(); ++i) d += std::abs(p[i] - q[i]);
  return 0.5 * d;
}

RoutingStats measure(const RoutingTrace& trace, const StatsOptions& options) {
  const int L = trace.layers(), E = trace.experts, k = trace.top_k;
  const std::int64_t T = trace.tokens();
  const std::int64_t stride = std::int64_t(L) * k;  // one token's choices in every layer
  RoutingStats s;
  s.per_token = true;
  s.popularity.resize(L);
  s.max_over_mean.resize(L);
  s.batch_imbalance.resize(L);
  s.locality.resize(L);
  s.nmi.resize(std::max(0, L - 1));
  // A trace shorter than one window is one (short) window.
  const int window = int(std::min<std::int64_t>(options.window, std::max<std::int64_t>(T, 1)));
  const std::int64_t windows = std::max<std::int64_t>(1, T / window);
  std::vector<double> counts(E), window_counts(E);
  for (int l = 0; l < L; ++l) {
    std::fill(counts.begin(), counts.end(), 0.0);
    double imbalance = 0.0, shared = 0.0;
    std::int64_t pairs = 0;
    for (std::int64_t w = 0; w < windows; ++w) {
      std::fill(window_counts.begin(), window_counts.end(), 0.0);
      for (std::int64_t t = w * window; t < (w + 1) * window; ++t)
        for (int j = 0; j < k; ++j) window_counts[trace.at(t, l)[j]] += 1.0;
      imbalance += max_over_mean(window_counts);
    }
    for (std::int64_t t = 0; t < T; ++t) {
      const std::int32_t* now = trace.at(t, l);
      for (int j = 0; j < k; ++j) counts[now[j]] += 1.0;
      if (t == 0 || (options.seq_len > 0 && t % options.seq_len == 0)) continue;
      const std::int32_t* prev = trace.at(t - 1, l);
      for (int j = 0; j < k; ++j) shared += std::find(prev, prev + k, now[j]) != prev + k;
      ++pairs;
    }
    s.popularity[l] = shares(counts);
    s.max_over_mean[l] = max_over_mean(counts);
    s.batch_imbalance[l] = imbalance / double(windows);
    s.locality[l] = pairs > 0 ? shared / (double(pairs) * k) : 0.0;
    if (l + 1 < L) s.nmi[l] = normalised_mutual_information(trace.at(0, l), trace.at(0, l + 1), T, stride, E);
  }
  return s;
}

RoutingStats measure(const LayerLoads& loads) {
  RoutingStats s;
  for (const auto& row : loads.load) {
    s.popularity.push_back(shares(row));
    s.max_over_mean.push_back(max_over_mean(row));
  }
  return s;
}

}  // namespace moesim
