#pragma once
// Walker's alias method (Vose's construction): O(1) draws from a fixed
// discrete distribution. The calibrated stream draws every token's experts
// from per-layer weights this way, so a draw costs the same for 64 or 256
// experts.
#include <cstdint>
#include <span>
#include <vector>

#include "moesim/rng.hpp"

namespace moesim {

class AliasTable {
 public:
  AliasTable() = default;
  // weights: ≥ 0, at least one > 0.
  explicit AliasTable(std::span<const double> weights);
  int draw(Rng& rng) const {
    const double u = rng.uniform() * double(prob_.size());
    const int i = int(u);
    return (u - i) < prob_[i] ? i : alias_[i];
  }
  int size() const { return int(prob_.size()); }

 private:
  std::vector<double> prob_;
  std::vector<std::int32_t> alias_;
};

}  // namespace moesim
