#include "nelder_mead.hpp"

#include <algorithm>
#include <numeric>

namespace moesim {

Minimum nelder_mead(const std::function<double(const std::vector<double>&)>& f, std::vector<double> x0,
                    const std::vector<double>& step, int max_evaluations, double tol) {
  const std::size_t n = x0.size();
  int evaluations = 0;
  auto eval = [&](const std::vector<double>& x) {
    ++evaluations;
    return f(x);
  };
  std::vector<std::vector<double>> p(n + 1, x0);
  for (std::size_t i = 0; i < n; ++i) p[i + 1][i] += step[i];
  std::vector<double> v(n + 1);
  for (std::size_t i = 0; i <= n; ++i) v[i] = eval(p[i]);
  auto along = [&](const std::vector<double>& c, const std::vector<double>& worst, double t) {
    std::vector<double> x(n);
    for (std::size_t j = 0; j < n; ++j) x[j] = c[j] + t * (worst[j] - c[j]);
    return x;
  };
  while (evaluations < max_evaluations) {
    std::vector<std::size_t> order(n + 1);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return v[a] < v[b]; });
    std::vector<std::vector<double>> ps;
    std::vector<double> vs;
    for (std::size_t i : order) {
      ps.push_back(p[i]);
      vs.push_back(v[i]);
    }
    p = ps;
    v = vs;
    if (v[n] - v[0] <= tol) break;
    std::vector<double> c(n, 0.0);  // centroid of all but the worst
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < n; ++j) c[j] += p[i][j] / double(n);
    const std::vector<double> r = along(c, p[n], -1.0);
    const double fr = eval(r);
    if (fr < v[0]) {
      const std::vector<double> e = along(c, p[n], -2.0);
      const double fe = eval(e);
      if (fe < fr) p[n] = e, v[n] = fe;
      else p[n] = r, v[n] = fr;
    } else if (fr < v[n - 1]) {
      p[n] = r, v[n] = fr;
    } else {
      const std::vector<double> k = fr < v[n] ? along(c, p[n], -0.5) : along(c, p[n], 0.5);
      const double fk = eval(k);
      if (fk < std::min(fr, v[n])) {
        p[n] = k, v[n] = fk;
      } else {  // shrink towards the best
        for (std::size_t i = 1; i <= n && evaluations < max_evaluations; ++i) {
          for (std::size_t j = 0; j < n; ++j) p[i][j] = p[0][j] + 0.5 * (p[i][j] - p[0][j]);
          v[i] = eval(p[i]);
        }
      }
    }
  }
  const std::size_t best = std::size_t(std::min_element(v.begin(), v.end()) - v.begin());
  return {p[best], v[best], evaluations};
}

}  // namespace moesim
