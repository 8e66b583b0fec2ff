// Device-limited (V2) and group-limited (V3) allowed masks, hand-worked.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "moesim/rng.hpp"

#include "moesim/routing_rules.hpp"

namespace moesim {
namespace {

using Mask = std::vector<std::uint8_t>;

Mask device_mask(const std::vector<float>& s, const std::vector<std::int32_t>& dev, int D, int M, int k = 1) {
  Mask allowed(s.size(), 7);
  LimitedRoutingScratch scratch;
  device_limited_allowed(s, dev, D, M, k, scratch, allowed);
  return allowed;
}

Mask group_mask(const std::vector<float>& biased, int groups, int M, int k) {
  Mask allowed(biased.size(), 7);
  LimitedRoutingScratch scratch;
  group_limited_allowed(biased, groups, M, k, scratch, allowed);
  return allowed;
}

}  // namespace

TEST_CASE("device-limited routing keeps the M devices with the highest expert score",
          "[routing][limited]") {
  // Contiguous: d0 {e0 .1, e1 .4}, d1 {e2 .3, e3 .35}, d2 {e4 .4, e5 .05}
  // device scores .4, .35, .4: d0 and d2 tie, d0 (lower index) wins.
  const std::vector<float> s{.1f, .4f, .3f, .35f, .4f, .05f};
  CHECK(device_mask(s, {0, 0, 1, 1, 2, 2}, 3, 1) == Mask{1, 1, 0, 0, 0, 0});
  CHECK(device_mask(s, {0, 0, 1, 1, 2, 2}, 3, 2) == Mask{1, 1, 0, 0, 1, 1});
  CHECK(device_mask(s, {0, 0, 1, 1, 2, 2}, 3, 3) == Mask{1, 1, 1, 1, 1, 1});
  // Round-robin placement: d0 {e0 .1, e3 .35}, d1 {e1 .4, e4 .4}, d2 {e2 .3, e5 .05}.
  CHECK(device_mask(s, {0, 1, 2, 0, 1, 2}, 3, 1) == Mask{0, 1, 0, 0, 1, 0});
  CHECK(device_mask(s, {0, 1, 2, 0, 1, 2}, 3, 2) == Mask{1, 1, 0, 1, 1, 0});
}

TEST_CASE("device-limited routing scores a device by its maximum, not its sum",
          "[routing][limited]") {
  // d0 {.3, .3} (sum .6, max .3) loses to d1 {.5, 0} (sum .5, max .5).
  CHECK(device_mask({.3f, .3f, .5f, .0f}, {0, 0, 1, 1}, 2, 1) == Mask{0, 0, 1, 1});
}

TEST_CASE("device-limited routing: a device without experts never adds any", "[routing][limited]") {
  // d1 has no expert (score -inf): with M = 2 the mask is d0 plus d2.
  CHECK(device_mask({.1f, .2f, .3f}, {0, 0, 2}, 3, 2) == Mask{1, 1, 1});
  CHECK(device_mask({.1f, .2f, .3f}, {0, 0, 2}, 3, 1) == Mask{0, 0, 1});
  CHECK_THROWS_AS(device_mask({.1f, .2f}, {0, 3}, 3, 1), std::invalid_argument);
  CHECK_THROWS_AS(device_mask({.1f, .2f}, {0, 1}, 2, 3), std::invalid_argument);
}

TEST_CASE("device-limited routing keeps further devices when the top M hold fewer than k experts",
          "[routing][limited]") {
  // A placement left d0 one expert: d0 {e0 .9}, d1 {e1 .5, e2 .4}, d2 {e3 .6, e4 .1, e5 .2}.
  // Device scores .9, .5, .6 rank d0, d2, d1.
  const std::vector<float> s{.9f, .5f, .4f, .6f, .1f, .2f};
  const std::vector<std::int32_t> dev{0, 1, 1, 2, 2, 2};
  CHECK(device_mask(s, dev, 3, 1, 1) == Mask{1, 0, 0, 0, 0, 0});  // enough: d0 alone
  CHECK(device_mask(s, dev, 3, 1, 2) == Mask{1, 0, 0, 1, 1, 1});  // d0 has 1 < 2: add d2
  CHECK(device_mask(s, dev, 3, 1, 5) == Mask{1, 1, 1, 1, 1, 1});  // d0 + d2 = 4 < 5: add d1
  CHECK(device_mask(s, dev, 3, 2, 4) == Mask{1, 0, 0, 1, 1, 1});  // M = 2 already holds 4
  CHECK_THROWS_AS(device_mask(s, dev, 3, 1, 7), std::invalid_argument);  // k > E
}

TEST_CASE("group_top_values is ceil(k/M), 2 for DeepSeek-V3", "[routing][limited]") {
  CHECK(group_top_values(8, 4) == 2);  // V3: 8 routed experts, 4 groups kept
  CHECK(group_top_values(6, 4) == 2);
  CHECK(group_top_values(8, 3) == 3);
  CHECK(group_top_values(1, 4) == 1);
}

TEST_CASE("group-limited routing sums the top ceil(k/M) values of s+b per group",
          "[routing][limited]") {
  // 4 groups of 2; k=4, M=2 -> sum of the top 2 per group.
  // g0 {.9, 0} = .9, g1 {.5, .5} = 1.0, g2 {.6, .6} = 1.2, g3 {.1, .1} = .2
  // -> g2, g1. (A max rule would keep g0 and g2.)
  const std::vector<float> b{.9f, .0f, .5f, .5f, .6f, .6f, .1f, .1f};
  CHECK(group_mask(b, 4, 2, 4) == Mask{0, 0, 1, 1, 1, 1, 0, 0});
  // k=2, M=2 -> top 1 per group, i.e. the maximum: g0 (.9) and g2 (.6).
  CHECK(group_mask(b, 4, 2, 2) == Mask{1, 1, 0, 0, 1, 1, 0, 0});
}

TEST_CASE("group-limited routing ties go to the lower group index", "[routing][limited]") {
  // sums: g0 .9, g1 1.0, g2 .9 (.45 + .45 is exactly .9f), g3 .6 -> g1, then g0 over g2.
  const std::vector<float> b{.9f, .0f, .5f, .5f, .45f, .45f, .3f, .3f};
  REQUIRE(.45f + .45f == .9f + .0f);
  CHECK(group_mask(b, 4, 2, 4) == Mask{1, 1, 1, 1, 0, 0, 0, 0});
  // Negative s+b (a large negative bias) is scored like any other value.
  CHECK(group_mask({-1.f, -2.f, -.5f, -3.f}, 2, 1, 2) == Mask{1, 1, 0, 0});
}

TEST_CASE("group-limited routing then select_topk picks only allowed experts",
          "[routing][limited]") {
  // V3 shape scaled down: 16 experts, 8 groups of 2, keep 4 groups, k=8.
  std::vector<float> b(16);
  for (int i = 0; i < 16; ++i) b[i] = float((i * 7) % 16) / 16.0f;  // a permutation of levels
  Mask allowed(16);
  LimitedRoutingScratch scratch;
  group_limited_allowed(b, 8, 4, 8, scratch, allowed);
  // group sums (x16): g0 0+7=7, g1 14+5=19, g2 12+3=15, g3 10+1=11,
  // g4 8+15=23, g5 6+13=19, g6 4+11=15, g7 2+9=11 -> g4, g1, g5, g2 (g2 ties g6: lower)
  CHECK(allowed == Mask{0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0});
  std::vector<std::int32_t> out(8);
  select_topk(b.data(), allowed.data(), 16, 8, out.data());
  // allowed values (x16): e2 14, e3 5, e4 12, e5 3, e8 8, e9 15, e10 6, e11 13
  CHECK(out == std::vector<std::int32_t>{9, 2, 11, 4, 8, 10, 3, 5});
  CHECK_THROWS_AS(group_limited_allowed(b, 5, 2, 8, scratch, allowed), std::invalid_argument);
}

TEST_CASE("group-limited routing matches a sort-based reference for ceil(k/M) from 1 to 6",
          "[routing][limited]") {
  // Values on a coarse grid (ties within and between groups, negatives), for
  // every count of top values: 1–4 take the register path, 5 and 6 the
  // general one, 2 on multiples of 16 the vector one. The reference sorts each group, sums its top n largest
  // first in float, and keeps the M best groups by a stable sort.
  Rng rng = Rng::stream(3, "group-limited-reference");
  for (int round = 0; round < 600; ++round) {
    // Sizes 1–9, and 16, 32 and 48 (the vector path's multiples of 16: V3's groups hold 32).
    const int groups = 2 + round % 7, pick = (round / 7) % 12, size = pick < 9 ? 1 + pick : 16 * (pick - 8);
    const int M = 1 + round % groups;
    // k within the M groups (the scenario's check): ceil(k/M) = min(n, size).
    const int n = 1 + round % 6, k = M * std::min(n, size);
    const int E = groups * size;
    std::vector<float> b(static_cast<std::size_t>(E));
    for (float& v : b) v = float(int(rng.uniform() * 9.0) - 3) / 8.0f;
    if (round % 5 == 0)  // zeros of both signs, and values on a fine grid (few ties)
      for (float& v : b) v = rng.uniform() < 0.3 ? (rng.uniform() < 0.5 ? -0.0f : 0.0f) : float(rng.uniform() - 0.5);
    std::vector<float> score(static_cast<std::size_t>(groups));
    const int take = std::min(group_top_values(k, M), size);
    for (int g = 0; g < groups; ++g) {
      std::vector<float> v(b.begin() + g * size, b.begin() + (g + 1) * size);
      std::sort(v.begin(), v.end(), std::greater<float>());
      float sum = 0.0f;
      for (int j = 0; j < take; ++j) sum += v[static_cast<std::size_t>(j)];
      score[static_cast<std::size_t>(g)] = sum;
    }
    std::vector<int> order(static_cast<std::size_t>(groups));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return score[x] > score[y]; });
    Mask expected(static_cast<std::size_t>(E), 0);
    for (int j = 0; j < M; ++j)
      std::fill_n(expected.begin() + order[static_cast<std::size_t>(j)] * size, size, std::uint8_t{1});
    INFO("round " << round << ": " << groups << " groups of " << size << ", M = " << M << ", k = " << k);
    REQUIRE(group_mask(b, groups, M, k) == expected);
    // The general version on the same contiguous groups gives the same mask.
    std::vector<std::int32_t> group_of(static_cast<std::size_t>(E));
    for (int i = 0; i < E; ++i) group_of[static_cast<std::size_t>(i)] = i / size;
    Mask general(static_cast<std::size_t>(E), 7);
    LimitedRoutingScratch scratch;
    group_limited_allowed(b, group_of, groups, M, k, scratch, general);
    REQUIRE(general == expected);
  }
}

}  // namespace moesim

