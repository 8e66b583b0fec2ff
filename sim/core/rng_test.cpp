// Rng: named streams are reproducible and independent; the ziggurat normal
// sampler has the standard normal distribution (moments, Kolmogorov–Smirnov
// distance to Φ, and the tail beyond the ziggurat's base, which has its own
// code path); add_normals draws exactly what normal() draws.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include "moesim/rng.hpp"

namespace moesim {

TEST_CASE("Rng streams are reproducible and independent by name and index", "[rng]") {
  Rng a = Rng::stream(7, "generator/tokens", 3, 1), b = Rng::stream(7, "generator/tokens", 3, 1);
  Rng c = Rng::stream(7, "generator/tokens", 3, 2), d = Rng::stream(7, "router/init", 3, 1);
  const std::uint64_t first = a.next();
  CHECK(first == b.next());
  CHECK(first != c.next());
  CHECK(first != d.next());
  for (int i = 0; i < 1000; ++i) {
    const double u = a.uniform();
    REQUIRE(u >= 0.0);
    REQUIRE(u < 1.0);
  }
}

TEST_CASE("Rng::normal is standard normal: moments, KS distance and tails", "[rng]") {
  constexpr int n = 2'000'000;
  Rng rng = Rng::stream(1, "test/normal");
  std::vector<double> v(n);
  double sum = 0.0, sq = 0.0, fourth = 0.0;
  int beyond_base = 0, beyond_4 = 0;
  for (double& x : v) {
    x = rng.normal();
    sum += x;
    sq += x * x;
    fourth += x * x * x * x;
    beyond_base += std::abs(x) > 3.442619855899;  // drawn by the tail sampler
    beyond_4 += std::abs(x) > 4.0;
  }
  // Standard errors: mean 1/√n = 7e-4, variance √(2/n) = 1e-3, E x⁴ = 3 with √(96/n) = 7e-3.
  CHECK(std::abs(sum / n) < 5 * 7.1e-4);
  CHECK(sq / n == Approx(1.0).margin(5 * 1.0e-3));
  CHECK(fourth / n == Approx(3.0).margin(5 * 7e-3));
  // P(|x| > R) = erfc(R/√2) = 5.76e-4 → 1152 expected (σ ≈ 34); P(|x| > 4) = 6.33e-5 → 127 (σ ≈ 11).
  CHECK(std::abs(beyond_base - n * std::erfc(3.442619855899 / std::sqrt(2.0))) < 5 * 34);
  CHECK(std::abs(beyond_4 - n * std::erfc(4.0 / std::sqrt(2.0))) < 5 * 11.3);
  // Kolmogorov–Smirnov: sup |F_n − Φ| below the 0.1% critical value 1.95/√n.
  std::sort(v.begin(), v.end());
  double ks = 0.0;
  for (int i = 0; i < n; ++i) {
    const double phi = 0.5 * std::erfc(-v[i] / std::sqrt(2.0));
    ks = std::max({ks, phi - double(i) / n, double(i + 1) / n - phi});
  }
  CHECK(ks < 1.95 / std::sqrt(double(n)));
}


TEST_CASE("Rng::add_normals draws what n calls of normal() draw and leaves the same state", "[rng]") {
  // 20 000 draws cross hundreds of wedge rejections and a few tail draws,
  // the paths on which add_normals defers to normal()'s general code.
  std::vector<float> mean(97), fast(97);
  for (std::size_t i = 0; i < mean.size(); ++i) mean[i] = 0.01f * float(i);
  Rng batched = Rng::stream(11, "add_normals"), single = Rng::stream(11, "add_normals");
  for (int round = 0; round < 400; ++round) {
    const int n = 1 + round % 97;
    batched.add_normals(mean.data(), 0.7, fast.data(), n);
    for (int i = 0; i < n; ++i) REQUIRE(fast[i] == mean[i] + float(0.7 * single.normal()));
    REQUIRE(batched.next() == single.next());
  }
}

}  // namespace moesim
