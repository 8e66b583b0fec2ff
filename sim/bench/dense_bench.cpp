// The gating product z = x·W (T×d times d×E) through the dense-math
// libraries we could have used instead of our own kernel (Router::logits,
// BM_Gating): OpenBLAS sgemm and Eigen, on the same bench-v3 data. Built only
// when CMake finds them (tools/bench installs both); the README's choice of
// dependency rests on these figures.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <vector>

#include "moesim/rng.hpp"

#if MOESIM_HAVE_OPENBLAS
#include <cblas.h>
#endif
#if MOESIM_HAVE_EIGEN
#include <Eigen/Dense>
#endif

namespace {

constexpr int T = 16 * 1024, d = 64, E = 256;  // bench-v3's step

struct Operands {
  std::vector<float> x = random(std::size_t(T) * d), W = random(std::size_t(d) * E), z = std::vector<float>(T * E);
  static std::vector<float> random(std::size_t n) {
    moesim::Rng rng(1);
    std::vector<float> v(n);
    for (float& a : v) a = float(rng.normal());
    return v;
  }
};

void report(benchmark::State& state) {
  state.SetItemsProcessed(state.iterations() * T);
  state.counters["threads"] = double(state.range(0));
}

#if MOESIM_HAVE_OPENBLAS
void BM_GatingOpenBLAS(benchmark::State& state) {
  Operands o;
  openblas_set_num_threads(int(state.range(0)));
  for (auto _ : state)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, E, d, 1.0f, o.x.data(), d, o.W.data(), E, 0.0f,
                o.z.data(), E);
  report(state);
}
BENCHMARK(BM_GatingOpenBLAS)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
#endif

#if MOESIM_HAVE_EIGEN
void BM_GatingEigen(benchmark::State& state) {
  using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Operands o;
  Eigen::Map<const Matrix> x(o.x.data(), T, d), W(o.W.data(), d, E);
  Eigen::Map<Matrix> z(o.z.data(), T, E);
  Eigen::setNbThreads(int(state.range(0)));  // Eigen parallelises its GEMM with OpenMP
  for (auto _ : state) z.noalias() = x * W;
  report(state);
}
BENCHMARK(BM_GatingEigen)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
#endif

}  // namespace
