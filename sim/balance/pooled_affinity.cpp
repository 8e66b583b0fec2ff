#include "pooled_affinity.hpp"

#include <algorithm>

namespace moesim {

void pooled_affinity(ScoreFunction f, std::span<const float> s, int E, int t0, int t1, std::vector<double>& P) {
  P.assign(E, 0.0);
  for (int t = t0; t < t1; ++t) {
    const float* row = &s[std::size_t(t) * E];
    double norm = 1.0;
    if (f == ScoreFunction::sigmoid) {
      double sum = 0.0;
      for (int i = 0; i < E; ++i) sum += row[i];
      norm = 1.0 / sum;
    }
    for (int i = 0; i < E; ++i) P[i] += row[i] * norm;
  }
  for (double& p : P) p /= std::max(1, t1 - t0);
}

void add_pooled_gradient(ScoreFunction f, std::span<const float> s, int E, int t0, int t1,
                         std::span<const double> g, std::span<float> grad_s) {
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
