#include <catch2/catch.hpp>
#include <cmath>

#include "fast_exp.hpp"

TEST_CASE("fast_exp is within 2 ulp of exp over the range scores use", "[scores]") {
  for (float x = -87.0f; x <= 88.0f; x += 0.01173f) {
    const double exact = std::exp(double(x));
    INFO("x = " << x);
    CHECK(std::abs(moesim::fast_exp(x) - exact) <= 2.5e-7 * exact);
  }
  CHECK(moesim::fast_exp(0.0f) == 1.0f);
  CHECK(moesim::fast_exp(-1000.0f) > 0.0f);  // clamped, never 0 or denormal
  CHECK(std::isfinite(moesim::fast_exp(1000.0f)));
}
