// Hand-worked values for every load metric (MODEL.md §7).
#include <catch2/catch.hpp>
#include <cmath>
#include <set>

#include "moesim/metrics.hpp"

using namespace moesim;

TEST_CASE("MaxVio on a 4-expert example", "[metrics]") {
  // loads 6,2,2,2: mean 3, (6 − 3)/3 = 1.
  const std::vector<double> loads{6, 2, 2, 2};
  CHECK(maxvio(loads, 3.0) == Approx(1.0));
  // Balanced load has no violation.
  CHECK(maxvio(std::vector<double>{3, 3, 3, 3}, 3.0) == 0.0);
  CHECK(maxvio(loads, 0.0) == 0.0);
}

TEST_CASE("normalised entropy on a 4-expert example", "[metrics]") {
  // p = (1/2, 1/6, 1/6, 1/6): H = ½ln2 + 3·(1/6)ln6 = 0.5·0.693147 + 0.5·1.791759 = 1.242453;
  // ln 4 = 1.386294 → 0.896241.
  CHECK(entropy_norm(std::vector<double>{6, 2, 2, 2}) == Approx(0.896241).epsilon(1e-6));
  CHECK(entropy_norm(std::vector<double>{5, 5, 5, 5}) == Approx(1.0));
  CHECK(entropy_norm(std::vector<double>{9, 0, 0, 0}) == Approx(0.0));
  CHECK(entropy_norm(std::vector<double>{0, 0, 0, 0}) == 0.0);
}

TEST_CASE("coefficient of variation, max/mean, top-10% share, dead experts", "[metrics]") {
  const std::vector<double> loads{6, 2, 2, 2};
  // deviations 3,−1,−1,−1 → variance (9+1+1+1)/4 = 3 → std 1.732051 / mean 3 = 0.577350.
  CHECK(cv(loads) == Approx(0.577350).epsilon(1e-6));
  CHECK(max_over_mean(loads) == Approx(2.0));
  CHECK(rank_imbalance(loads) == Approx(1.0));
  CHECK(rank_imbalance(std::vector<double>{1.0, 3.0}) == Approx(0.5));  // max 3 / mean 2 − 1
  CHECK(rank_imbalance(std::vector<double>{0.0, 0.0}) == 0.0);
  // ceil(4/10) = 1 expert: 6 of 12.
  CHECK(top10_share(loads) == Approx(0.5));
  // 11 experts → top ceil(1.1) = 2: loads 10 and 9 of a total 10+9+9·1 = 28.
  std::vector<double> eleven{10, 9, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  CHECK(top10_share(eleven) == Approx(19.0 / 28.0));
  CHECK(dead_experts(std::vector<double>{0, 0.5, 1, 7}, 1.0) == 2);
}

TEST_CASE("metric catalogue names every summary metric once", "[metrics]") {
  std::set<std::string> names;
  for (const auto& m : metric_catalog()) CHECK(names.insert(m.name).second);
  CHECK(find_metric("maxvio_global") != nullptr);
  CHECK(find_metric("nope") == nullptr);
}
