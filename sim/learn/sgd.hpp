#pragma once
// One plain SGD step of the router (MODEL.md §3): z = x·W ⇒ ∂L/∂W = xᵀ·∂L/∂z.
#include <span>
#include <vector>

namespace moesim {

// grad_w (d×E, overwritten) = Σ_t x_tᵀ·grad_z_t, bit-identical for any
// thread count.
// `partials` is scratch reused across calls.
void weight_gradient(std::span<const float> x, std::span<const float> grad_z, int T, int d, int E,
                     std::span<float> grad_w, std::vector<float>& partials);

// W −= lr·grad_w; returns false if any weight became non-finite.
bool sgd_update(std::span<float> W, std::span<const float> grad_w, double lr);

// max |z| over all entries (exact in any order).
float max_abs(std::span<const float> z);

}  // namespace moesim
