// Auxiliary balance losses (MODEL.md §4). Every level has the form
// L = α·Σ_i w_i·P_i, with load weights w from routed counts (constants, as in
// the frameworks) and the pooled affinity P:
//   expert (Switch/GShard, DeepSeek-V2 α1):  w_i = f_i = E/(k·n)·c_i
//   device (DeepSeek-V2 α2):                 w_i = f'_{dev(i)} = mean of f over the device
//   comm   (DeepSeek-V2 α3):                 w_i = f''_{dev(i)} = D/(M·n)·sent_{dev(i)}
// with M the devices a token may reach: the strategy's device_limited m, else
// min(k, D).
// over a scope: the batch, each sequence (DeepSeek-V3 sequence-wise, averaged
// over sequences), or counts accumulated over `window` steps (Qwen global-batch).
// Devices are the placement's (StepData::expert_device).
#include <fmt/format.h>

#include <algorithm>
#include <numeric>

#include "moesim/components.hpp"
#include "pooled_affinity.hpp"

namespace moesim {
namespace {

enum class Level { expert, device, comm };
enum class Scope { batch, sequence, global };

class AuxLoss final : public Balancer {
 public:
  AuxLoss(const Params& p, const Shape& s)
      : shape_(s),
        alpha_(p.real("alpha")),
        level_name_(p.str("level")),
        scope_name_(p.str("scope")),
        level_(level_name_ == "device" ? Level::device : level_name_ == "comm" ? Level::comm : Level::expert),
        scope_(scope_name_ == "sequence" ? Scope::sequence : scope_name_ == "global" ? Scope::global : Scope::batch),
        // A window longer than the run never wraps: keep only the run's steps
        // (window × experts up front took 3.2 GB for a 16-token run).
        window_(int(s.steps > 0 ? std::min<std::int64_t>(p.integer("window"), s.steps) : p.integer("window"))),
        devices_per_token_(p.has("m") ? double(p.integer("m")) : double(std::min(s.top_k, s.devices()))) {}

  bool needs_scores() const override { return true; }
  bool uses_score_gradient() const override { return true; }

  std::string series_name() const override { return fmt::format("aux_loss_{}_{}", level_name_, scope_name_); }

  double loss(const StepData& data, const Shape& s, const LossGrad& grad) override {
    const int T = s.tokens(), L = s.seq_len, B = s.sequences;
    switch (scope_) {
      case Scope::batch:
        count(data, 0, T, counts_, sent_);
        return term(data, 0, T, counts_, sent_, T, grad, 1.0);
      case Scope::sequence: {
        double total = 0.0;
        for (int n = 0; n < B; ++n) {
          count(data, n * L, (n + 1) * L, counts_, sent_);
          total += term(data, n * L, (n + 1) * L, counts_, sent_, L, grad, 1.0 / B);
        }
        return total / B;
      }
      case Scope::global: {
        count(data, 0, T, counts_, sent_);
        if (history_tokens_.empty()) {  // on the first step, not when a scenario is validated
          history_counts_.assign(std::size_t(window_) * s.experts, 0.0);
          history_sent_.assign(std::size_t(window_) * s.devices(), 0.0);
          history_tokens_.assign(std::size_t(window_), 0.0);
        }
        const int slot = step_++ % window_;
        std::copy(counts_.begin(), counts_.end(), history_counts_.begin() + std::size_t(slot) * s.experts);
        std::copy(sent_.begin(), sent_.end(), history_sent_.begin() + std::size_t(slot) * s.devices());
        history_tokens_[slot] = T;
        sum_rows(history_counts_, s.experts, counts_);
        sum_rows(history_sent_, s.devices(), sent_);
        const double tokens = std::accumulate(history_tokens_.begin(), history_tokens_.end(), 0.0);
        return term(data, 0, T, counts_, sent_, tokens, grad, 1.0);
      }
    }
    return 0.0;
  }

