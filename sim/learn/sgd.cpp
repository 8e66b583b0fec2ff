#include "sgd.hpp"

#include "moesim/scores.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace moesim {

void weight_gradient(ScoreFunction f, std::span<const float> x, std::span<const float> s,
                     std::span<const float> grad_s, std::span<const float> grad_z, int T, int d, int E,
                     std::span<float> grad_w, std::vector<float>& scratch) {
  // A fixed number of token chunks, whatever the thread count: each sums its
  // tokens in order into its own partial, and the partials are added in chunk
  // order, so the result is bit-identical for any number of threads.
  // Partials are expert-major (E×d): a token's gradient for expert e is one
  // contiguous axpy of x_t, and experts with a zero gradient (all but the k
  // selected ones, with sigmoid scores and no dense loss) are skipped, which
  // changes no float.
  constexpr int kChunks = 8;
  const std::size_t size = std::size_t(d) * E;
  scratch.assign((size + E) * kChunks, 0.0f);  // per chunk: an E×d partial and one ∂L/∂z row
#pragma omp parallel for schedule(static)
  for (int c = 0; c < kChunks; ++c) {
    float* part = &scratch[(size + E) * c];
    float* gz = part + size;
    const int t0 = int(std::int64_t(T) * c / kChunks), t1 = int(std::int64_t(T) * (c + 1) / kChunks);
    for (int t = t0; t < t1; ++t) {
      const std::size_t row = std::size_t(t) * E;
      if (grad_z.empty()) std::fill_n(gz, E, 0.0f);
      else std::copy_n(&grad_z[row], E, gz);
      score_row_backward(f, &s[row], &grad_s[row], gz, E);
      const float* xt = &x[std::size_t(t) * d];
      for (int e = 0; e < E; ++e) {
        const float g = gz[e];
        if (g == 0.0f) continue;
        float* pe = &part[std::size_t(e) * d];
        for (int i = 0; i < d; ++i) pe[i] += g * xt[i];
      }
    }
  }
#pragma omp parallel for schedule(static)
  for (int i = 0; i < d; ++i)
    for (int e = 0; e < E; ++e) {
      float sum = 0.0f;
      for (int c = 0; c < kChunks; ++c) sum += scratch[(size + E) * c + std::size_t(e) * d + i];
      grad_w[std::size_t(i) * E + e] = sum;
    }
}

void parallel_zero(std::span<float> v) {
#pragma omp parallel for schedule(static)
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = 0.0f;
}

bool sgd_update(std::span<float> W, std::span<const float> grad_w, double lr) {
  const float rate = float(lr);
  bool finite = true;
#pragma omp parallel for schedule(static) reduction(&& : finite)
  for (std::size_t i = 0; i < W.size(); ++i) {
    W[i] -= rate * grad_w[i];
    finite = finite && std::isfinite(W[i]);
  }
  return finite;
}

float max_abs(std::span<const float> z) {
  float m = 0.0f;
#pragma omp parallel for schedule(static) reduction(max : m)
  for (std::size_t i = 0; i < z.size(); ++i) {
    const float a = std::abs(z[i]);
    m = a > m ? a : m;  // this form vectorises (std::max's NaN rule does not)
  }
  return m;
}

}  // namespace moesim
