#include "alias_table.hpp"

#include <numeric>

namespace moesim {

AliasTable::AliasTable(std::span<const double> weights) : prob_(weights.size()), alias_(weights.size()) {
  const int n = int(weights.size());
  const double total = std::accumulate(weights.begin(), weights.end(), 0.0);
  std::vector<double> scaled(n);
  std::vector<int> small, large;
  for (int i = 0; i < n; ++i) {
    scaled[i] = weights[i] * n / total;
    (scaled[i] < 1.0 ? small : large).push_back(i);
    alias_[i] = i;
  }
  while (!small.empty() && !large.empty()) {
    const int s = small.back(), l = large.back();
    small.pop_back();
    prob_[s] = scaled[s];
    alias_[s] = l;
    scaled[l] -= 1.0 - scaled[s];
    if (scaled[l] < 1.0) {
      large.pop_back();
      small.push_back(l);
    }
  }
  // Whatever remains is 1 up to rounding.
  for (int i : small) prob_[i] = 1.0;
  for (int i : large) prob_[i] = 1.0;
}

}  // namespace moesim
