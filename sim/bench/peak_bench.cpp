// The machine's fp32 multiply-add peak, measured rather than taken from a
// data sheet: this shared VM's clock and its vCPUs' share of the host move
// by the hour (tools/bench's gating kernel ran at 2.6–10 M tokens/s on the
// same code), and it hides the cycle counters. Measured in the same run as
// BM_Gating, it says how close the gating product x·W is to what the cores
// allow, and what any target in tokens/s asks of them (tools/bench_report.py).
// Items are bench-v3 gating tokens (2·hidden·experts flops each, 32 768 as
// shipped), so the rate reads directly against BM_Gating's.
#include <benchmark/benchmark.h>
#include <omp.h>

#include "bench_scenario.hpp"

namespace moesim {
namespace {

// One vector register of floats, as wide as the build's instruction set
// (-march=native here: AVX-512). `a * b + c` on it compiles to one fused
// multiply-add, as the gating kernel's does (C++ contracts by default).
#if defined(__AVX512F__)
constexpr int kVectorBytes = 64;
#elif defined(__AVX__)
constexpr int kVectorBytes = 32;
#else
constexpr int kVectorBytes = 16;
#endif
using Vec = float __attribute__((vector_size(kVectorBytes)));
constexpr int kLanes = kVectorBytes / int(sizeof(float));

constexpr long kRounds = 1 << 20;  // per thread and iteration
constexpr int kChains = 16;
constexpr double kFlopsPerRound = 2.0 * kChains * kLanes;

// 16 independent chains of multiply-adds, more than the FMA units' latency
// (4 cycles) times their number (2) hold in flight, so every unit issues
// every cycle: the fastest any kernel can do its arithmetic.
float fma_chains(float a, float b) {
  Vec acc[kChains];
  for (int j = 0; j < kChains; ++j) acc[j] = Vec{} + float(j);
  const Vec va = Vec{} + a, vb = Vec{} + b;
  for (long i = 0; i < kRounds; ++i)
    for (int j = 0; j < kChains; ++j) acc[j] = acc[j] * va + vb;
  float s = 0;
  for (int j = 0; j < kChains; ++j)
    for (int l = 0; l < kLanes; ++l) s += acc[j][l];
  return s;
}

void BM_FmaPeak(benchmark::State& state) {
  const int threads = int(state.range(0));
  omp_set_num_threads(threads);
  for (auto _ : state) {
    float total = 0;
#pragma omp parallel reduction(+ : total)
    total += fma_chains(0.999999f, 1e-7f);
    benchmark::DoNotOptimize(total);
  }
  const double flops = double(state.iterations()) * threads * kRounds * kFlopsPerRound;
  const Shape s = bench_scenario().shape;
  state.SetItemsProcessed(std::int64_t(flops / (2.0 * s.hidden * s.experts)));
  state.counters["flops"] = benchmark::Counter(flops, benchmark::Counter::kIsRate);
  state.counters["threads"] = threads;
}

BENCHMARK(BM_FmaPeak)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace moesim
