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

// Six significant digits: what the scenario file holds, so the reported fit
// is the written stream's.
void round6(RealMatrix& x) {
  for (auto& row : x)
    for (double& v : row) v = std::stod(fmt::format("{:.6g}", v));
}

// Tokens of the stratified sample that fits the weights: enough for every
// expert's expected share to be estimated within a few percent.
std::int64_t weight_sample_tokens(const StreamModel& m) {
  return std::max<std::int64_t>(8192, std::int64_t(m.experts) * 1024 / m.top_k);
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
  // A fresh sample every iteration, and the geometric mean of the second
  // half's weights: the weights then follow the stream's expected shares
  // rather than one sample's noise (stochastic approximation).
  RealMatrix log_sum(L, std::vector<double>(E, 0.0));
  int averaged = 0;
  for (int it = 0; it < iterations; ++it) {
    const RoutingTrace t = StreamGenerator(model).sample(seed + std::uint64_t(it), tokens, seq_len, true);
    for (int l = 0; l < L; ++l) {
      const std::vector<double> q = shares(layer_counts(t, l));
      const double floor = 0.5 / (double(tokens) * model.top_k);  // an expert never drawn in the sample
      auto& w = model.weight[l];
      for (int e = 0; e < E; ++e)
        w[e] = target[l][e] <= 0.0 ? 0.0 : w[e] * std::pow(target[l][e] / std::max(q[e], floor), damping);
      const double sum = std::accumulate(w.begin(), w.end(), 0.0);
      for (double& x : w) x /= sum;
      if (2 * it >= iterations)
        for (int e = 0; e < E; ++e) log_sum[l][e] += w[e] > 0.0 ? std::log(w[e]) : 0.0;
    }
    averaged += 2 * it >= iterations;
  }
  for (int l = 0; l < L && averaged > 1; ++l) {
    auto& w = model.weight[l];
    for (int e = 0; e < E; ++e) w[e] = w[e] > 0.0 ? std::exp(log_sum[l][e] / averaged) : 0.0;
    const double sum = std::accumulate(w.begin(), w.end(), 0.0);
    for (double& x : w) x /= sum;
  }
}

namespace {

// compare()'s per-sample statistics alone: what the fit's objective scores.
void compare_statistics(const StreamModel& model, const RoutingStats& data, std::int64_t tokens,
                        const FitOptions& options, FitResult& out) {
  const StreamGenerator gen(model);
  out.sample_tokens = tokens;
  out.stats.clear();
  if (!data.per_token) return;  // aggregate loads: compare() adds max/mean in expectation
  std::vector<std::vector<double>> values(4);
  for (int s = 0; s < options.samples; ++s) {
    const RoutingStats st = measure(gen.sample(options.seed + 1 + std::uint64_t(s), tokens), {options.window, 0});
    values[0].push_back(st.mean_max_over_mean());
    values[1].push_back(st.mean_batch_imbalance());
    values[2].push_back(st.mean_locality());
    values[3].push_back(st.mean_nmi());
  }
  const char* names[] = {"max/mean", "batch imbalance", "locality", "cross-layer NMI"};
  const double data_values[] = {data.mean_max_over_mean(), data.mean_batch_imbalance(), data.mean_locality(),
                                data.mean_nmi()};
  for (int i = 0; i < 4; ++i) {
    const double m = std::accumulate(values[i].begin(), values[i].end(), 0.0) / double(values[i].size());
    out.stats.push_back({names[i], data_values[i], m, sd(values[i], m)});
  }
}

}  // namespace

void compare(const StreamModel& model, const RoutingStats& data, std::int64_t tokens, const FitOptions& options,
             FitResult& out) {
  // Popularity is compared in expectation (a stratified sample, its seed
  // apart from the weight fit's), free of the passage-to-passage noise of a
  // sample of the data's size.
  const RoutingStats expected =
      measure(StreamGenerator(model).sample(options.seed + 0x9e3779b9u, 4 * weight_sample_tokens(model), 0, true));
  out.total_variation.clear();
  for (int l = 0; l < model.layers(); ++l)
    out.total_variation.push_back(total_variation(data.popularity[l], expected.popularity[l]));
  out.max_over_mean = expected.max_over_mean;
  compare_statistics(model, data, tokens, options, out);
  if (!data.per_token) out.stats.push_back({"max/mean", data.mean_max_over_mean(), expected.mean_max_over_mean(), 0.0});
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
  round6(m.popularity);
  m.weight = m.popularity;
  m.structure_seed = seed;
  // Hot slots (topics × hot experts) finer than the experts, so that dealing
  // them in proportion to popularity leaves no expert more than its share.
  m.topics = std::max(m.topics, experts / 2);
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
    compare_statistics(m, out.data, T, options, trial);  // the popularity comparison is not scored
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
  round6(m.weight);
  out.model = m;
  out.evaluations = best.evaluations;
  compare(m, out.data, T, options, out);
  return out;
}

void check_loads(const LayerLoads& loads, int top_k, const std::string& path) {
  const StreamModel defaults;
  const int needed = std::max({top_k, defaults.type_experts, defaults.hot_experts});
  if (loads.layers() == 0) throw InputError(path, "", "no layer with routed tokens (every layer is all zero)");
  if (loads.experts() < needed)
    throw InputError(path, "", fmt::format("expected at least {} experts per layer, got {}", needed, loads.experts()));
  for (int l = 0; l < loads.layers(); ++l) {
    const auto& row = loads.load[l];
    const double total = std::accumulate(row.begin(), row.end(), 0.0);
    const int positive = int(std::count_if(row.begin(), row.end(), [](double x) { return x > 0.0; }));
    const auto where = fmt::format("layer {}", loads.layer_ids[l]);
    if (positive < needed)
      throw InputError(path, where, fmt::format("expected at least {} experts with tokens (top-{} routing), got {}",
                                                needed, top_k, positive));
    // Each token picks k distinct experts: no expert can hold more than 1/k of them.
    const double top = *std::max_element(row.begin(), row.end());
    if (top > total / top_k * (1.0 + 1e-9))
      throw InputError(path, where, fmt::format("expert load {} is more than 1/{} of the layer's {}: not top-{} counts "
                                                "(is --top-k right?)", top, top_k, total, top_k));
  }
}

FitResult fit_loads(const LayerLoads& loads, const std::string& path, const FitOptions& options) {
  check_loads(loads, options.top_k, path);
  FitResult out;
  out.data = measure(loads);
  StreamModel m = initial_model(loads.experts(), options.top_k, loads.layer_ids, out.data.popularity, options.seed);
  fit_weights(m, out.data.popularity, weight_sample_tokens(m), 0, options.seed, 10);
  round6(m.weight);
  out.model = m;
  compare(m, out.data, weight_sample_tokens(m), options, out);
  return out;
}

}  // namespace moesim