 private:
  // Routed counts per expert, and tokens sending to each device (a token
  // counts once per device holding at least one of its experts), over [t0, t1).
  void count(const StepData& data, int t0, int t1, std::vector<double>& c, std::vector<double>& sent) const {
    const int k = shape_.top_k, D = shape_.devices();
    c.assign(shape_.experts, 0.0);
    sent.assign(D, 0.0);
    for (int t = t0; t < t1; ++t) {
      int first_devices[64];  // devices hit by this token (k ≤ 64)
      int hits = 0;
      for (int r = 0; r < k; ++r) {
        const int e = data.expert[std::size_t(t) * k + r];
        c[e] += 1.0;
        const int d = data.expert_device[e];
        bool dup = false;
        for (int h = 0; h < hits; ++h) dup = dup || first_devices[h] == d;
        if (!dup) first_devices[hits++] = d, sent[d] += 1.0;
      }
    }
  }

  static void sum_rows(const std::vector<double>& rows, int width, std::vector<double>& out) {
    out.assign(width, 0.0);
    for (std::size_t r = 0; r < rows.size() / width; ++r)
      for (int i = 0; i < width; ++i) out[i] += rows[r * width + i];
  }

  // α·Σ_i w_i·P_i over tokens [t0, t1); counts were taken over `n` tokens.
  double term(const StepData& data, int t0, int t1, const std::vector<double>& c, const std::vector<double>& sent,
              double n, const LossGrad& grad, double scale) {
    const int E = shape_.experts, D = shape_.devices(), k = shape_.top_k;
    weights_.assign(E, 0.0);
    for (int i = 0; i < E; ++i) weights_[i] = E / (k * n) * c[i];  // f_i
    const std::vector<std::int32_t>& dev = data.expert_device;
    if (level_ == Level::device) {  // f'_d: mean of f over the device's experts
      device_sum_.assign(D, 0.0);
      device_size_.assign(D, 0.0);
      for (int i = 0; i < E; ++i) device_sum_[dev[i]] += weights_[i], device_size_[dev[i]] += 1.0;
      for (int i = 0; i < E; ++i) weights_[i] = device_sum_[dev[i]] / device_size_[dev[i]];
    } else if (level_ == Level::comm) {  // f''_d = D/(M·n)·sent_d
      for (int i = 0; i < E; ++i) weights_[i] = D / (devices_per_token_ * n) * sent[dev[i]];
    }
    pooled_affinity(shape_.score, data.s, E, t0, t1, pooled_);
    double value = 0.0;
    for (int i = 0; i < E; ++i) value += weights_[i] * pooled_[i];
    if (!grad.s.empty()) {
      for (double& w : weights_) w *= scale * alpha_ / (t1 - t0);  // ∂L/∂s'_{t,i}
      add_pooled_gradient(shape_.score, data.s, E, t0, t1, weights_, grad.s);
    }
    return alpha_ * value;
  }

  Shape shape_;
  double alpha_;
  std::string level_name_, scope_name_;
  Level level_;
  Scope scope_;
  int window_;
  double devices_per_token_;  // M of the comm level
  int step_ = 0;
  std::vector<double> counts_, sent_, weights_, pooled_, device_sum_, device_size_;
  std::vector<double> history_counts_, history_sent_, history_tokens_;
};

const Registration<Balancer> registration{{
    "aux_loss",
    "auxiliary balance loss α·Σ f·P (Switch/GShard; DeepSeek-V2 expert/device/comm; V3 sequence-wise)",
    {
        ParamSpec::real("alpha", 0.01, 0.0, 1e6, "loss weight α"),
        ParamSpec::choice("level", {"expert", "device", "comm"}, "what is balanced: experts, devices, or traffic"),
        ParamSpec::choice("scope", {"batch", "sequence", "global"},
                          "counts per step, per sequence (averaged), or accumulated over `window` steps"),
        ParamSpec::integer("window", 10, 1, 100000, "steps accumulated by scope global"),
        ParamSpec::required_integer("m", 1, 65536, "comm level: devices a token may reach (V2's M)")
            .derived_from("the strategy's device_limited m, else min(top_k, devices)"),
    },
    make<Balancer, AuxLoss>,
}};

}  // namespace
}  // namespace moesim
