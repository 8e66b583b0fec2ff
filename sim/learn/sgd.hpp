#pragma once
// One plain SGD step of the router (MODEL.md §3): z = x·W ⇒ ∂L/∂W = xᵀ·∂L/∂z.
#include <span>

#include "moesim/step.hpp"
#include <vector>

namespace moesim {

// grad_w (d×E, overwritten) = Σ_t x_tᵀ·grad_z_t, bit-identical for any
// thread count.
// Fused with the score backward: ∂L/∂z_t = J_sᵀ·grad_s_t + grad_z_t, where
// grad_z (may be empty) holds gradients of losses defined on logits. `scratch`
// is reused across calls.
void weight_gradient(ScoreFunction f, std::span<const float> x, std::span<const float> s,
                     std::span<const float> grad_s, std::span<const float> grad_z, int T, int d, int E,
                     std::span<float> grad_w, std::vector<float>& scratch);

// Zeroes a buffer using all threads.
void parallel_zero(std::span<float> v);

// W −= lr·grad_w; returns false if any weight became non-finite.
bool sgd_update(std::span<float> W, std::span<const float> grad_w, double lr);

// max |z| over all entries (exact in any order).
float max_abs(std::span<const float> z);

}  // namespace moesim
