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

void Router::logits(StepData& data) const {
  // z = x·W over register tiles of kTokens tokens × kExperts experts: 24
  // vector accumulators of the 32 AVX-512 registers (4-token tiles ran 2×
  // slower in BM_Gating, tools/bench), and each W row chunk loaded once
  // serves kTokens tokens.
  // Tokens go in blocks of kBlock, and within a block expert chunks outermost,
  // so the W chunk (d × kExperts) stays in L1 while the block's tiles use it.
  // Every z[t,e] still sums over i = 0..d−1 in order, so tiling and threads
  // never change a bit.
  constexpr int kTokens = 6, kExperts = 64, kBlock = 48;
  const int T = shape_.tokens(), E = shape_.experts, d = shape_.hidden;
  const int blocks = (T + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static)
  for (int b = 0; b < blocks; ++b) {
    const int b0 = b * kBlock, b1 = std::min(T, b0 + kBlock);
    for (int e0 = 0; e0 < E; e0 += kExperts) {
      const int en = std::min(kExperts, E - e0);
      for (int t0 = b0; t0 < b1; t0 += kTokens) {
        const int tn = std::min(kTokens, b1 - t0);
        const float* x = &data.x[std::size_t(t0) * d];
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
        for (int t = 0; t < tn; ++t) std::copy(acc[t], acc[t] + en, &data.z[std::size_t(t0 + t) * E + e0]);
      }
    }
  }
}

void Router::scores(StepData& data) const {
  compute_scores(model_.score, data.z, data.s, shape_.tokens(), shape_.experts);
}

void Router::select(StepData& data, std::span<const float> bias, const RoutingConstraint& constraint,
                    const PlacementMap& map) const {
  const int T = shape_.tokens(), E = shape_.experts, k = shape_.top_k;
  const bool restricted = constraint.restricts();
  const bool normalize = model_.normalize_gates;  // always true for sigmoid (checked when reading)
  const float scale = float(model_.route_scale);
  if (restricted) data.allowed.resize(std::size_t(T) * E);  // once: the size never changes
  bool short_selection = false;  // a constraint allowed fewer than k experts
  // With replicas, the device an expert's token goes to depends on the token
  // (MODEL.md §6), so the constraint sees a per-token row of devices.
  const bool replicated = restricted && std::any_of(map.logcnt.begin(), map.logcnt.end(), [](int r) { return r > 1; });
  const std::span<const std::int32_t> primary = data.expert_device;
#pragma omp parallel
  {
    std::vector<float> biased(E);  // per thread, not per token
    std::vector<std::int32_t> device_row(replicated ? E : 0);
#pragma omp for schedule(static)
    for (int t = 0; t < T; ++t) {
      const float* s = &data.s[std::size_t(t) * E];
      for (int e = 0; e < E; ++e) biased[e] = s[e] + bias[e];
      std::uint8_t* allowed = nullptr;
      if (restricted) {
        allowed = &data.allowed[std::size_t(t) * E];
        if (replicated)
          for (int e = 0; e < E; ++e) device_row[e] = map.device_for(e, t);
        constraint.allow({s, std::size_t(E)}, biased, replicated ? std::span<const std::int32_t>(device_row) : primary,
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
      select_topk(biased.data(), nullptr, E, k, ex);
      if (ex[k - 1] < 0) {
#pragma omp atomic write
        short_selection = true;
        continue;
      }
      float sum = 0.0f;
      for (int j = 0; j < k; ++j) sum += (aff[j] = s[ex[j]]);
      // Gates use the unbiased scores (MODEL.md §2); normalised over the selection when asked.
      const float norm = normalize && sum > 0.0f ? scale / sum : scale;
      for (int j = 0; j < k; ++j) g[j] = aff[j] * norm;
    }
  }
  if (short_selection)  // the constraint broke its contract: an internal error, not bad input
    throw std::logic_error(fmt::format("a routing constraint allowed fewer than top_k = {} experts", k));
}

}  // namespace moesim
