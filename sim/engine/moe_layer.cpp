#include "moe_layer.hpp"

#include <omp.h>

#include <algorithm>

namespace moesim {

namespace {

template <class Interface>
std::unique_ptr<Interface> build(const ComponentSpec& spec, const Shape& shape) {
  return Registry<Interface>::instance().find(spec.type)->make(spec.params, shape);
}

}  // namespace

MoeLayer::MoeLayer(const Scenario& sc, const StrategySpec& strategy, int layer)
    : router(sc, sc.seed, layer),
      learner(sc, sc.seed, layer),
      constraint(build<RoutingConstraint>(strategy.routing, sc.shape)),
      dropper(build<Dropper>(strategy.dropper, sc.shape)),
      placement(build<Placement>(strategy.placement, sc.shape)),
      bias(std::size_t(sc.shape.experts), 0.0f) {
  const Shape& shape = sc.shape;
  for (const auto& b : strategy.balancers) balancers.push_back(build<Balancer>(b, shape));
  map = placement->initial(shape);
  placed();
  padded = dropper->padded_capacity(shape);
  protected_seq = dropper->protected_sequences(shape);
}

void MoeLayer::placed() {
  // The router's per-token rows, if the constraint reads them.
  replicas.index(map, constraint->reads_devices() ? ReplicaIndex::device_rows : ReplicaIndex::no_rows);
  expert_device.resize(map.logcnt.size());
  for (std::size_t e = 0; e < expert_device.size(); ++e) expert_device[e] = map.device_of_slot(map.log2phy[e][0]);
}

void MoeLayer::route(TokenSource& source, int step, int layer, StepData& data) const {
  std::copy(expert_device.begin(), expert_device.end(), data.expert_device.begin());
  if (source.output() == SourceOutput::hidden) return route_hidden(source, step, layer, data);
  source.next(step, layer, data);
  if (source.output() == SourceOutput::logits) {
    router.scores(data);
    router.select(data, bias, *constraint, replicas);
  }
}

void MoeLayer::route_hidden(TokenSource& source, int step, int layer, StepData& data) const {
  // One parallel region for the whole layer, in which logits, scores and
  // selection follow each other on a chunk of tokens while it is in cache,
  // rather than one pass (and barrier) per stage over T×E matrices. A source
  // that generates by sequence also makes the chunks in the same region, if
  // there are sequences enough to keep every thread busy, and long enough.
  // Tasks are handed out dynamically (a busy core delays no one); every
  // token's result is the same whichever thread routes it.
  struct RouteChunk final : TokenSink {
    const MoeLayer& layer;
    StepData& data;
    Router::Scratch& scratch;
    bool complete = true;
    RouteChunk(const MoeLayer& l, StepData& d, Router::Scratch& s) : layer(l), data(d), scratch(s) {}
    void tokens(int t0, int t1) override {
      complete =
          layer.router.route_tokens(data, t0, t1, layer.bias, *layer.constraint, layer.replicas, scratch) && complete;
    }
  };
  constexpr int kChunk = TokenSink::kChunk;
  const Shape& shape = router.shape();
  const int T = shape.tokens();
  if (constraint->restricts()) data.allowed.resize(std::size_t(T) * shape.experts);
  // Short sequences go by chunks of the whole step: the gating kernel needs
  // several tokens at a time to reuse each weight it loads.
  const bool by_sequence =
      source.by_sequence() && shape.sequences >= omp_get_max_threads() && shape.seq_len >= kChunk;
  if (by_sequence) source.prepare(step);
  else source.next(step, layer, data);
  const int tasks = by_sequence ? shape.sequences : (T + kChunk - 1) / kChunk;
  bool complete = true;
#pragma omp parallel reduction(&& : complete)
  {
    thread_local Router::Scratch scratch;  // per thread, kept from layer to layer and step to step
    RouteChunk sink(*this, data, scratch);
#pragma omp for schedule(dynamic)
    for (int i = 0; i < tasks; ++i) {
      if (by_sequence) source.next_sequence(step, layer, i, data, sink);
      else sink.tokens(i * kChunk, std::min(T, (i + 1) * kChunk));
    }
    complete = sink.complete;
  }
  router.check_selection(complete);
}

}  // namespace moesim
