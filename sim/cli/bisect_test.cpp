// Bisection on monotone functions with hand-known answers.
#include <catch2/catch.hpp>

#include "cli/bisect.hpp"

using moesim::cli::bisect_smallest;

TEST_CASE("bisection finds the smallest value meeting a monotone constraint", "[search]") {
  // 1/x < 0.25 holds exactly for x > 4.
  int calls = 0;
  const auto r = bisect_smallest(1, 10, 1e-3, false, [&](double x) { ++calls; return 1 / x < 0.25; });
  REQUIRE(r.found);
  CHECK(r.value > 4.0);
  CHECK(r.value <= 4.0 + 1e-3);
  CHECK(r.evaluations == calls);
  CHECK(calls == 2 + 14);  // 9 / 2^14 < 1e-3 ≤ 9 / 2^13
  // Integers: x² ≥ 50 first holds at 8.
  const auto i = bisect_smallest(0, 100, 0.5, true, [](double x) { return x * x >= 50; });
  CHECK(i.found);
  CHECK(i.value == 8.0);
  // Already met at the low end; never met.
  CHECK(bisect_smallest(5, 10, 0.1, false, [](double) { return true; }).value == 5.0);
  CHECK_FALSE(bisect_smallest(5, 10, 0.1, false, [](double) { return false; }).found);
}
