#include "sgd.hpp"

#include "moesim/scores.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace moesim {

void weight_gradient(ScoreFunction f, std::span<const float> x, std::span<const float> s, const StepGradient& g,
                     const Shape& shape, std::span<float> grad_w, std::vector<float>& scratch) {
  // A fixed number of token chunks, whatever the thread count: each sums its
  // tokens in order into its own partial, and the partials are added in chunk
  // order, so the result is bit-identical for any number of threads.
  // Partials are expert-major (E×d): a token's gradient for expert e is one
  // contiguous axpy of x_t, and experts with a zero gradient are skipped.
  // Each expert's partial sums the same terms in token order on both paths,
  // so the sparse path gives the same bits as the dense one.
  constexpr int kChunks = 8;
  const int T = shape.tokens(), d = shape.hidden, E = shape.experts, k = shape.top_k;
  const bool sparse = f == ScoreFunction::sigmoid && g.s.empty() && g.z.empty();
  const std::size_t size = std::size_t(d) * E, stride = size + 2 * std::size_t(E);
  scratch.resize(stride * kChunks);  // per chunk: an E×d partial, one ∂L/∂s and one ∂L/∂z row
#pragma omp parallel for schedule(static)
  for (int c = 0; c < kChunks; ++c) {
    float* part = &scratch[stride * c];
    std::fill_n(part, size, 0.0f);  // by the chunk's thread, not serially before the loop
    float* gs = part + size;
    float* gz = gs + E;
    auto axpy = [&](int e, float ge, const float* xt) {
      float* pe = &part[std::size_t(e) * d];
      for (int i = 0; i < d; ++i) pe[i] += ge * xt[i];
    };
    const int t0 = int(std::int64_t(T) * c / kChunks), t1 = int(std::int64_t(T) * (c + 1) / kChunks);
    for (int t = t0; t < t1; ++t) {
      const std::size_t row = std::size_t(t) * E;
      const std::int32_t* ex = &g.expert[std::size_t(t) * k];
      const float* sel = &g.selected[std::size_t(t) * k];
      const float* xt = &x[std::size_t(t) * d];
      if (sparse) {  // sigmoid: ∂s_e/∂z_e = s_e(1 − s_e), no other entry
        for (int r = 0; r < k; ++r) {
          const float se = g.affinity.empty() ? s[row + ex[r]] : g.affinity[std::size_t(t) * k + r];
          const float ge = sel[r] * se * (1.0f - se);
          if (ge != 0.0f) axpy(ex[r], ge, xt);
        }
        continue;
      }
      if (g.s.empty()) std::fill_n(gs, E, 0.0f);
      else std::copy_n(&g.s[row], E, gs);
      for (int r = 0; r < k; ++r) gs[ex[r]] += sel[r];
      if (g.z.empty()) std::fill_n(gz, E, 0.0f);
      else std::copy_n(&g.z[row], E, gz);
      score_row_backward(f, &s[row], gs, gz, E);
      for (int e = 0; e < E; ++e)
        if (gz[e] != 0.0f) axpy(e, gz[e], xt);
    }
  }
#pragma omp parallel for schedule(static)
  for (int i = 0; i < d; ++i)
    for (int e = 0; e < E; ++e) {
      float sum = 0.0f;
      for (int c = 0; c < kChunks; ++c) sum += scratch[stride * c + std::size_t(e) * d + i];
      grad_w[std::size_t(i) * E + e] = sum;
    }
}

void parallel_zero(std::span<float> v) {
  if (v.empty()) return;  // no thread team for nothing (most strategies keep no T×E gradient)
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