namespace moesim {

namespace {

// What the limits keep, by sorting: each group's (device's) score is the sum
// of its top n values, largest first (-inf without experts); the M best
// groups are kept (ties: lower index), then more in the same order until
// they hold k experts.
Mask sorted_reference(const std::vector<float>& b, const std::vector<std::int32_t>& group_of, int groups, int n, int M,
                      int k) {
  const int E = int(b.size());
  std::vector<float> score(static_cast<std::size_t>(groups));
  std::vector<int> count(static_cast<std::size_t>(groups), 0);
  for (int g = 0; g < groups; ++g) {
    std::vector<float> v;
    for (int i = 0; i < E; ++i)
      if (group_of[std::size_t(i)] == g) v.push_back(b[std::size_t(i)]);
    count[std::size_t(g)] = int(v.size());
    std::sort(v.begin(), v.end(), std::greater<float>());
    float sum = v.empty() ? -std::numeric_limits<float>::infinity() : v[0];
    for (std::size_t j = 1; j < v.size() && j < std::size_t(n); ++j) sum += v[j];
    score[std::size_t(g)] = sum;
  }
  std::vector<int> order(static_cast<std::size_t>(groups));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int x, int y) { return score[std::size_t(x)] > score[std::size_t(y)]; });
  std::vector<std::uint8_t> keep(static_cast<std::size_t>(groups), 0);
  for (int j = 0, experts = 0; j < groups && (j < M || experts < k); ++j) {
    keep[std::size_t(order[std::size_t(j)])] = 1;
    experts += count[std::size_t(order[std::size_t(j)])];
  }
  Mask expected(static_cast<std::size_t>(E));
  for (int i = 0; i < E; ++i) expected[std::size_t(i)] = keep[std::size_t(group_of[std::size_t(i)])];
  return expected;
}

