#include "stats.hpp"

#include <cmath>
#include <numeric>
#include <stdexcept>

namespace moesim::cli {

namespace {

// Regularised incomplete beta I_x(a, b) by Lentz's continued fraction
// (Numerical Recipes §6.4); accurate to ~1e-14 here.
double incomplete_beta(double a, double b, double x) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  if (x > (a + 1) / (a + b + 2)) return 1 - incomplete_beta(b, a, 1 - x);  // converges faster
  const double front =
      std::exp(std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x)) / a;
  constexpr double tiny = 1e-300;
  double f = 1, c = 1, d = 0;
  for (int i = 0; i <= 400; ++i) {
    const int m = i / 2;
    double numerator;
    if (i == 0) numerator = 1;
    else if (i % 2 == 0) numerator = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m));
    else numerator = -((a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1));
    d = 1 + numerator * d;
    d = std::abs(d) < tiny ? tiny : d;
    d = 1 / d;
    c = 1 + numerator / c;
    c = std::abs(c) < tiny ? tiny : c;
    const double cd = c * d;
    f *= cd;
    if (std::abs(1 - cd) < 1e-15) break;
  }
  return front * (f - 1);
}

// P(|T_df| ≤ t) = 1 − I_{df/(df+t²)}(df/2, 1/2).
double two_sided_cdf(double t, int df) { return 1 - incomplete_beta(df / 2.0, 0.5, df / (df + t * t)); }

}  // namespace

double student_t_quantile(double level, int df) {
  if (df < 1 || !(level > 0 && level < 1)) throw std::invalid_argument("student_t_quantile: df ≥ 1, level in (0, 1)");
  double lo = 0, hi = 1;
  while (two_sided_cdf(hi, df) < level) hi *= 2;
  for (int i = 0; i < 200 && hi - lo > 1e-12 * hi; ++i) {  // bisection: the cdf is increasing in t
    const double mid = (lo + hi) / 2;
    (two_sided_cdf(mid, df) < level ? lo : hi) = mid;
  }
  return (lo + hi) / 2;
}

Interval mean_interval(std::span<const double> values, double level) {
  Interval r;
  r.n = int(values.size());
  if (r.n == 0) return r;
  r.mean = std::accumulate(values.begin(), values.end(), 0.0) / r.n;
  if (r.n < 2) return r;
  double ss = 0;
  for (double v : values) ss += (v - r.mean) * (v - r.mean);
  const double sd = std::sqrt(ss / (r.n - 1));
  r.half_width = student_t_quantile(level, r.n - 1) * sd / std::sqrt(double(r.n));
  return r;
}

}  // namespace moesim::cli
