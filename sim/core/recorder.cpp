#include "recorder.hpp"

#include <algorithm>
#include <numeric>

#include "moesim/metrics.hpp"

namespace moesim {

namespace {

void add(std::vector<double>& into, const std::vector<double>& v) {
  for (std::size_t i = 0; i < v.size(); ++i) into[i] += v[i];
}

// The whole model's value of a per-layer quantity: the mean over layers (MODEL.md §9).
template <class F>
double layer_mean(std::size_t layers, F&& value) {
  double sum = 0;
  for (std::size_t l = 0; l < layers; ++l) sum += value(l);
  return sum / double(layers);
}

}  // namespace

Recorder::Recorder(const Scenario& sc, const std::vector<std::unique_ptr<Balancer>>& balancers) : sc_(sc) {
  // One series per balancer loss; a name used twice gets a suffix (_2, _3, …).
  for (const auto& b : balancers) {
    std::string name = b->series_name();
    if (!name.empty()) {
      const std::string base = name;
      for (int n = 2; std::find(loss_series_.begin(), loss_series_.end(), name) != loss_series_.end(); ++n)
        name = base + "_" + std::to_string(n);
    }
    loss_series_.push_back(name);
  }
  const int E = sc.shape.experts, D = sc.shape.devices();
  layers_.resize(std::size_t(sc.shape.layers));
  for (LayerTotals& t : layers_) {
    for (auto* v : {&t.routed_total, &t.processed_total, &t.routed_window, &t.processed_window}) v->assign(E, 0.0);
    t.device_total.assign(D, 0.0);
  }
  result_.layer_ids = sc.layer_ids;
}

void Recorder::record_layer(int layer, const StepData& data, std::span<const float> bias, const StepLosses& losses) {
  const Shape& shape = sc_.shape;
  LayerTotals& t = layers_[std::size_t(layer)];
  t.vio_batch = maxvio(data.routed, shape.mean_load());
  t.vio_seq = std::accumulate(data.seq_max_vio.begin(), data.seq_max_vio.end(), 0.0) / shape.sequences;
  t.maxvio_batch_sum += t.vio_batch;
  t.maxvio_seq_sum += t.vio_seq;
  add(t.routed_total, data.routed);
  add(t.processed_total, data.processed);
  add(t.device_total, data.device_load);
  t.dropped += data.dropped;
  t.fully_dropped += data.tokens_fully_dropped;
  t.seqs_with_drops += data.sequences_with_drops;
  t.protected_drops += data.protected_drops;
  if (data.step >= sc_.steps - sc_.record.window) {  // collapse metrics look at the last `window` steps
    add(t.routed_window, data.routed);
    add(t.processed_window, data.processed);
    t.quality_window_sum += losses.quality;
  }
  t.rank_imbalance = rank_imbalance(data.device_load);
  t.rank_imbalance_sum += t.rank_imbalance;
  t.quality = losses.quality;
  t.balance = losses.balance;
  t.step_dropped = data.dropped;
  t.step_fully_dropped = data.tokens_fully_dropped;
  t.bias_min = *std::min_element(bias.begin(), bias.end());
  t.bias_max = *std::max_element(bias.begin(), bias.end());
  t.bias_sum = std::accumulate(bias.begin(), bias.end(), 0.0);
  if (recorded(data.step) && sc_.record.bias_trajectory) t.bias.assign(bias.begin(), bias.end());
  if (recorded(data.step)) {  // the series need this step's loads; the per-step rows keep them
    t.routed = data.routed;
    t.processed = data.processed;
    t.device_load = data.device_load;
    t.device_dropped = data.device_dropped;
  }
}

void Recorder::end_step(int step, const StepTiming& timing) {
  const Shape& shape = sc_.shape;
  const std::size_t L = layers_.size();
  step_time_sum_ += timing.step_time;
  idle_sum_ += timing.idle_fraction;
  bytes_intra_ += timing.bytes_intra;
  bytes_inter_ += timing.bytes_inter;
  ++steps_seen_;
  if (step == sc_.steps - 1) record_timeline(timing);
  if (!recorded(step)) return;

  const double cbar = shape.mean_load(), assignments = double(shape.tokens()) * shape.top_k * L;
  auto mean = [&](auto member) { return layer_mean(L, [&](std::size_t l) { return double(layers_[l].*member); }); };
  auto mean_of = [&](auto f) { return layer_mean(L, [&](std::size_t l) { return f(layers_[l]); }); };
  std::int64_t dropped = 0, fully_dropped = 0;
  for (const LayerTotals& t : layers_) dropped += t.step_dropped, fully_dropped += t.step_fully_dropped;

  auto& s = result_.series;
  s["step"].push_back(step);
  s["maxvio_batch"].push_back(mean(&LayerTotals::vio_batch));
  s["maxvio_seq"].push_back(mean(&LayerTotals::vio_seq));
  s["maxvio_global"].push_back(mean_of([&](const LayerTotals& t) { return maxvio(t.routed_total, cbar * steps_seen_); }));
  s["entropy_norm"].push_back(mean_of([&](const LayerTotals& t) { return entropy_norm(t.routed); }));
  s["max_over_mean"].push_back(mean_of([&](const LayerTotals& t) { return max_over_mean(t.routed); }));
  s["drop_rate"].push_back(double(dropped) / assignments);
  s["token_drop_rate"].push_back(double(fully_dropped) / (double(shape.tokens()) * L));
  s["quality_loss"].push_back(mean(&LayerTotals::quality));
  for (std::size_t i = 0; i < loss_series_.size(); ++i)
    if (!loss_series_[i].empty()) s[loss_series_[i]].push_back(mean_of([&](const LayerTotals& t) { return t.balance[i]; }));
  double bias_min = layers_[0].bias_min, bias_max = layers_[0].bias_max, bias_sum = 0;
  for (const LayerTotals& t : layers_) {
    bias_min = std::min(bias_min, t.bias_min);
    bias_max = std::max(bias_max, t.bias_max);
    bias_sum += t.bias_sum;
  }
  s["bias_min"].push_back(bias_min);
  s["bias_max"].push_back(bias_max);
  s["bias_mean"].push_back(bias_sum / (double(shape.experts) * L));
  s["step_time"].push_back(timing.step_time);
  s["dispatch_time"].push_back(timing.dispatch);
  s["compute_time"].push_back(timing.compute);
  s["combine_time"].push_back(timing.combine);
  s["idle_fraction"].push_back(timing.idle_fraction);
  s["critical_device"].push_back(timing.critical_device);
  s["rank_imbalance"].push_back(mean(&LayerTotals::rank_imbalance));

  // The load metrics of every layer.
  auto by_layer = [&](const char* name, auto f) {
    auto& rows = result_.series_by_layer[name];
    rows.resize(L);
    for (std::size_t l = 0; l < L; ++l) rows[l].push_back(f(layers_[l]));
  };
  by_layer("maxvio_batch", [](const LayerTotals& t) { return t.vio_batch; });
  by_layer("max_over_mean", [](const LayerTotals& t) { return max_over_mean(t.routed); });
  by_layer("drop_rate", [&](const LayerTotals& t) { return double(t.step_dropped) / (double(shape.tokens()) * shape.top_k); });
  by_layer("rank_imbalance", [](const LayerTotals& t) { return t.rank_imbalance; });

  auto rows = [&](const char* name, std::vector<double> LayerTotals::*member) {
    Matrix m(L);
    for (std::size_t l = 0; l < L; ++l) m[l] = layers_[l].*member;
    result_.per_step_by_layer[name].push_back(std::move(m));
  };
  if (sc_.record.per_step_loads) {
    rows("expert_load", &LayerTotals::routed);
    rows("expert_processed", &LayerTotals::processed);
    rows("device_load", &LayerTotals::device_load);
    rows("device_dropped", &LayerTotals::device_dropped);
    result_.per_step["device_busy"].push_back(timing.busy);
  }
  if (sc_.record.bias_trajectory) rows("bias", &LayerTotals::bias);
  if (sc_.record.placement_history) rows("replicas", &LayerTotals::replicas);
  record_timing(timing);
}

void Recorder::record_placement(int layer, int step, const std::vector<int>& replicas) {
  if (sc_.record.placement_history && recorded(step))
    layers_[std::size_t(layer)].replicas.assign(replicas.begin(), replicas.end());
}

// The timing model's further per-step series (MODEL.md §6, docs/timing.md).
void Recorder::record_timing(const StepTiming& timing) {
  auto& s = result_.series;
  s["dense_time"].push_back(timing.dense);
  s["bytes_intra"].push_back(timing.bytes_intra);
  s["bytes_inter"].push_back(timing.bytes_inter);
  s["bytes_dispatch"].push_back(timing.bytes_dispatch_intra + timing.bytes_dispatch_inter);
  s["bytes_combine"].push_back(timing.bytes_combine_intra + timing.bytes_combine_inter);
  if (sc_.record.per_step_loads) result_.per_step["layer_time"].push_back(timing.layer_time);
}

// The last step's schedule of its critical device, 8 numbers per (layer,
// micro-batch) cell: what timing.png draws as a Gantt chart.
void Recorder::record_timeline(const StepTiming& timing) {
  std::vector<double> rows;
  const int m = int(timing.timeline.size()) / std::max<int>(1, int(timing.layer_time.size()));
  for (std::size_t c = 0; c < timing.timeline.size(); ++c) {
    const CellTimes& t = timing.timeline[c];
    rows.insert(rows.end(), {double(int(c) / m), double(int(c) % m), t.dense_start, t.dense_end, t.expert_ready,
                             t.expert_start, t.expert_end, t.layer_end});
  }
  timeline_ = {std::move(rows)};
  critical_device_ = double(timing.critical_device);
}

Result Recorder::finish(const std::vector<std::vector<float>>& bias) {
  const Shape& shape = sc_.shape;
  const std::size_t L = layers_.size();
  const double steps = steps_seen_, window = std::min(sc_.record.window, steps_seen_);
  const double cbar = shape.mean_load();
  // Every per-layer metric, then the whole model's (MODEL.md §9).
  auto& by = result_.summary_by_layer;
  for (const LayerTotals& t : layers_) {
    by["maxvio_batch"].push_back(t.maxvio_batch_sum / steps);
    by["maxvio_seq"].push_back(t.maxvio_seq_sum / steps);
    by["maxvio_global"].push_back(maxvio(t.routed_total, cbar * steps));
    by["cv"].push_back(cv(t.routed_window));
    by["entropy_norm"].push_back(entropy_norm(t.routed_window));
    by["max_over_mean"].push_back(max_over_mean(t.routed_window));
    by["dead_experts"].push_back(dead_experts(t.processed_window, 0.01 * cbar * window));
    by["top10_share"].push_back(top10_share(t.routed_window));
    by["drop_rate"].push_back(double(t.dropped) / (steps * shape.tokens() * shape.top_k));
    by["token_drop_rate"].push_back(double(t.fully_dropped) / (steps * shape.tokens()));
    by["sequences_without_drops"].push_back(1.0 - double(t.seqs_with_drops) / (steps * shape.sequences));
    by["quality_loss"].push_back(t.quality_window_sum / window);
    by["protected_drops"].push_back(double(t.protected_drops));
    by["rank_imbalance"].push_back(t.rank_imbalance_sum / steps);
  }
  auto mean = [&](const char* name) {
    const auto& v = *by.find(name);
    return std::accumulate(v.begin(), v.end(), 0.0) / double(L);
  };
  auto total = [&](const char* name) {
    const auto& v = *by.find(name);
    return std::accumulate(v.begin(), v.end(), 0.0);
  };
  std::int64_t dropped = 0, fully_dropped = 0;
  for (const LayerTotals& t : layers_) dropped += t.dropped, fully_dropped += t.fully_dropped;
  auto& m = result_.summary;
  m["tokens"] = steps * shape.tokens();
  for (const char* name : {"maxvio_batch", "maxvio_seq", "maxvio_global", "cv", "entropy_norm", "max_over_mean"})
    m[name] = mean(name);
  m["dead_experts"] = total("dead_experts");
  m["top10_share"] = mean("top10_share");
  // Rates pooled over every assignment (token) of every layer.
  m["drop_rate"] = double(dropped) / (steps * shape.tokens() * shape.top_k * double(L));
  m["token_drop_rate"] = double(fully_dropped) / (steps * shape.tokens() * double(L));
  m["sequences_without_drops"] = mean("sequences_without_drops");
  m["quality_loss"] = mean("quality_loss");
  m["protected_drops"] = total("protected_drops");
  m["step_time_mean"] = step_time_sum_ / steps;
  m["idle_fraction"] = idle_sum_ / steps;
  m["rank_imbalance"] = mean("rank_imbalance");
  m["comm_bytes_intra"] = bytes_intra_;
  m["comm_bytes_inter"] = bytes_inter_;
  // The layer with the highest MaxVio_batch (the first of equals), by id.
  const auto& vio = *by.find("maxvio_batch");
  m["worst_layer"] = result_.layer_ids[std::size_t(std::max_element(vio.begin(), vio.end()) - vio.begin())];

  auto& fin = result_.final;
  for (const auto& b : bias) fin["bias"].emplace_back(b.begin(), b.end());
  for (const LayerTotals& t : layers_) {
    fin["expert_load_total"].push_back(t.routed_total);
    fin["expert_processed_total"].push_back(t.processed_total);
    fin["device_load_total"].push_back(t.device_total);
  }
  fin["critical_timeline"] = timeline_;
  fin["critical_device"] = {{critical_device_}};
  return std::move(result_);
}

}  // namespace moesim
