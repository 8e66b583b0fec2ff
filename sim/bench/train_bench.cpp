// The training-only parts of a step on the bench-v3 shape (E=256, k=8,
// hidden 64, 16×1024 tokens), in tokens per second: the task loss and its
// gradient at the selected experts, the router's weight gradient (sparse:
// sigmoid scores and the task loss only; dense: with an aux loss's T×E score
// gradient) and the competence update. The argument is the thread count.
// BM_Simulate/train − BM_Simulate/inference is their share of a whole step.
#include <benchmark/benchmark.h>
#include <omp.h>

#include "../core/counting.hpp"
#include "../learn/learner.hpp"
#include "../learn/sgd.hpp"
#include "../route/router.hpp"
#include "bench_scenario.hpp"
#include "moesim/components.hpp"

namespace moesim {
namespace {

// One routed step of bench-v3 in training mode, and the training buffers.
struct TrainFixture {
  Scenario sc = bench_scenario({"/mode=train"});
  StepData data;
  Learner learner{sc, 1};
  std::vector<float> selected, dense_s, grad_w;
  GradientScratch partials;
  TrainFixture() {
    const Shape& s = sc.shape;
    data.resize(s);
    auto source = SourceRegistry::instance().find("synthetic")->make(sc.stream.params, s);
    source->seed(1);
    source->next(0, 0, data);
    const Router router(sc, 1);
    router.logits(data);
    router.scores(data);
    const std::vector<float> bias(s.experts, 0.0f);
    const auto none = ConstraintRegistry::instance().find("none")->make({}, s);
    router.select(data, bias, *none, ReplicaIndex(contiguous(s.experts, s.devices())));
    count_loads(data, s, {});
    selected.resize(std::size_t(s.tokens()) * s.top_k);
    dense_s.assign(std::size_t(s.tokens()) * s.experts, 1e-6f);  // stands in for an aux loss's ∂L/∂s
    grad_w.resize(std::size_t(s.hidden) * s.experts);
  }
  void gradient(bool dense) {
    weight_gradient(sc.model.score, data.x, data.s,
                    {data.expert, selected, dense ? std::span<const float>(dense_s) : std::span<const float>(), {},
                     data.affinity},
                    sc.shape, grad_w, partials);
  }
};

template <class F>
void run(benchmark::State& state, F&& body) {
  TrainFixture f;
  f.learner.task_loss(f.data, f.selected);
  omp_set_num_threads(int(state.range(0)));
  for (auto _ : state) body(f);
  state.SetItemsProcessed(state.iterations() * f.sc.shape.tokens());
  state.counters["threads"] = double(state.range(0));
}

void BM_TaskLoss(benchmark::State& state) {
  run(state, [](TrainFixture& f) { benchmark::DoNotOptimize(f.learner.task_loss(f.data, f.selected)); });
}
void BM_WeightGradient(benchmark::State& state) {
  run(state, [](TrainFixture& f) { f.gradient(false); });
}
void BM_WeightGradientDense(benchmark::State& state) {
  run(state, [](TrainFixture& f) { f.gradient(true); });
}
void BM_Competence(benchmark::State& state) {
  run(state, [](TrainFixture& f) { f.learner.update_competence(f.data); });
}

BENCHMARK(BM_TaskLoss)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_WeightGradient)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_WeightGradientDense)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_Competence)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
}  // namespace moesim