// Random rounds of the limits on any grouping: 1 to 70 groups (the vector
// path takes up to 64, and looks flags up by lane for up to 16), empty
// groups, lengths that are not multiples of 16, and values from a small set
// every other round, so that ties and both zeros are common.
template <class Check>
void random_groupings(Check&& check) {
  Rng rng(11);
  const float palette[] = {-0.0f, 0.0f, 0.25f, -0.5f, 1.0f, 0.75f, -2.0f, 3.0f};
  for (int round = 0; round < 600; ++round) {
    const int groups = 1 + int(rng.next() % 70), E = 1 + int(rng.next() % 300);
    const int M = 1 + int(rng.next() % std::uint64_t(groups)), k = 1 + int(rng.next() % std::uint64_t(std::min(E, 12)));
    std::vector<float> b(static_cast<std::size_t>(E));
    std::vector<std::int32_t> group_of(static_cast<std::size_t>(E));
    for (int i = 0; i < E; ++i) {
      b[std::size_t(i)] = round % 2 ? palette[rng.next() % 8] : float(rng.uniform());
      group_of[std::size_t(i)] = int(rng.next() % std::uint64_t(groups));
    }
    INFO("round " << round << ": " << E << " experts in " << groups << " groups, M = " << M << ", k = " << k);
    check(b, group_of, groups, M, k);
  }
}

}  // namespace

