#include "pooled_affinity.hpp"

#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace moesim {

void pooled_affinity(ScoreFunction f, std::span<const float> s, int E, int t0, int t1, std::vector<double>& P) {
  // Each P_i sums its tokens in order, whichever thread takes expert i; a
  // token's normaliser is its row sum in expert order, taken once.
  thread_local std::vector<double> norm;  // per token of [t0, t1)
  norm.assign(std::size_t(std::max(0, t1 - t0)), 1.0);
  P.assign(E, 0.0);
  double* out = P.data();
  double* nt = norm.data();
#pragma omp parallel
  {
    if (f == ScoreFunction::sigmoid) {
#pragma omp for schedule(static)
      for (int t = t0; t < t1; ++t) {
        const float* row = &s[std::size_t(t) * E];
        double sum = 0.0;
        for (int i = 0; i < E; ++i) sum += row[i];
        nt[t - t0] = 1.0 / sum;
      }
    }
    // A contiguous range of experts per thread, rows read in token order.
    const int threads = omp_get_num_threads(), id = omp_get_thread_num();
    const int i0 = int(std::int64_t(E) * id / threads), i1 = int(std::int64_t(E) * (id + 1) / threads);
    for (int t = t0; t < t1; ++t) {
      const float* row = &s[std::size_t(t) * E];
      const double norm_t = nt[t - t0];
      for (int i = i0; i < i1; ++i) out[i] += row[i] * norm_t;
    }
    for (int i = i0; i < i1; ++i) out[i] /= std::max(1, t1 - t0);
  }
}

void add_pooled_gradient(ScoreFunction f, std::span<const float> s, int E, int t0, int t1,
                         std::span<const double> g, std::span<float> grad_s) {
#pragma omp parallel for schedule(static)
  for (int t = t0; t < t1; ++t) {
    const float* row = &s[std::size_t(t) * E];
    float* out = &grad_s[std::size_t(t) * E];
    if (f == ScoreFunction::softmax) {
      for (int i = 0; i < E; ++i) out[i] += float(g[i]);
      continue;
    }
    double sum = 0.0, dot = 0.0;
    for (int i = 0; i < E; ++i) sum += row[i];
    for (int i = 0; i < E; ++i) dot += g[i] * row[i] / sum;
    for (int i = 0; i < E; ++i) out[i] += float((g[i] - dot) / sum);
  }
}

}  // namespace moesim
