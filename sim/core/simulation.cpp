// One strategy's run: the step pipeline of ARCHITECTURE.md.
#include "moesim/simulation.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "../learn/learner.hpp"
#include "../learn/sgd.hpp"
#include "../route/router.hpp"
#include "../cluster/traffic.hpp"
#include "counting.hpp"
#include "moesim/components.hpp"
#include "moesim/scores.hpp"
#include "recorder.hpp"

namespace moesim {

namespace {

template <class Interface>
std::unique_ptr<Interface> build(const ComponentSpec& spec, const Shape& shape) {
  return Registry<Interface>::instance().find(spec.type)->make(spec.params, shape);
}

// Device of each expert's first replica: what device-level droppers and losses use.
void primary_devices(const PlacementMap& map, std::vector<std::int32_t>& dev) {
  dev.resize(map.logcnt.size());
  for (std::size_t e = 0; e < dev.size(); ++e) dev[e] = map.device_of_slot(map.log2phy[e][0]);
}

// |z| beyond which the router counts as diverged (see the check in the loop).
constexpr float kDivergedLogit = 20.0f;

}  // namespace

Result simulate(const Scenario& sc, const StrategySpec& strategy, const ProgressFn& progress) {
  const Shape& shape = sc.shape;
  const int T = shape.tokens(), E = shape.experts, d = shape.hidden;

  auto source = build<TokenSource>(sc.stream, shape);
  source->seed(sc.seed);
  auto constraint = build<RoutingConstraint>(strategy.routing, shape);
  auto dropper = build<Dropper>(strategy.dropper, shape);
  std::vector<std::unique_ptr<Balancer>> balancers;
  for (const auto& b : strategy.balancers) balancers.push_back(build<Balancer>(b, shape));

  Router router(sc, sc.seed);
  Learner learner(sc, sc.seed);
  auto placement = build<Placement>(strategy.placement, shape);
  PlacementMap map = placement->initial(shape);
  StepData data;
  data.resize(shape);
  std::vector<std::int32_t>& device_of_expert = data.expert_device;
  primary_devices(map, device_of_expert);
  TrafficBuilder traffic(shape);
  const double padded = dropper->padded_capacity(shape);
  const std::vector<std::uint8_t> protected_seq = dropper->protected_sequences(shape);

  // Gradient buffers, T×E ones only when some loss needs them.
  std::vector<float> bias(E, 0.0f), grad_selected, grad_s, grad_z, grad_w, grad_partials;
  if (sc.train) {
    auto any = [&](auto uses) { return std::any_of(balancers.begin(), balancers.end(), uses); };
    grad_selected.resize(std::size_t(T) * shape.top_k);
    if (any([](const auto& b) { return b->uses_score_gradient(); })) grad_s.resize(std::size_t(T) * E);
    if (any([](const auto& b) { return b->uses_logit_gradient(); })) grad_z.resize(std::size_t(T) * E);
    grad_w.resize(std::size_t(E) * d);
  }
  Recorder recorder(sc, balancers);

  for (int step = 0; step < sc.steps; ++step) {
    data.step = step;
    source->next(step, data);
    if (source->output() == SourceOutput::hidden) router.logits(data);
    if (source->output() != SourceOutput::choices) {
      router.scores(data);
      router.select(data, bias, *constraint, device_of_expert);
    }
    dropper->keep(data, shape, device_of_expert);
    count_loads(data, shape, protected_seq);
    const StepTiming timing = simulate_step(sc.cluster.hardware, traffic.build(data, map, padded));

    StepLosses losses;
    if (sc.train) {
      parallel_zero(grad_s);
      parallel_zero(grad_z);
    }
    LossGrad grads{grad_s, grad_z};
    losses.quality = learner.task_loss(data, grad_selected);
    for (auto& b : balancers) losses.balance.push_back(b->loss(data, shape, grads));
    if (sc.train) {
      weight_gradient(sc.model.score, data.x, data.s, {data.expert, grad_selected, grad_s, grad_z}, shape, grad_w,
                      grad_partials);
      // Unstable SGD shows as logits growing without bound (stable runs stay
      // below ~2); past |z| ≈ 17 float32 sigmoid scores saturate to exactly 1.
      // Logits blow up for every token at once, so the first sequence suffices.
      const float max_logit = max_abs({data.z.data(), std::size_t(shape.seq_len) * E});
      auto diverged = [&](const std::string& why) {
        return DivergenceError(step, fmt::format("the router diverged at step {} ({}): lower /model/lr (now {}) or "
                                                 "the balancers' alpha/beta; plain SGD needs lr·alpha ≲ 2.5 "
                                                 "(MODEL.md §3)", step, why, sc.model.lr));
      };
      if (max_logit > kDivergedLogit)
        throw diverged(fmt::format("logits reached |z| = {:.3g}, the scores saturate", max_logit));
      bool finite = std::isfinite(losses.quality);
      for (double l : losses.balance) finite = finite && std::isfinite(l);
      if (!sgd_update(router.weights(), grad_w, sc.model.lr) || !finite) throw diverged("non-finite weights or loss");
      learner.update_competence(data);

    }
    for (auto& b : balancers) b->end_of_step(data, shape, bias);
    recorder.record(data, bias, losses, balancers, timing);
    recorder.record_placement(step, map.logcnt);
    placement->observe(step, data.routed, map);
    primary_devices(map, device_of_expert);
    if (progress) progress(step + 1);
  }
  return recorder.finish(bias);
}

}  // namespace moesim
