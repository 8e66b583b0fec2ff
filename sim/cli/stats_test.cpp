// Student-t quantiles and seed intervals against hand-worked values.
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "cli/stats.hpp"

using moesim::cli::mean_interval;
using moesim::cli::student_t_quantile;

TEST_CASE("Student-t quantiles match the printed table", "[stats]") {
  // t_{0.975, df} (and t_{0.95, 4}) as statistics tables print them, to 7 digits.
  CHECK(student_t_quantile(0.95, 1) == Approx(12.7062047).epsilon(1e-7));
  CHECK(student_t_quantile(0.95, 2) == Approx(4.3026527).epsilon(1e-7));
  CHECK(student_t_quantile(0.95, 4) == Approx(2.7764451).epsilon(1e-7));
  CHECK(student_t_quantile(0.95, 9) == Approx(2.2621572).epsilon(1e-7));
  CHECK(student_t_quantile(0.95, 30) == Approx(2.0422725).epsilon(1e-7));
  CHECK(student_t_quantile(0.90, 4) == Approx(2.1318468).epsilon(1e-7));
  CHECK(student_t_quantile(0.95, 100000) == Approx(1.9599640).epsilon(1e-4));  // → the normal quantile
  // df = 2 in closed form: P(|T| ≤ t) = t/√(t² + 2) = p gives t = p·√(2/(1 − p²)).
  CHECK(student_t_quantile(0.95, 2) == Approx(0.95 * std::sqrt(2 / (1 - 0.95 * 0.95))).epsilon(1e-10));
  // df = 1 is the Cauchy distribution: t = tan(π·level/2) exactly.
  CHECK(student_t_quantile(0.5, 1) == Approx(1.0).epsilon(1e-10));
}

TEST_CASE("mean ± t·s/√n over seeds, by hand", "[stats]") {
  // 1, 2, 3, 4, 5: mean 3, s = √2.5 = 1.58114, s/√5 = 0.70711, × 2.77645 = 1.96324.
  const std::vector<double> five{1, 2, 3, 4, 5};
  const auto i = mean_interval(five);
  CHECK(i.n == 5);
  CHECK(i.mean == 3.0);
  CHECK(i.half_width == Approx(1.96324).epsilon(1e-5));
  CHECK(i.low() == Approx(1.03676).epsilon(1e-5));
  // 0.46, 0.90: mean 0.68, s = 0.31113, s/√2 = 0.22, × 12.7062 = 2.79536.
  const std::vector<double> two{0.46, 0.90};
  CHECK(mean_interval(two).half_width == Approx(2.79536).epsilon(1e-5));
  // One seed: a mean but no interval; identical seeds: a zero-width one.
  const std::vector<double> one{0.7};
  CHECK(mean_interval(one).n == 1);
  CHECK(mean_interval(one).half_width == 0.0);
  const std::vector<double> same{2, 2, 2};
  CHECK(mean_interval(same).half_width == 0.0);
  CHECK(mean_interval(std::vector<double>{}).n == 0);
}
