// select_topk: rank order, tie-breaks, masks, and agreement with a stable sort.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "moesim/routing_rules.hpp"

namespace moesim {
namespace {

std::vector<std::int32_t> topk(const std::vector<float>& v, int k,
                               const std::vector<std::uint8_t>& allowed = {}) {
  std::vector<std::int32_t> out(static_cast<std::size_t>(k), 99);
  select_topk(v.data(), allowed.empty() ? nullptr : allowed.data(), int(v.size()), k, out.data());
  return out;
}

using Ids = std::vector<std::int32_t>;

}  // namespace

TEST_CASE("select_topk returns the top k in rank order, ties to the lower index", "[routing][topk]") {
  const std::vector<float> v{0.1f, 0.5f, 0.3f, 0.5f, 0.2f};
  CHECK(topk(v, 3) == Ids{1, 3, 2});
  CHECK(topk(v, 1) == Ids{1});
  CHECK(topk(v, 5) == Ids{1, 3, 2, 4, 0});
  CHECK(topk({1.f, 1.f, 1.f, 1.f}, 2) == Ids{0, 1});
  CHECK(topk({0.5f, 0.5f, 0.5f}, 1) == Ids{0});   // a later equal value never evicts
  CHECK(topk({0.2f, 0.5f, 0.5f}, 1) == Ids{1});
  CHECK(topk({0.1f, 0.2f, 0.3f, 0.4f}, 2) == Ids{3, 2});  // ascending input
  CHECK(topk({0.4f, 0.3f, 0.2f, 0.1f}, 2) == Ids{0, 1});  // descending input
  CHECK(topk({-0.0f, 0.0f}, 1) == Ids{0});                // -0 == +0: lower index
  CHECK(topk({-3.f, -1.f, -2.f}, 2) == Ids{1, 2});
}

TEST_CASE("select_topk respects the allowed mask and pads with -1", "[routing][topk]") {
  const std::vector<float> v{0.1f, 0.5f, 0.3f, 0.5f, 0.2f};
  CHECK(topk(v, 2, {1, 0, 1, 1, 0}) == Ids{3, 2});
  CHECK(topk(v, 2, {0, 1, 0, 0, 0}) == Ids{1, -1});
  CHECK(topk(v, 2, {0, 0, 0, 0, 0}) == Ids{-1, -1});
  std::vector<std::int32_t> untouched{42};
  select_topk(v.data(), nullptr, 5, 0, untouched.data());
  CHECK(untouched[0] == 42);
}

TEST_CASE("select_topk agrees with a stable sort on random tied inputs", "[routing][topk]") {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int> level(0, 999);
  std::bernoulli_distribution allow(0.7);
  // Small E, and the V3-like widths where the lane-maximum bound prunes.
  const int widths[] = {1, 2, 5, 15, 16, 17, 31, 33, 64, 100, 256, 257, 300};
  for (int trial = 0; trial < 6000; ++trial) {
    const int E = widths[trial % 13], k = 1 + (trial / 2) % 17;  // k = 17 > 16 lanes: no bound
    std::vector<float> v(E);
    std::vector<std::uint8_t> mask(E);
    for (int i = 0; i < E; ++i) {
      const int l = level(rng);  // half the trials on 6 levels (many ties), half on 1000
      v[i] = trial % 4 < 2 ? float(l % 6) * 0.25f - 0.5f : float(l) * 0.001f;
      mask[i] = allow(rng) ? 1 : 0;
    }
    if (trial % 2 == 0) std::fill(mask.begin(), mask.end(), 1);  // half unmasked (the bound path)
    std::vector<std::int32_t> expect;
    for (int i = 0; i < E; ++i)
      if (mask[i]) expect.push_back(i);
    std::stable_sort(expect.begin(), expect.end(), [&](int a, int b) { return v[a] > v[b]; });
    expect.resize(std::min<std::size_t>(expect.size(), k));
    expect.resize(static_cast<std::size_t>(k), -1);
    INFO("trial " << trial);
    REQUIRE(topk(v, k, trial % 2 == 0 ? std::vector<std::uint8_t>{} : mask) == expect);
  }
}

}  // namespace moesim
