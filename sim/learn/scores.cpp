#include "moesim/scores.hpp"

#include "fast_exp.hpp"

#include <algorithm>
#include <cmath>

namespace moesim {

void score_row(ScoreFunction f, const float* z, float* s, int E) {
  if (f == ScoreFunction::softmax) {
    const float m = *std::max_element(z, z + E);
    float sum = 0.0f;
    for (int e = 0; e < E; ++e) s[e] = fast_exp(z[e] - m);
    for (int e = 0; e < E; ++e) sum += s[e];
    const float inv = 1.0f / sum;
    for (int e = 0; e < E; ++e) s[e] *= inv;
  } else {
    for (int e = 0; e < E; ++e) s[e] = 1.0f / (1.0f + fast_exp(-z[e]));
  }
}

void compute_scores(ScoreFunction f, std::span<const float> zs, std::span<float> ss, int T, int E) {
#pragma omp parallel for schedule(static)
  for (int t = 0; t < T; ++t) score_row(f, &zs[std::size_t(t) * E], &ss[std::size_t(t) * E], E);
}

void score_row_backward(ScoreFunction f, const float* s, const float* g, float* out, int E) {
  if (f == ScoreFunction::softmax) {
    double dot = 0.0;
    for (int e = 0; e < E; ++e) dot += double(g[e]) * s[e];
    for (int e = 0; e < E; ++e) out[e] += float(s[e] * (g[e] - dot));
  } else {
    for (int e = 0; e < E; ++e) out[e] += g[e] * s[e] * (1.0f - s[e]);
  }
}

void scores_backward(ScoreFunction f, std::span<const float> ss, std::span<const float> gs,
                     std::span<float> gz, int T, int E) {
#pragma omp parallel for schedule(static)
  for (int t = 0; t < T; ++t)
    score_row_backward(f, &ss[std::size_t(t) * E], &gs[std::size_t(t) * E], &gz[std::size_t(t) * E], E);
}

}  // namespace moesim
