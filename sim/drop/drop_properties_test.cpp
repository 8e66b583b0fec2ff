// Property tests of the droppers on random seeded routings (MODEL.md §5):
// exact agreement with a brute-force full-sort reference, capacity bounds,
// protected sequences never dropped, conservation, and drop rate
// non-increasing in the capacity factor on a fixed input.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <tuple>
#include <vector>

#include "moesim/drop_rules.hpp"

namespace moesim {
namespace {

struct Routing {
  int T, k, E, L;
  std::vector<std::int32_t> expert;  // T×k rank order
  std::vector<float> s;              // T×k score of each assignment (gate = affinity = s)
};

// A skewed routing: expert e has popularity 1/(e'+1) for a shuffled e', a
// token scores s_e = popularity·U(0,1) and picks the top k (ties lower index).
// `coarse` rounds scores to a 0.05 grid so that ties are frequent.
Routing random_routing(std::uint64_t seed, int B, int L, int k, int E, bool coarse) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<float> pop(E);
  std::vector<int> perm(E);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  for (int e = 0; e < E; ++e) pop[e] = 1.0f / float(perm[e] + 1);
  Routing r{B * L, k, E, L, {}, {}};
  std::vector<float> score(E);
  std::vector<int> idx(E);
  for (int t = 0; t < r.T; ++t) {
    for (int e = 0; e < E; ++e) {
      score[e] = pop[e] * u(rng);
      if (coarse) score[e] = std::round(score[e] * 20.0f) / 20.0f;
    }
    std::iota(idx.begin(), idx.end(), 0);
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int a, int b) {
      return score[a] != score[b] ? score[a] > score[b] : a < b;
    });
    for (int j = 0; j < k; ++j) {
      r.expert.push_back(idx[j]);
      r.s.push_back(score[idx[j]]);
    }
  }
  return r;
}

// Brute force: per expert, sort its assignments by the policy's full key.
std::vector<std::uint8_t> reference_capacity(const Routing& r, std::int64_t cap,
                                             CapacityPolicy policy) {
  std::vector<std::uint8_t> keep(r.expert.size(), 0);
  for (int e = 0; e < r.E; ++e) {
    std::vector<std::tuple<float, int, int, int>> list;  // (key, rank, token, a)
    for (int t = 0; t < r.T; ++t)
      for (int j = 0; j < r.k; ++j)
        if (r.expert[t * r.k + j] == e) list.emplace_back(-r.s[t * r.k + j], j, t, t * r.k + j);
    std::sort(list.begin(), list.end(), [&](const auto& a, const auto& b) {
      if (policy == CapacityPolicy::probs)
        return std::tie(std::get<0>(a), std::get<2>(a)) < std::tie(std::get<0>(b), std::get<2>(b));
      return std::tie(std::get<1>(a), std::get<2>(a)) < std::tie(std::get<1>(b), std::get<2>(b));
    });
    for (std::size_t i = 0; i < list.size() && std::int64_t(i) < cap; ++i)
      keep[std::get<3>(list[i])] = 1;
  }
  return keep;
}

std::vector<std::uint8_t> reference_device(const Routing& r, const std::vector<std::int32_t>& dev,
                                           int D, std::int64_t cap, double p) {
  std::vector<std::uint8_t> keep(r.expert.size(), 1);
  for (int d = 0; d < D; ++d) {
    std::int64_t prot = 0;
    std::vector<std::tuple<float, int, int, int>> list;  // (-s, token, expert, a)
    for (int a = 0; a < int(r.expert.size()); ++a) {
      if (dev[r.expert[a]] != d) continue;
      if (is_protected((a / r.k) / r.L, p))
        ++prot;
      else
        list.emplace_back(-r.s[a], a / r.k, r.expert[a], a);
    }
    std::sort(list.begin(), list.end());
    const std::int64_t room = std::max<std::int64_t>(0, cap - prot);
    for (std::size_t i = 0; i < list.size(); ++i)
      if (std::int64_t(i) >= room) keep[std::get<3>(list[i])] = 0;
  }
  return keep;
}

std::int64_t count_dropped(const std::vector<std::uint8_t>& keep) {
  std::int64_t n = 0;
  for (auto v : keep) {
    REQUIRE((v == 0 || v == 1));
    n += v == 0;
  }
  return n;
}

