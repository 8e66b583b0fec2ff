#pragma once
// Derivative-free minimisation (Nelder & Mead 1965, standard coefficients):
// the calibration objective is a noisy-free but non-smooth function of the
// stream's scalar parameters (it is measured on fixed-seed samples), so no
// gradient is available.
#include <functional>
#include <vector>

namespace moesim {

struct Minimum {
  std::vector<double> x;
  double value = 0.0;
  int evaluations = 0;
};

// Minimises f from x0 with an initial simplex of x0 + step_i·e_i, stopping
// after max_evaluations calls or when the simplex's values agree within tol.
Minimum nelder_mead(const std::function<double(const std::vector<double>&)>& f, std::vector<double> x0,
                    const std::vector<double>& step, int max_evaluations, double tol = 1e-3);

}  // namespace moesim
