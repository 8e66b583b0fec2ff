// One strategy's run: the step pipeline of ARCHITECTURE.md, once per MoE
// layer (MODEL.md §9), then the step's timing over all layers (§6).
#include "moesim/simulation.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "../cluster/traffic.hpp"
#include "../engine/moe_layer.hpp"
#include "../learn/sgd.hpp"
#include "../serve/serve.hpp"
#include "counting.hpp"
#include "moesim/components.hpp"
#include "moesim/scores.hpp"
#include "recorder.hpp"

namespace moesim {

namespace {

// |z| beyond which the router counts as diverged (see the check in the loop).
constexpr float kDivergedLogit = 20.0f;

// Gradient buffers of a layer's training step, shared by the layers (each
// layer's gradient is used before the next layer runs); T×E ones only when
// some loss needs them.
struct Gradients {
  std::vector<float> selected, s, z, w;
  GradientScratch scratch;
  Gradients(const Scenario& sc, const std::vector<std::unique_ptr<Balancer>>& balancers) {
    if (!sc.train) return;
    const std::size_t T = std::size_t(sc.shape.tokens()), E = std::size_t(sc.shape.experts);
    auto any = [&](auto uses) { return std::any_of(balancers.begin(), balancers.end(), uses); };
    selected.resize(T * sc.shape.top_k);
    if (any([](const auto& b) { return b->uses_score_gradient(); })) s.resize(T * E);
    if (any([](const auto& b) { return b->uses_logit_gradient(); })) z.resize(T * E);
    w.resize(E * sc.shape.hidden);
  }
};

// Rows of the router's logits and scores that something reads after the
// selection; the router keeps the others only in cache. All of them for a
// source that gives logits (or choices), a balance loss on scores or logits,
// or a softmax router's gradient; with sigmoid scores training reads the
// selected scores (data.affinity) and the first sequence's logits (the
// divergence check); inference reads none.
int score_rows(const Scenario& sc, const TokenSource& source, const std::vector<std::unique_ptr<Balancer>>& balancers) {
  const bool all = source.output() != SourceOutput::hidden ||
                   (sc.train && sc.model.score == ScoreFunction::softmax) ||
                   std::any_of(balancers.begin(), balancers.end(), [](const auto& b) {
                     // weight_gradient reads every row when a loss has a score or logit gradient.
                     return b->needs_scores() || b->uses_score_gradient() || b->uses_logit_gradient();
                   });
  if (all) return sc.shape.tokens();
  return sc.train ? sc.shape.seq_len : 0;
}

// One training step of a layer's router: SGD on its task loss and balance
// losses; throws DivergenceError when the router blows up (MODEL.md §3).
void train_layer(const Scenario& sc, MoeLayer& layer, StepData& data, Gradients& grad, const StepLosses& losses) {
  const Shape& shape = sc.shape;
  weight_gradient(sc.model.score, data.x, data.s, {data.expert, grad.selected, grad.s, grad.z, data.affinity}, shape,
                  grad.w, grad.scratch);
  // Unstable SGD shows as logits growing without bound (stable runs stay
  // below ~2); past |z| ≈ 17 float32 sigmoid scores saturate to exactly 1.
  // Logits blow up for every token at once, so the first sequence suffices.
  const float max_logit = max_abs({data.z.data(), std::size_t(shape.seq_len) * shape.experts});
  auto diverged = [&](const std::string& why) {
    return DivergenceError(data.step, fmt::format("the router diverged at step {} ({}): lower /model/lr (now {}) or "
                                                  "the balancers' alpha/beta; plain SGD needs lr·alpha ≲ 2.5 "
                                                  "(MODEL.md §3)", data.step, why, sc.model.lr));
  };
  if (max_logit > kDivergedLogit)
    throw diverged(fmt::format("logits reached |z| = {:.3g}, the scores saturate", max_logit));
  bool finite = std::isfinite(losses.quality);
  for (double l : losses.balance) finite = finite && std::isfinite(l);
  if (!sgd_update(layer.router.weights(), grad.w, sc.model.lr) || !finite) throw diverged("non-finite weights or loss");
  layer.learner.update_competence(data);
}

}  // namespace

Result simulate(const Scenario& sc, const StrategySpec& strategy, const ProgressFn& progress,
                const RoutingFn& on_routing) {
  if (sc.serve.enabled) return serve(sc, strategy, progress);
  const Shape& shape = sc.shape;
  const int L = shape.layers, T = shape.tokens(), k = shape.top_k;

  auto source = Registry<TokenSource>::instance().find(sc.stream.type)->make(sc.stream.params, shape);
  if (!sc.stream_layers.empty()) source->configure_layers(sc.stream_layers, sc.stream_overridden);
  source->seed(sc.seed);
  std::vector<MoeLayer> layers;
  layers.reserve(std::size_t(L));
  for (int l = 0; l < L; ++l) layers.emplace_back(sc, strategy, l);
  StepData data;
  data.resize(shape, score_rows(sc, *source, layers[0].balancers));
  TrafficBuilder traffic(shape, sc.cluster.hardware);
  Gradients grad(sc, layers[0].balancers);
  Recorder recorder(sc, layers[0].balancers);
  // Every layer's choices of the step, for a routing observer (--trace-out).
  std::vector<std::int32_t> choices(on_routing ? std::size_t(T) * L * k : 0);
  for (int step = 0; step < sc.steps; ++step) {
    data.step = step;
    traffic.begin_step(L);
    for (int l = 0; l < L; ++l) {
      MoeLayer& layer = layers[std::size_t(l)];
      layer.route(*source, step, l, data);
      layer.dropper->keep(data, shape, layer.map);
      count_loads(data, shape, layer.protected_seq);
      traffic.add_layer(l, data, layer.map, layer.padded);  // also fills the layer's device loads

      StepLosses losses;
      if (sc.train) {
        parallel_zero(grad.s);
        parallel_zero(grad.z);
      }
      LossGrad grads{grad.s, grad.z};
      losses.quality = layer.learner.task_loss(data, grad.selected);
      for (auto& b : layer.balancers) losses.balance.push_back(b->loss(data, shape, grads));
      if (sc.train) train_layer(sc, layer, data, grad, losses);
      for (auto& b : layer.balancers) b->end_of_step(data, shape, layer.bias);
      recorder.record_layer(l, data, layer.bias, losses);
      recorder.record_placement(l, step, layer.map.logcnt);
      layer.placement->observe(step, data.routed, layer.map);
      layer.placed();
      if (on_routing)
        for (int t = 0; t < T; ++t)
          std::copy_n(&data.expert[std::size_t(t) * k], k, &choices[(std::size_t(t) * L + l) * k]);
    }
    recorder.end_step(step, simulate_step(sc.cluster.hardware, traffic.traffic()));
    if (on_routing) on_routing(step, choices);
    if (progress) progress(step + 1);
  }
  std::vector<std::vector<float>> bias;
  for (const MoeLayer& layer : layers) bias.push_back(layer.bias);
  return recorder.finish(bias);
}

}  // namespace moesim