const double kFactors[] = {0.25, 0.5, 0.75, 1.0, 1.1, 1.25, 1.5, 2.0, 4.0};

}  // namespace

TEST_CASE("capacity drop properties on random routings", "[drop][property]") {
  CapacityWorkspace ws;  // shared across all cases: reuse must not leak state
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    const bool coarse = seed % 2 == 0;
    const int k = 1 + int(seed % 4), E = 4 + int(seed % 13);
    const Routing r = random_routing(seed, 3 + int(seed % 5), 7, k, E, coarse);
    const std::int64_t n = std::int64_t(r.T) * k;
    for (auto policy : {CapacityPolicy::probs, CapacityPolicy::position}) {
      INFO("seed " << seed << " policy " << int(policy));
      std::int64_t previous_drops = n + 1;
      for (double cf : kFactors) {
        const std::int64_t cap = expert_capacity(cf, r.T, k, E, 0);
        std::vector<std::uint8_t> keep(n, 7);
        capacity_keep(r.expert, r.s, r.T, k, E, cap, policy, keep, ws);
        CHECK(keep == reference_capacity(r, cap, policy));
        // processed = min(routed, C) per expert: never above C, never wasteful.
        std::vector<std::int64_t> routed(E, 0), processed(E, 0);
        for (std::int64_t a = 0; a < n; ++a) {
          ++routed[r.expert[a]];
          processed[r.expert[a]] += keep[a];
        }
        for (int e = 0; e < E; ++e) CHECK(processed[e] == std::min(routed[e], cap));
        const std::int64_t dropped = count_dropped(keep);
        CHECK(std::accumulate(processed.begin(), processed.end(), std::int64_t{0}) + dropped == n);
        // At most E·C processed, so cf < 1 drops at least (1 − cf) of assignments.
        CHECK(dropped >= n - std::int64_t(E) * cap);
        CHECK(dropped <= previous_drops);
        previous_drops = dropped;
      }
    }
  }
}

TEST_CASE("device drop properties on random routings", "[drop][property]") {
  DeviceDropWorkspace ws;
  for (std::uint64_t seed = 101; seed <= 140; ++seed) {
    const bool coarse = seed % 2 == 0;
    const int D = 2 + int(seed % 3), per = 1 + int(seed % 4), E = D * per;
    const int k = 1 + int(seed % std::min(E, 4));
    const int B = 10 + int(seed % 11), L = 3;
    const double p = (seed % 3 == 0) ? 0.1 : (seed % 3 == 1 ? 0.25 : 0.0);
    const Routing r = random_routing(seed, B, L, k, E, coarse);
    std::vector<std::int32_t> dev(E);
    for (int e = 0; e < E; ++e) dev[e] = (seed % 5 == 0) ? e % D : e / per;  // round-robin or contiguous
    const std::int64_t n = std::int64_t(r.T) * k;
    INFO("seed " << seed);
    std::int64_t previous_drops = n + 1;
    for (double cf : kFactors) {
      const std::int64_t cap = device_capacity(cf, r.T, k, D);
      std::vector<std::uint8_t> keep(n, 7);
      device_keep(r.expert, r.s, dev, r.T, k, L, D, cap, p, keep, ws);
      CHECK(keep == reference_device(r, dev, D, cap, p));
      std::vector<std::int64_t> routed(D, 0), processed(D, 0), prot(D, 0);
      for (std::int64_t a = 0; a < n; ++a) {
        const int d = dev[r.expert[a]];
        const bool is_prot = is_protected((a / k) / L, p);
        ++routed[d];
        processed[d] += keep[a];
        prot[d] += is_prot;
        if (is_prot) CHECK(keep[a] == 1);  // protected never dropped
      }
      // Processed ≤ C_d except for protected excess, and nothing is dropped
      // while there is room: processed = min(routed, max(C_d, protected)).
      for (int d = 0; d < D; ++d) CHECK(processed[d] == std::min(routed[d], std::max(cap, prot[d])));
      const std::int64_t dropped = count_dropped(keep);
      CHECK(std::accumulate(processed.begin(), processed.end(), std::int64_t{0}) + dropped == n);
      CHECK(dropped <= previous_drops);
      previous_drops = dropped;
    }
  }
}

}  // namespace moesim
