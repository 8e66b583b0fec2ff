// The timing model at DeepSeek's decode deployment scale: 58 MoE layers on
// 144 devices (18 nodes × 8), 128 tokens per device, top-8 of 256 experts
// plus 32 redundant replicas (the argument: 1 = DeepEP forwarding).
// BM_TimingStep58Layers times a whole step (building the traffic of every
// layer, then simulating it); BM_TimingTraffic58Layers and
// BM_TimingSimulate58Layers time the two halves apart, so one can say which
// dominates. Counters: the model's discrete events and moved flows per second.
#include <benchmark/benchmark.h>

#include "../cluster/traffic.hpp"
#include "moesim/cluster.hpp"
#include "moesim/placement.hpp"
#include "moesim/rng.hpp"

namespace moesim {
namespace {

constexpr int kLayers = 58;

// The benchmark's step: shape, hardware, placement and four distinct routings cycled over the layers.
struct DecodeStep {
  Shape s;
  ClusterHardware hw;
  PlacementMap map;
  std::vector<StepData> layers;

  explicit DecodeStep(bool forwarding) {
    s.experts = 256, s.top_k = 8, s.shared_experts = 1, s.hidden = 1;  // DeepSeek-V3's routing
    s.sequences = 144, s.seq_len = 128;                                  // 128 tokens on each of 144 devices
    s.nodes = hw.nodes = 18, s.devices_per_node = 8;
    hw.forwarding = forwarding;
    std::vector<int> phy2log(288);
    for (int j = 0; j < 288; ++j) phy2log[j] = (j * 37) % 256;  // experts hit twice get a replica
    map = placement_from_phy2log(phy2log, 256, 144);
    layers.resize(4);
    Rng rng(1);
    for (auto& d : layers) {
      d.resize(s);
      for (int t = 0; t < s.tokens(); ++t) {
        const int first = int(rng.next() % 256);  // 8 distinct experts: a random stride walk
        const int stride = 1 + 2 * int(rng.next() % 16);
        for (int r = 0; r < 8; ++r) d.expert[std::size_t(t) * 8 + r] = (first + r * stride) % 256;
      }
    }
  }
  void build(TrafficBuilder& builder) {
    builder.begin_step(kLayers);
    for (int l = 0; l < kLayers; ++l) builder.add_layer(l, layers[l % 4], map, 0);
  }
};

// Events and moved flows (each flow twice: dispatch and combine) per second
// of the benchmark's time, from the last step's counts.
void count_rates(benchmark::State& state, const StepTiming& last, const StepTraffic& traffic) {
  const auto rate = benchmark::Counter::kIsIterationInvariantRate;
  state.counters["events/s"] = benchmark::Counter(double(last.events), rate);
  state.counters["flows/s"] = benchmark::Counter(2.0 * double(traffic.flows.size()), rate);
}

void BM_TimingStep58Layers(benchmark::State& state) {
  DecodeStep step(state.range(0) == 1);
  TrafficBuilder builder(step.s, step.hw);
  step.build(builder);  // one untimed step faults in the buffers: a run reuses them step after step
  StepTiming last = simulate_step(step.hw, builder.traffic());
  for (auto _ : state) {
    step.build(builder);
    last = simulate_step(step.hw, builder.traffic());
    benchmark::DoNotOptimize(last.step_time);
  }
  count_rates(state, last, builder.traffic());
}

void BM_TimingTraffic58Layers(benchmark::State& state) {
  DecodeStep step(state.range(0) == 1);
  TrafficBuilder builder(step.s, step.hw);
  step.build(builder);
  for (auto _ : state) {
    step.build(builder);
    benchmark::DoNotOptimize(builder.traffic().flows.data());
  }
  state.counters["flows"] = double(builder.traffic().flows.size());
}

void BM_TimingSimulate58Layers(benchmark::State& state) {
  DecodeStep step(state.range(0) == 1);
  TrafficBuilder builder(step.s, step.hw);
  step.build(builder);
  StepTiming last = simulate_step(step.hw, builder.traffic());
  for (auto _ : state) {
    last = simulate_step(step.hw, builder.traffic());
    benchmark::DoNotOptimize(last.step_time);
  }
  count_rates(state, last, builder.traffic());
}

// At least 3 s each, so that a busy machine's noise averages out.
BENCHMARK(BM_TimingStep58Layers)->Arg(0)->Arg(1)->MinTime(3.0)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_TimingTraffic58Layers)->Arg(0)->Arg(1)->MinTime(3.0)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_TimingSimulate58Layers)->Arg(0)->Arg(1)->MinTime(3.0)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace moesim
