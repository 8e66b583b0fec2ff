#include "fit.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "moesim/error.hpp"
#include "nelder_mead.hpp"



namespace moesim {
namespace {

std::vector<double> layer_counts(const RoutingTrace& t, int l) {
  std::vector<double> c(t.experts, 0.0);
  for (std::int64_t i = 0; i < t.tokens(); ++i)
    for (int j = 0; j < t.top_k; ++j) c[t.at(i, l)[j]] += 1.0;
  return c;
}

// Tokens of the stratified sample that fits the weights: enough for every
// expert's expected share to be estimated within a few percent.
std::int64_t weight_sample_tokens(const StreamModel& m) {
  return std::max<std::int64_t>(8192, std::int64_t(m.experts) * 256 / m.top_k);
}

double sd(const std::vector<double>& v, double m) {
  if (v.size() < 2) return 0.0;
  double s = 0.0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / double(v.size() - 1));
}

}  // namespace

void fit_weights(StreamModel& model, const RealMatrix& target, std::int64_t tokens, std::int64_t seq_len,
                 std::uint64_t seed, int iterations, double damping) {
  const int L = model.layers(), E = model.experts;
  for (int it = 0; it < iterations; ++it) {
    const RoutingTrace t = StreamGenerator(model).sample(seed, tokens, seq_len, true);
    for (int l = 0; l < L; ++l) {
      const std::vector<double> q = shares(layer_counts(t, l));
      const double floor = 0.5 / (double(tokens) * model.top_k);  // an expert never drawn in the sample
      auto& w = model.weight[l];
      for (int e = 0; e < E; ++e)
        w[e] = target[l][e] <= 0.0 ? 0.0 : w[e] * std::pow(target[l][e] / std::max(q[e], floor), damping);
      const double sum = std::accumulate(w.begin(), w.end(), 0.0);
      for (double& x : w) x /= sum;
    }
  }
}

void compare(const StreamModel& model, const RoutingStats& data, std::int64_t tokens, const FitOptions& options,
             FitResult& out) {
  const StreamGenerator gen(model);
  const int L = model.layers();
  std::vector<std::vector<double>> values(4);
  for (int s = 0; s < options.samples; ++s) {
    const RoutingTrace t = gen.sample(options.seed + 1 + std::uint64_t(s), tokens);
    const RoutingStats st = measure(t, {options.window, 0});
    values[0].push_back(st.mean_max_over_mean());
    values[1].push_back(st.mean_batch_imbalance());
    values[2].push_back(st.mean_locality());
    values[3].push_back(st.mean_nmi());
  }
  const char* names[] = {"max/mean", "batch imbalance", "locality", "cross-layer NMI"};
  const double data_values[] = {data.mean_max_over_mean(), data.mean_batch_imbalance(), data.mean_locality(),
                                data.mean_nmi()};
  out.stats.clear();
  for (int i = 0; i < (data.per_token ? 4 : 1); ++i) {
    const double m = std::accumulate(values[i].begin(), values[i].end(), 0.0) / double(values[i].size());
    out.stats.push_back({names[i], data_values[i], m, sd(values[i], m)});
  }
  // Popularity is compared in expectation (a stratified sample), free of
  // the passage-to-passage noise of a sample of the data's size.
  const RoutingStats expected = measure(gen.sample(options.seed, weight_sample_tokens(model), 0, true));
  out.total_variation.clear();
  for (int l = 0; l < L; ++l) out.total_variation.push_back(total_variation(data.popularity[l], expected.popularity[l]));
  out.sample_tokens = tokens;
}

namespace {

// The model before fitting: shape and popularity from the data, per-token
// structure at the documented defaults (docs/calibration.md).
StreamModel initial_model(int experts, int top_k, const std::vector<int>& layer_ids, const RealMatrix& popularity,
                          std::uint64_t seed) {
  StreamModel m;
  m.experts = experts;
  m.top_k = top_k;
  m.layer_ids = layer_ids;
  m.popularity = popularity;
  m.weight = popularity;
  m.structure_seed = seed;
  return m;
}

}  // namespace

FitResult fit_trace(const RoutingTrace& trace, const FitOptions& options) {
  FitResult out;
  out.data = measure(trace, {options.window, 0});
  const std::int64_t T = trace.tokens();
  StreamModel m = initial_model(trace.experts, trace.top_k, trace.layer_ids, out.data.popularity, options.seed);
  const std::int64_t fit_tokens = weight_sample_tokens(m);
  const RealMatrix& target = out.data.popularity;
  // Distance of the stream's summary statistics from the data's, in units
  // of the acceptance tolerances (docs/calibration.md).
  const double scale[] = {0.15 * out.data.mean_max_over_mean(), 0.15 * out.data.mean_batch_imbalance(), 0.05, 0.06};
  auto apply = [](StreamModel& model, const std::vector<double>& x) {
    model.type_weight = std::exp(x[0]);
    model.topic_weight = std::exp(x[1]);
    model.topic_switch = 1.0 / (1.0 + std::exp(-x[2]));
  };
  FitResult trial;
  auto objective = [&](const std::vector<double>& x) {
    apply(m, x);  // the weights carry over from the previous evaluation: a warm start
    fit_weights(m, target, fit_tokens, 0, options.seed, 3);
    compare(m, out.data, T, options, trial);
    double d = 0.0;
    for (std::size_t i = 0; i < trial.stats.size(); ++i) {
      const double z = (trial.stats[i].mean - trial.stats[i].data) / scale[i];
      d += z * z;
    }
    if (options.log)
      options.log(fmt::format("  type_weight {:.3g} topic_weight {:.3g} topic_switch {:.3g}: distance {:.3f}",
                              m.type_weight, m.topic_weight, m.topic_switch, std::sqrt(d)));
    return d;
  };
  // From the defaults (the OLMoE fit), steps of about a factor 2.
  const Minimum best = nelder_mead(objective, {std::log(m.type_weight), std::log(m.topic_weight),
                                               std::log(m.topic_switch / (1.0 - m.topic_switch))},
                                   {0.7, 0.7, 0.7}, options.max_evaluations);
  apply(m, best.x);
  m.weight = target;
  fit_weights(m, target, fit_tokens, 0, options.seed, 10);
  out.model = m;
  out.evaluations = best.evaluations;
  compare(m, out.data, T, options, out);
  return out;
}

}  // namespace moesim
