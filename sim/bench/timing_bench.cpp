// The timing model at DeepSeek's decode deployment scale: 58 MoE layers on
// 144 devices (18 nodes × 8), 128 tokens per device, top-8 of 256 experts
// plus 32 redundant replicas. Measures building the traffic of every layer
// and simulating the step (the argument: 1 = DeepEP forwarding).
#include <benchmark/benchmark.h>

#include "../cluster/traffic.hpp"
#include "moesim/cluster.hpp"
#include "moesim/placement.hpp"
#include "moesim/rng.hpp"

namespace moesim {
namespace {

void BM_TimingStep58Layers(benchmark::State& state) {
  Shape s;
  s.experts = 256;
  s.top_k = 8;
  s.shared_experts = 1;
  s.hidden = 1;
  s.sequences = 144;
  s.seq_len = 128;
  s.nodes = 18;
  s.devices_per_node = 8;
  ClusterHardware hw;
  hw.nodes = 18;
  hw.forwarding = state.range(0) == 1;
  std::vector<int> phy2log(288);
  for (int j = 0; j < 288; ++j) phy2log[j] = (j * 37) % 256;  // experts hit twice get a replica
  const PlacementMap map = placement_from_phy2log(phy2log, 256, 144);
  constexpr int kLayers = 58;
  std::vector<StepData> layers(4);  // four distinct routings, cycled over the layers
  Rng rng(1);
  for (auto& d : layers) {
    d.resize(s);
    for (int t = 0; t < s.tokens(); ++t) {
      const int first = int(rng.next() % 256);  // 8 distinct experts: a random stride walk
      const int stride = 1 + 2 * int(rng.next() % 16);
      for (int r = 0; r < 8; ++r) d.expert[std::size_t(t) * 8 + r] = (first + r * stride) % 256;
    }
  }
  TrafficBuilder builder(s, hw);
  for (auto _ : state) {
    builder.begin_step(kLayers);
    for (int l = 0; l < kLayers; ++l) builder.add_layer(l, layers[l % 4], map, 0);
    benchmark::DoNotOptimize(simulate_step(hw, builder.traffic()).step_time);
  }
}
// At least 3 s each: the first steps fault in the model's buffers (≈ 2.5× a warm step).
BENCHMARK(BM_TimingStep58Layers)->Arg(0)->Arg(1)->MinTime(3.0)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace moesim