TEST_CASE("group-limited routing on any grouping matches a sort-based reference", "[routing][limited]") {
  // ceil(k/M) from 1 to 12.
  using Ids = std::vector<std::int32_t>;
  random_groupings([](const std::vector<float>& b, const Ids& group_of, int groups, int M, int k) {
    Mask allowed(b.size(), 7);
    LimitedRoutingScratch scratch;
    group_limited_allowed(b, group_of, groups, M, k, scratch, allowed);
    REQUIRE(allowed == sorted_reference(b, group_of, groups, group_top_values(k, M), M, k));
  });
}

TEST_CASE("device-limited routing on any placement matches a sort-based reference", "[routing][limited]") {
  // A device scores its experts' maximum: the top 1.
  random_groupings([](const std::vector<float>& s, const std::vector<std::int32_t>& device, int D, int M, int k) {
    REQUIRE(device_mask(s, device, D, M, k) == sorted_reference(s, device, D, 1, M, k));
  });
}

TEST_CASE("the limits refuse a group or device id out of range, on either path", "[routing][limited]") {
  for (int groups : {4, 70}) {  // the vector path, and the scalar one beyond its 64 groups
    std::vector<float> b(40, 0.5f);
    std::vector<std::int32_t> group_of(40);
    for (int i = 0; i < 40; ++i) group_of[std::size_t(i)] = i % groups;
    Mask allowed(40);
    LimitedRoutingScratch scratch;
    for (int bad : {-1, groups}) {
      group_of[17] = bad;
      CHECK_THROWS_AS(group_limited_allowed(b, group_of, groups, 1, 2, scratch, allowed), std::invalid_argument);
      CHECK_THROWS_AS(device_limited_allowed(b, group_of, groups, 1, 2, scratch, allowed), std::invalid_argument);
    }
  }
}

}  // namespace moesim
