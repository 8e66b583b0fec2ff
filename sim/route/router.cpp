#include "router.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <type_traits>

#include "moesim/rng.hpp"
#include "moesim/scores.hpp"
#include "moesim/routing_rules.hpp"

namespace moesim {

Router::Router(const Scenario& scenario, std::uint64_t seed, int layer) : shape_(scenario.shape), model_(scenario.model) {
  // W ~ N(0, init_std²) from its own named stream.
  W_.resize(std::size_t(shape_.hidden) * shape_.experts);
  Rng rng = Rng::stream(seed, "router/init", std::uint64_t(layer));  // layer 0: the single-layer stream
  for (float& w : W_) w = float(rng.normal() * model_.init_std);
}

namespace {

// z = x·W over register tiles of kTokens tokens × kExperts experts: 24
// vector accumulators of the 32 AVX-512 registers (4-token tiles ran 2×
// slower in BM_Gating, tools/bench), and each W row chunk loaded once
// serves kTokens tokens. Tokens go in blocks of kBlock, and within a block
// expert chunks outermost, so the W chunk (d × kExperts) stays in L1 while
// the block's tiles use it. Every z[t,e] still sums over i = 0..d−1 in
// order, so tiling, blocks and threads never change a bit.
constexpr int kTokens = 6, kExperts = 64, kBlock = Router::kLogitsBlock;

}  // namespace

void Router::logits_block(const float* x_block, int n, float* z) const {
  const int E = shape_.experts, d = shape_.hidden;
  for (int e0 = 0; e0 < E; e0 += kExperts) {
    const int en = std::min(kExperts, E - e0);
    for (int t0 = 0; t0 < n; t0 += kTokens) {
      const int tn = std::min(kTokens, n - t0);
      const float* x = &x_block[std::size_t(t0) * d];
      float acc[kTokens][kExperts];
      auto tile = [&](auto tokens, auto experts) {
        for (int t = 0; t < tokens; ++t)
          for (int e = 0; e < experts; ++e) acc[t][e] = 0.0f;
        for (int i = 0; i < d; ++i) {
          const float* w = &W_[std::size_t(i) * E + e0];
          for (int t = 0; t < tokens; ++t) {
            const float xi = x[std::size_t(t) * d + i];
            for (int e = 0; e < experts; ++e) acc[t][e] += xi * w[e];
          }
        }
      };
      // The full tile passes its sizes as constants: fixed trip counts vectorise.
      if (tn == kTokens && en == kExperts)
        tile(std::integral_constant<int, kTokens>{}, std::integral_constant<int, kExperts>{});
      else
        tile(tn, en);
      for (int t = 0; t < tn; ++t) std::copy(acc[t], acc[t] + en, &z[std::size_t(t0 + t) * E + e0]);
    }
  }
}

void Router::logits(StepData& data) const {
  const int T = shape_.tokens(), E = shape_.experts, d = shape_.hidden;
  const int blocks = (T + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static)
  for (int b = 0; b < blocks; ++b) {
    const int b0 = b * kBlock, n = std::min(T, b0 + kBlock) - b0;
    logits_block(&data.x[std::size_t(b0) * d], n, &data.z[std::size_t(b0) * E]);
  }
}

void Router::scores(StepData& data) const {
  compute_scores(model_.score, data.z, data.s, shape_.tokens(), shape_.experts);
}

bool Router::replicated(const RoutingConstraint& constraint, const ReplicaIndex& replicas) const {
  // With replicas, the device an expert's token goes to depends on the token
  // (MODEL.md §6), so a constraint that reads devices sees a per-token row.
  return constraint.reads_devices() && replicas.replicated();
}

bool Router::select_token(StepData& data, int t, const float* s, std::span<const float> bias,
                          const RoutingConstraint& constraint, const ReplicaIndex& replicas, bool replicated,
                          Scratch& scratch) const {
  const int E = shape_.experts, k = shape_.top_k;
  float* biased = scratch.biased.data();
  for (int e = 0; e < E; ++e) biased[e] = s[e] + bias[e];
  std::uint8_t* allowed = nullptr;
  if (constraint.restricts()) {
    allowed = &data.allowed[std::size_t(t) * E];
    constraint.allow({s, std::size_t(E)}, {biased, std::size_t(E)},
                     replicated ? replicas.device_row(std::uint32_t(t), scratch.device_row)
                                : std::span<const std::int32_t>(data.expert_device),
                     {allowed, std::size_t(E)});
  }
  std::int32_t* ex = &data.expert[std::size_t(t) * k];
  float* aff = &data.affinity[std::size_t(t) * k];
  float* g = &data.gate[std::size_t(t) * k];
  // A disallowed expert scores -inf instead of being masked: the unmasked
  // top-k is the fast, branch-free one, and picks the same experts (the
  // constraint allows at least k, all finite; ties still go to the lower index).
  if (allowed)
    for (int e = 0; e < E; ++e)
      if (!allowed[e]) biased[e] = -std::numeric_limits<float>::infinity();
  select_topk(biased, nullptr, E, k, ex);
  if (ex[k - 1] < 0) return false;
  float sum = 0.0f;
  for (int j = 0; j < k; ++j) sum += (aff[j] = s[ex[j]]);
  // Gates use the unbiased scores (MODEL.md §2); normalised over the selection
  // when asked (always for sigmoid, checked when reading).
  const float scale = float(model_.route_scale);
  const float norm = model_.normalize_gates && sum > 0.0f ? scale / sum : scale;
  for (int j = 0; j < k; ++j) g[j] = aff[j] * norm;
  return true;
}

namespace {

// Sizes a thread's scratch for rows of E experts (allocates only the first time).
void size_scratch(Router::Scratch& scratch, int E, bool replicated) {
  scratch.biased.resize(std::size_t(E));
  if (replicated) scratch.device_row.reserve(std::size_t(E));  // for rows beyond ReplicaIndex's table
}

}  // namespace

void Router::select(StepData& data, std::span<const float> bias, const RoutingConstraint& constraint,
                    const ReplicaIndex& replicas) const {
  const int T = shape_.tokens(), E = shape_.experts;
  if (constraint.restricts()) data.allowed.resize(std::size_t(T) * E);  // once: the size never changes
  const bool per_token = replicated(constraint, replicas);
  bool complete = true;  // no constraint allowed fewer than k experts
#pragma omp parallel reduction(&& : complete)
  {
    Scratch scratch;  // per thread, not per token
    size_scratch(scratch, E, per_token);
#pragma omp for schedule(static)
    for (int t = 0; t < T; ++t)
      complete = select_token(data, t, &data.s[std::size_t(t) * E], bias, constraint, replicas, per_token, scratch) &&
                 complete;
  }
  check_selection(complete);
}

void Router::check_selection(bool complete) const {
  if (!complete)  // the constraint broke its contract: an internal error, not bad input
    throw std::logic_error(
        fmt::format("a routing constraint allowed fewer than top_k = {} experts", shape_.top_k));
}

bool Router::route_tokens(StepData& data, int t0, int t1, std::span<const float> bias,
                          const RoutingConstraint& constraint, const ReplicaIndex& replicas, Scratch& scratch) const {
  const int E = shape_.experts, d = shape_.hidden, stored = data.score_rows;
  const bool per_token = replicated(constraint, replicas);
  size_scratch(scratch, E, per_token);
  scratch.z.resize(std::size_t(kBlock) * E);
  scratch.s.resize(std::size_t(kBlock) * E);
  bool complete = true;
  for (int b0 = t0; b0 < t1;) {
    // A block is either all stored rows or none.
    const int b1 = std::min({t1, b0 + kBlock, b0 < stored ? stored : t1});
    const bool store = b0 < stored;
    float* z = store ? &data.z[std::size_t(b0) * E] : scratch.z.data();
    float* s = store ? &data.s[std::size_t(b0) * E] : scratch.s.data();
    logits_block(&data.x[std::size_t(b0) * d], b1 - b0, z);
    for (int t = b0; t < b1; ++t) {
      const std::size_t row = std::size_t(t - b0) * E;
      score_row(model_.score, z + row, s + row, E);
      complete = select_token(data, t, s + row, bias, constraint, replicas, per_token, scratch) && complete;
    }
    b0 = b1;
  }
  return complete;
}

}  // namespace moesim
