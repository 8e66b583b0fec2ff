#include "learner.hpp"

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "moesim/rng.hpp"

namespace moesim {

Learner::Learner(const Scenario& scenario, std::uint64_t seed, int layer)
    : shape_(scenario.shape), spec_(scenario.learning), domains_(std::max(1, scenario.shape.domains)) {
  if (shape_.top_k > kMaxTopK)  // task_loss keeps a token's κ in a fixed array
    throw std::invalid_argument("Learner: top_k above " + std::to_string(kMaxTopK));
  // κ starts at κ0 plus small noise (±0.01) so experts are not exactly alike.
  kappa_.resize(std::size_t(shape_.experts) * domains_);
  Rng rng = Rng::stream(seed, "learning/kappa", std::uint64_t(layer));
  for (float& k : kappa_) k = float(std::clamp(spec_.kappa0 + 0.01 * (2.0 * rng.uniform() - 1.0), 0.0, 1.0));
  n_.resize(kappa_.size());
}

double Learner::task_loss(const StepData& data, std::span<float> grad_selected) const {
  // ℓ = 1 − Σ_kept g_i·κ_{i,c} / Σ_sel g_i. Gate scale and normalisation cancel
  // in the ratio, so ℓ = 1 − Σ_kept s_i κ_i / Σ_sel s_i, and
  // ∂ℓ/∂s_j = −(κ_j·[j kept] − (1 − ℓ)) / Σ_sel s   for j selected.
  const int L = shape_.seq_len, B = shape_.sequences, k = shape_.top_k;
  const double w = spec_.task_weight / shape_.tokens();
  // One partial sum per sequence, added in order: the same bits for any
  // number of threads.
  std::vector<double> partial(B, 0.0);
#pragma omp parallel for schedule(static)
  for (int n = 0; n < B; ++n) {
    double total = 0.0;
    for (int t = n * L; t < (n + 1) * L; ++t) {
      const int c = std::max(0, data.domain[t]);
      const std::int32_t* ex = &data.expert[std::size_t(t) * k];
      const float* aff = &data.affinity[std::size_t(t) * k];
      const std::uint8_t* keep = &data.keep[std::size_t(t) * k];
      double sel = 0.0, kept = 0.0;
      float kap[kMaxTopK];  // κ at the kept experts, 0 at dropped ones
      for (int r = 0; r < k; ++r) {
        kap[r] = keep[r] ? kappa_[std::size_t(ex[r]) * domains_ + c] : 0.0f;
        sel += aff[r];
        if (keep[r]) kept += aff[r] * kap[r];
      }
      const double q = sel > 0 ? kept / sel : 0.0;  // 1 − ℓ
      total += 1.0 - q;
      if (grad_selected.empty()) continue;
      float* g = &grad_selected[std::size_t(t) * k];
      if (sel > 0)  // a loop of its own: the k divisions vectorise
        for (int r = 0; r < k; ++r) g[r] = float(-w * (kap[r] - q) / sel);
      else
        std::fill_n(g, k, 0.0f);
    }
    partial[n] = total;
  }
  double total = 0.0;
  for (double p : partial) total += p;
  return total / shape_.tokens();
}

void Learner::update_competence(const StepData& data) {
  // κ_{i,c} += η·(n_{i,c}/c̄)(1−κ) − λ·κ − γ·((p_i − n_{i,c})/c̄)·κ, clamped to [0, 1].
  // The counts n are integers, summed exactly in any order: each thread counts
  // its tokens into its own table, then each expert adds the tables up.
  const int T = shape_.tokens(), k = shape_.top_k, E = shape_.experts, C = domains_;
  const std::size_t cells = std::size_t(E) * C;
  const double cbar = shape_.mean_load();
  counts_.resize(cells * std::size_t(omp_get_max_threads()));
#pragma omp parallel
  {
    std::int32_t* mine = &counts_[cells * std::size_t(omp_get_thread_num())];
    std::fill_n(mine, cells, 0);
#pragma omp for schedule(static)
    for (int t = 0; t < T; ++t) {
      const int c = std::max(0, data.domain[t]);
      for (int r = 0; r < k; ++r)
        if (data.keep[std::size_t(t) * k + r]) ++mine[std::size_t(data.expert[std::size_t(t) * k + r]) * C + c];
    }
    const std::size_t tables = std::size_t(omp_get_num_threads());
#pragma omp for schedule(static)
    for (int i = 0; i < E; ++i) {
      double* n = &n_[std::size_t(i) * C];
      for (int c = 0; c < C; ++c) {
        std::int64_t total = 0;
        for (std::size_t th = 0; th < tables; ++th) total += counts_[th * cells + std::size_t(i) * C + c];
        n[c] = double(total);
      }
      double p = 0.0;
      for (int c = 0; c < C; ++c) p += n[c];
      for (int c = 0; c < C; ++c) {
        float& kap = kappa_[std::size_t(i) * C + c];
        const double next = kap + spec_.eta_skill * (n[c] / cbar) * (1.0 - kap) - spec_.forget * kap -
                            spec_.interference * ((p - n[c]) / cbar) * kap;
        kap = float(std::clamp(next, 0.0, 1.0));
      }
    }
  }
}

}  // namespace moesim
