// Google Benchmark suite: the hot paths of one step on the bench-v3 shape
// (E=256, k=8, hidden 64, 16×1024 tokens), in tokens per second. The argument
// is the thread count. tools/bench runs it next to a numpy reference.
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <omp.h>

#include "../core/counting.hpp"
#include "../route/router.hpp"
#include "bench_scenario.hpp"
#include "moesim/components.hpp"
#include "moesim/metrics.hpp"
#include "moesim/scores.hpp"
#include "moesim/simulation.hpp"

namespace moesim {
namespace {

// A scenario, its step data filled by one pass of the pipeline, and the parts.
struct Fixture {
  Scenario sc = bench_scenario();
  StepData data;
  std::unique_ptr<TokenSource> source;
  std::unique_ptr<RoutingConstraint> none;
  std::unique_ptr<Router> router;
  std::vector<float> bias;
  PlacementMap devices;
  ReplicaIndex replicas;  // `devices`, indexed for the router
  Fixture() {
    data.resize(sc.shape);
    source = SourceRegistry::instance().find("synthetic")->make(sc.stream.params, sc.shape);
    source->seed(1);
    none = ConstraintRegistry::instance().find("none")->make({}, sc.shape);
    router = std::make_unique<Router>(sc, 1);
    bias.assign(sc.shape.experts, 0.0f);
    devices = contiguous(sc.shape.experts, sc.shape.devices());
    replicas.index(devices);
    source->next(0, 0, data);
    router->logits(data);
    router->scores(data);
    router->select(data, bias, *none, replicas);
  }
  int tokens() const { return sc.shape.tokens(); }
};

template <class F>
void run(benchmark::State& state, Fixture& f, F&& body) {
  omp_set_num_threads(int(state.range(0)));
  for (auto _ : state) body();
  state.SetItemsProcessed(state.iterations() * f.tokens());
  state.counters["threads"] = double(state.range(0));
}

void BM_Generator(benchmark::State& state) {
  Fixture f;
  int step = 0;
  run(state, f, [&] { f.source->next(step++, 0, f.data); });
}
void BM_Gating(benchmark::State& state) {
  Fixture f;
  run(state, f, [&] { f.router->logits(f.data); });
}
// The same product with each block's logits in one buffer per thread, in
// cache, as the fused step (Router::route_tokens) leaves them: BM_Gating
// adds the store of 16 MB of logits to memory, a quarter of its time.
void BM_GatingInCache(benchmark::State& state) {
  Fixture f;
  const int T = f.tokens(), E = f.sc.shape.experts, d = f.sc.shape.hidden, B = Router::kLogitsBlock;
  // One block's logits per thread, allocated before the timing.
  std::vector<std::vector<float>> z(std::size_t(state.range(0)), std::vector<float>(std::size_t(B) * E));
  run(state, f, [&] {
#pragma omp parallel
    {
      float* block = z[std::size_t(omp_get_thread_num())].data();
#pragma omp for schedule(static)
      for (int b0 = 0; b0 < T; b0 += B)
        f.router->logits_block(&f.data.x[std::size_t(b0) * d], std::min(B, T - b0), block);
      benchmark::DoNotOptimize(block);
    }
  });
}
void BM_Scores(benchmark::State& state) {
  Fixture f;
  run(state, f, [&] { f.router->scores(f.data); });
}
void BM_TopK(benchmark::State& state) {
  Fixture f;
  run(state, f, [&] { f.router->select(f.data, f.bias, *f.none, f.replicas); });
}
void BM_Dropper(benchmark::State& state, const char* type) {
  Fixture f;
  auto dropper = DropperRegistry::instance().find(type)->make(
      bench_scenario({std::string("/strategies/0/dropper/type=") + type}).strategies[0].dropper.params, f.sc.shape);
  run(state, f, [&] { dropper->keep(f.data, f.sc.shape, f.devices); });
}
void BM_Metrics(benchmark::State& state) {
  Fixture f;
  run(state, f, [&] {
    count_loads(f.data, f.sc.shape, {});
    benchmark::DoNotOptimize(maxvio(f.data.routed, f.sc.shape.mean_load()) + entropy_norm(f.data.routed));
  });
}
// Routing + bias update + metrics of one inference step, tokens given.
void BM_RouteStep(benchmark::State& state) {
  Fixture f;
  auto bias = BalancerRegistry::instance().find("bias")->make(f.sc.strategies[0].balancers[0].params, f.sc.shape);
  run(state, f, [&] {
    f.router->logits(f.data);
    f.router->scores(f.data);
    f.router->select(f.data, f.bias, *f.none, f.replicas);
    count_loads(f.data, f.sc.shape, {});
    bias->end_of_step(f.data, f.sc.shape, f.bias);
    benchmark::DoNotOptimize(maxvio(f.data.routed, f.sc.shape.mean_load()) + entropy_norm(f.data.routed));
  });
}
// Whole simulated steps (generator, routing, timing model, recording), inference and
// train; 16 steps a run, so the one-time set-up (buffers, router init) weighs little.
void BM_Simulate(benchmark::State& state, const char* mode) {
  Fixture f;
  const Scenario sc = bench_scenario({std::string("/mode=") + mode, "/steps=16"});
  run(state, f, [&] { benchmark::DoNotOptimize(simulate(sc, sc.strategies[0])); });
  state.SetItemsProcessed(state.iterations() * f.tokens() * 16);
}

// DeepSeek-V3 at full depth (scenarios/deepseek-v3.json: 58 MoE layers, 16 ×
// 1024 tokens a step, node-limited routing, EP32 timing), inference, 2 steps a
// run; items are token-layers, so the rate compares with BM_Simulate's tokens.
void simulate_deepseek_v3(benchmark::State& state, int layers, int steps, int strategy = 0,
                          std::vector<std::string> overrides = {}) {
  Fixture f;
  overrides.insert(overrides.end(), {fmt::format("/model/layers={}", layers), fmt::format("/steps={}", steps),
                                     "/record/per_step_loads=false"});
  const Scenario sc = load_scenario(std::string(MOESIM_SOURCE_DIR) + "/scenarios/deepseek-v3.json", overrides);
  run(state, f, [&] { benchmark::DoNotOptimize(simulate(sc, sc.strategies[std::size_t(strategy)])); });
  state.SetItemsProcessed(state.iterations() * std::int64_t(sc.shape.tokens()) * sc.shape.layers * steps);
}

void BM_Simulate58Layers(benchmark::State& state) { simulate_deepseek_v3(state, 58, 2); }
// The same work one layer at a time (1 layer, 116 steps): what a layer of the
// 58-layer model should cost, like for like (same routing, placement, timing).
void BM_SimulateOneLayerV3(benchmark::State& state) { simulate_deepseek_v3(state, 1, 116); }
// The scenario's EPLB strategy, rebalanced after every step (so the second of
// the 2 steps routes under 32 redundant replicas), with the routing limit on
// the range(1) groups: 8 contiguous ones as shipped, or the 4 nodes, where
// each token's limit follows the nodes of the replicas that serve it.
void BM_Simulate58LayersEplb(benchmark::State& state) {
  simulate_deepseek_v3(state, 58, 2, 1,
                       {fmt::format("/strategies/1/routing/groups={}", state.range(1)),
                        "/strategies/1/placement/rebalance_every=1", "/strategies/1/placement/window=1"});
}

BENCHMARK(BM_Generator)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Gating)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_GatingInCache)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Scores)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_TopK)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Dropper, capacity, "capacity")->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Dropper, device, "device")->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Metrics)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_RouteStep)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Simulate, inference, "inference")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Simulate, train, "train")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Simulate58Layers)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
BENCHMARK(BM_SimulateOneLayerV3)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
BENCHMARK(BM_Simulate58LayersEplb)
    ->Args({2, 8})
    ->Args({2, 4})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(1);

}  // namespace
}  // namespace moesim

BENCHMARK_MAIN();
