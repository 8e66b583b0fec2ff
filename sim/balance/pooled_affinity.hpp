#pragma once
// The pooled affinity P_i = (1/n)·Σ_t s'_{t,i} that every auxiliary balance
// loss multiplies with its load fractions, and its gradient. s' = s for
// softmax scores; for sigmoid scores s'_{t,i} = s_{t,i}/Σ_j s_{t,j}
// (DeepSeek-V3 §2.1.2, eq. 19).
#include <span>
#include <vector>

#include "moesim/step.hpp"

namespace moesim {

// P (E entries) over tokens [t0, t1).
void pooled_affinity(ScoreFunction f, std::span<const float> s, int E, int t0, int t1, std::vector<double>& P);

// For L = Σ_i g_i·P_i·n, i.e. ∂L/∂s'_{t,i} = g_i for every token t in [t0, t1):
// grad_s[t, j] += g_j (softmax) or (g_j − Σ_i g_i·s'_{t,i}) / Σ_i s_{t,i} (sigmoid).
void add_pooled_gradient(ScoreFunction f, std::span<const float> s, int E, int t0, int t1,
                         std::span<const double> g, std::span<float> grad_s);

}  // namespace moesim
