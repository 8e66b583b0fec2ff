#include "recorder.hpp"

#include <algorithm>
#include <numeric>

#include "moesim/metrics.hpp"

namespace moesim {

namespace {
void add(std::vector<double>& into, const std::vector<double>& v) {
  for (std::size_t i = 0; i < v.size(); ++i) into[i] += v[i];
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
  const int E = sc.shape.experts;
  routed_total_.assign(E, 0.0);
  processed_total_.assign(E, 0.0);
  routed_window_.assign(E, 0.0);
  processed_window_.assign(E, 0.0);
  device_total_.assign(sc.shape.devices(), 0.0);
}

void Recorder::record(const StepData& data, std::span<const float> bias, const StepLosses& losses,
                      const std::vector<std::unique_ptr<Balancer>>& balancers, const StepTiming& timing) {
  const Shape& shape = sc_.shape;
  const int step = data.step;
  const double cbar = shape.mean_load();
  const double assignments = double(shape.tokens()) * shape.top_k;

  const double vio_batch = maxvio(data.routed, cbar);
  const double vio_seq = std::accumulate(data.seq_max_vio.begin(), data.seq_max_vio.end(), 0.0) / shape.sequences;
  maxvio_batch_sum_ += vio_batch;
  maxvio_seq_sum_ += vio_seq;
  add(routed_total_, data.routed);
  add(processed_total_, data.processed);
  add(device_total_, data.device_load);
  dropped_ += data.dropped;
  fully_dropped_ += data.tokens_fully_dropped;
  seqs_with_drops_ += data.sequences_with_drops;
  protected_drops_ += data.protected_drops;
  if (step >= sc_.steps - sc_.record.window) {  // collapse metrics look at the last `window` steps
    add(routed_window_, data.routed);
    add(processed_window_, data.processed);
    quality_window_sum_ += losses.quality;
  }
  // Rank imbalance as serving reports it: max/mean − 1 of the devices' loads.
  const double rank_imbalance = max_over_mean(data.device_load) > 0 ? max_over_mean(data.device_load) - 1.0 : 0.0;
  step_time_sum_ += timing.step_time;
  idle_sum_ += timing.idle_fraction;
  rank_imbalance_sum_ += rank_imbalance;
  bytes_intra_ += timing.bytes_intra;
  bytes_inter_ += timing.bytes_inter;
  ++steps_seen_;

  if (step % sc_.record.every != 0) return;
  auto& s = result_.series;
  s["step"].push_back(step);
  s["maxvio_batch"].push_back(vio_batch);
  s["maxvio_seq"].push_back(vio_seq);
  s["maxvio_global"].push_back(maxvio(routed_total_, cbar * steps_seen_));
  s["entropy_norm"].push_back(entropy_norm(data.routed));
  s["max_over_mean"].push_back(max_over_mean(data.routed));
  s["drop_rate"].push_back(double(data.dropped) / assignments);
  s["token_drop_rate"].push_back(double(data.tokens_fully_dropped) / shape.tokens());
  s["quality_loss"].push_back(losses.quality);
  for (std::size_t i = 0; i < balancers.size(); ++i)
    if (!loss_series_[i].empty()) s[loss_series_[i]].push_back(losses.balance[i]);
  s["bias_min"].push_back(*std::min_element(bias.begin(), bias.end()));
  s["bias_max"].push_back(*std::max_element(bias.begin(), bias.end()));
  s["bias_mean"].push_back(std::accumulate(bias.begin(), bias.end(), 0.0) / bias.size());
  s["step_time"].push_back(timing.step_time);
  s["dispatch_time"].push_back(timing.dispatch);
  s["compute_time"].push_back(timing.compute);
  s["combine_time"].push_back(timing.combine);
  s["idle_fraction"].push_back(timing.idle_fraction);
  s["critical_device"].push_back(timing.critical_device);
  s["rank_imbalance"].push_back(rank_imbalance);
  if (sc_.record.per_step_loads) {
    result_.per_step["expert_load"].push_back(data.routed);
    result_.per_step["expert_processed"].push_back(data.processed);
    result_.per_step["device_load"].push_back(data.device_load);
    result_.per_step["device_dropped"].push_back(data.device_dropped);
    result_.per_step["device_busy"].push_back(timing.busy);
  }
  if (sc_.record.bias_trajectory) result_.per_step["bias"].emplace_back(bias.begin(), bias.end());
}

void Recorder::record_placement(int step, const std::vector<int>& replicas) {
  if (sc_.record.placement_history && step % sc_.record.every == 0)
    result_.per_step["replicas"].emplace_back(replicas.begin(), replicas.end());
}

Result Recorder::finish(std::span<const float> bias) {
  const Shape& shape = sc_.shape;
  const double steps = steps_seen_, window = std::min(sc_.record.window, steps_seen_);
  const double cbar = shape.mean_load();
  auto& m = result_.summary;
  m["tokens"] = steps * shape.tokens();
  m["maxvio_batch"] = maxvio_batch_sum_ / steps;
  m["maxvio_seq"] = maxvio_seq_sum_ / steps;
  m["maxvio_global"] = maxvio(routed_total_, cbar * steps);
  m["cv"] = cv(routed_window_);
  m["entropy_norm"] = entropy_norm(routed_window_);
  m["max_over_mean"] = max_over_mean(routed_window_);
  m["dead_experts"] = dead_experts(processed_window_, 0.01 * cbar * window);
  m["top10_share"] = top10_share(routed_window_);
  m["drop_rate"] = double(dropped_) / (steps * shape.tokens() * shape.top_k);
  m["token_drop_rate"] = double(fully_dropped_) / (steps * shape.tokens());
  m["sequences_without_drops"] = 1.0 - double(seqs_with_drops_) / (steps * shape.sequences);
  m["quality_loss"] = quality_window_sum_ / window;
  m["protected_drops"] = double(protected_drops_);
  m["step_time_mean"] = step_time_sum_ / steps;
  m["idle_fraction"] = idle_sum_ / steps;
  m["rank_imbalance"] = rank_imbalance_sum_ / steps;
  m["comm_bytes_intra"] = bytes_intra_;
  m["comm_bytes_inter"] = bytes_inter_;
  result_.final["bias"] = std::vector<double>(bias.begin(), bias.end());
  result_.final["expert_load_total"] = routed_total_;
  result_.final["expert_processed_total"] = processed_total_;
  result_.final["device_load_total"] = device_total_;
  return std::move(result_);
}

}  // namespace moesim
