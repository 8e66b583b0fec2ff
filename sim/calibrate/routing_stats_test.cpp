// The calibration statistics on hand-worked traces.
#include <catch2/catch.hpp>

#include <cmath>

#include "calibrate/routing_stats.hpp"

using namespace moesim;

namespace {

// 4 tokens, 2 layers, 4 experts, top-2, written token by token (layer 0 then 1).
RoutingTrace tiny() {
  RoutingTrace t;
  t.layer_ids = {3, 5};
  t.experts = 4;
  t.top_k = 2;
  t.expert = {0, 1, 2, 3,   // token 0
              0, 2, 2, 3,   // token 1
              1, 0, 3, 2,   // token 2
              3, 2, 0, 1};  // token 3
  return t;
}

}  // namespace

TEST_CASE("popularity, max/mean, batch imbalance and locality of a tiny trace", "[calibrate]") {
  const RoutingStats s = measure(tiny(), {2, 0});
  // Layer 0 counts: e0 3, e1 2, e2 2, e3 1 of 8.
  CHECK(s.popularity[0] == std::vector<double>{3.0 / 8, 2.0 / 8, 2.0 / 8, 1.0 / 8});
  CHECK(s.max_over_mean[0] == Approx(3.0 / 2.0));
  // Windows of 2 tokens: {0,1} counts e0 2, e1 1, e2 1 → max/mean 2/1; {2,3}: e0 1, e1 1, e3 1, e2 1 → 1.
  CHECK(s.batch_imbalance[0] == Approx(1.5));
  // Shared with the previous token: t1 {0,2}∩{0,1} = 1, t2 {1,0}∩{0,2} = 1, t3 {3,2}∩{1,0} = 0 → 2 of 3·2.
  CHECK(s.locality[0] == Approx(2.0 / 6.0));
  // Layer 1: t1 {2,3}∩{2,3} = 2, t2 {3,2} = 2, t3 {0,1} = 0 → 4/6.
  CHECK(s.locality[1] == Approx(4.0 / 6.0));
  // With sequences of 2 tokens, the pair (t1, t2) crosses a boundary: (1 + 0)/(2·2).
  CHECK(measure(tiny(), {2, 2}).locality[0] == Approx(0.25));
  REQUIRE(s.nmi.size() == 1);
}

TEST_CASE("normalised mutual information by hand", "[calibrate]") {
  const std::int32_t x[] = {0, 0, 1, 1}, same[] = {1, 1, 0, 0}, indep[] = {0, 1, 0, 1};
  CHECK(normalised_mutual_information(x, same, 4, 1, 2) == Approx(1.0));
  CHECK(normalised_mutual_information(x, indep, 4, 1, 2) == Approx(0.0).margin(1e-12));
  // x = (0,0,1,1), y = (0,0,0,1): H(X) = ln 2, H(Y) = −(¾ln¾ + ¼ln¼), H(X,Y) = 1.5 ln 2 (¼ ¼ ½ with p 1/4,1/4,1/2... pairs (0,0)×2,(1,0),(1,1)).
  const std::int32_t y[] = {0, 0, 0, 1};
  const double hx = std::log(2.0), hy = -(0.75 * std::log(0.75) + 0.25 * std::log(0.25));
  const double hxy = -(0.5 * std::log(0.5) + 2 * 0.25 * std::log(0.25));
  CHECK(normalised_mutual_information(x, y, 4, 1, 2) == Approx(2 * (hx + hy - hxy) / (hx + hy)));
  // The tiny trace's top-1 pairs (layer 0 → 1): (0,2) (0,2) (1,3) (3,0): H(X) = H(Y)... computed the same way.
  const std::int32_t a[] = {0, 0, 1, 3}, b[] = {2, 2, 3, 0};
  CHECK(measure(tiny()).nmi[0] == Approx(normalised_mutual_information(a, b, 4, 1, 4)));
  CHECK(normalised_mutual_information(a, b, 4, 1, 4) == Approx(1.0));  // b is a relabelling of a
}

TEST_CASE("total variation and loads statistics", "[calibrate]") {
  CHECK(total_variation({0.5, 0.5, 0.0}, {0.25, 0.25, 0.5}) == Approx(0.5));
  LayerLoads loads;
  loads.layer_ids = {3};
  loads.load = {{6, 1, 1, 0}};
  const RoutingStats s = measure(loads);
  CHECK_FALSE(s.per_token);
  CHECK(s.max_over_mean[0] == Approx(3.0));
  CHECK(s.popularity[0][1] == Approx(0.125));
}
