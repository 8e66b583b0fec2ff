#pragma once
// Score functions and their backward pass (MODEL.md §2–§3), in one place for
// the router, the learner and the gradient checks.
#include <span>

#include "moesim/scenario.hpp"

namespace moesim {

// s = softmax(z) (max-shifted) or sigmoid(z), row by row; T rows of E.
void compute_scores(ScoreFunction f, std::span<const float> z, std::span<float> s, int T, int E);
// The same for one token's row of E logits.
void score_row(ScoreFunction f, const float* z, float* s, int E);

// grad_z += J_sᵀ·grad_s with the closed forms: softmax ∂s_i/∂z_j = s_i(δ_ij − s_j),
// sigmoid ∂s_i/∂z_i = s_i(1 − s_i).
void scores_backward(ScoreFunction f, std::span<const float> s, std::span<const float> grad_s,
                     std::span<float> grad_z, int T, int E);
// The same for one token's row of E scores.
void score_row_backward(ScoreFunction f, const float* s, const float* grad_s, float* grad_z, int E);

}  // namespace moesim
