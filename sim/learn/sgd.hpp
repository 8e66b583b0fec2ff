#pragma once
// One plain SGD step of the router (MODEL.md §3): z = x·W ⇒ ∂L/∂W = xᵀ·∂L/∂z.
#include <span>
#include <vector>

#include "moesim/step.hpp"

namespace moesim {

// ∂L/∂s and ∂L/∂z of one step, in the forms the losses produce them.
struct StepGradient {
  std::span<const std::int32_t> expert;  // T×k selected experts
  std::span<const float> selected;       // T×k ∂L/∂s at those experts (the task loss)
  std::span<const float> s;              // T×E dense ∂L/∂s (balance losses), or empty
  std::span<const float> z;              // T×E ∂L/∂z (losses on logits), or empty
  // T×k the scores at the selected experts (StepData::affinity), or empty:
  // the sparse pass then reads them from the T×E scores.
  std::span<const float> affinity = {};
};

// Tokens whose dense ∂L/∂z rows weight_gradient holds at a time, per chunk.
inline constexpr int kGradientBlock = 64;
// Chunks of tokens summed apart (and in order): each has its partials.
inline constexpr int kGradientChunks = 8;

// Buffers of weight_gradient, reused from call to call (sized on first use):
// per chunk d×E partials and, dense path only, (kGradientBlock + 1)×E rows.
struct GradientScratch {
  std::vector<float> partials;      // per token chunk: its d×E partial sum
  std::vector<float> rows;          // per chunk: ∂L/∂z rows of a token block (dense path only)
};

// grad_w (d×E, overwritten) = Σ_t x_tᵀ·∂L/∂z_t, bit-identical for any thread
// count, fused with the score backward ∂L/∂z_t = J_sᵀ·∂L/∂s_t + g.z_t. With
// sigmoid scores and only the sparse `selected` gradient, ∂L/∂z_t has k
// non-zeros and the pass reads no T×E buffer.
void weight_gradient(ScoreFunction f, std::span<const float> x, std::span<const float> s, const StepGradient& g,
                     const Shape& shape, std::span<float> grad_w, GradientScratch& scratch);

// Zeroes a buffer using all threads.
void parallel_zero(std::span<float> v);

// W −= lr·grad_w; returns false if any weight became non-finite.
bool sgd_update(std::span<float> W, std::span<const float> grad_w, double lr);

// max |z| over all entries (exact in any order).
float max_abs(std::span<const float> z);

}  // namespace moesim
