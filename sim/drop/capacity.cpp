// Per-expert capacity and the capacity drop policies (MODEL.md §5).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <stdexcept>
#include <string>

#include "moesim/drop_rules.hpp"

namespace moesim {
namespace {

// Largest magnitude we convert to int64 (2^62): far beyond any token count,
// and safely inside the range of int64 after rounding.
constexpr double kMaxRounded = 4611686018427387904.0;

double checked(double x, const char* what) {
  if (!std::isfinite(x) || std::fabs(x) > kMaxRounded)
    throw std::invalid_argument(std::string(what) + ": value out of range");
  return x;
}

// Snaps x to the nearest integer when it is within rounding noise of it
// (see kIntegerSnap in drop_rules.hpp for why).
bool near_integer(double x, double& nearest) {
  nearest = std::nearbyint(x);
  return std::fabs(x - nearest) <= kIntegerSnap * std::max(1.0, std::fabs(x));
}

void check_sizes(std::size_t n, std::size_t expert, std::size_t gate, std::size_t keep) {
  if (expert != n || gate != n || keep != n)
    throw std::invalid_argument("capacity_keep: expert, gate and keep must hold T*k entries");
}

// probs ordering within one expert: gate descending, then lower token index.
// Within one expert the assignment index a = t*k + j orders like the token
// index, because a token never picks the same expert twice. NaN sorts as
// -inf so the comparator stays a strict weak order even on bad input.
struct ByGateThenToken {
  const float* gate;
  bool operator()(std::int64_t a, std::int64_t b) const {
    float ga = gate[a], gb = gate[b];
    if (std::isnan(ga)) ga = -std::numeric_limits<float>::infinity();
    if (std::isnan(gb)) gb = -std::numeric_limits<float>::infinity();
    if (ga != gb) return ga > gb;
    return a < b;
  }
};

void keep_probs(std::span<const std::int32_t> expert, std::span<const float> gate, int E,
                std::int64_t capacity, std::span<std::uint8_t> keep, CapacityWorkspace& ws) {
  const auto n = static_cast<std::int64_t>(expert.size());
  // Counting sort of assignments by expert, stable in token order.
  ws.offset.assign(static_cast<std::size_t>(E) + 1, 0);
  for (std::int64_t a = 0; a < n; ++a) ++ws.offset[static_cast<std::size_t>(expert[a]) + 1];
  for (int e = 0; e < E; ++e) ws.offset[e + 1] += ws.offset[e];
  ws.fill.assign(ws.offset.begin(), ws.offset.end() - 1);
  ws.order.resize(static_cast<std::size_t>(n));
  for (std::int64_t a = 0; a < n; ++a) ws.order[ws.fill[expert[a]]++] = a;

  for (int e = 0; e < E; ++e) {
    auto first = ws.order.begin() + ws.offset[e];
    auto last = ws.order.begin() + ws.offset[e + 1];
    const std::int64_t count = last - first;
    if (count > capacity) {
      // Only the split matters, not the order inside each side: O(count).
      std::nth_element(first, first + capacity, last, ByGateThenToken{gate.data()});
    }
    const auto kept_end = first + std::min(count, capacity);
    for (auto it = first; it != kept_end; ++it) keep[*it] = 1;
    for (auto it = kept_end; it != last; ++it) keep[*it] = 0;
  }
}

// position: all first choices (rank 0) in token order, then all second
// choices, ... — the order of GShard's / DeepSpeed top2gating's location
// counters, where second-choice locations start after every first choice.
void keep_position(std::span<const std::int32_t> expert, int T, int k, int E,
                   std::int64_t capacity, std::span<std::uint8_t> keep, CapacityWorkspace& ws) {
  ws.fill.assign(static_cast<std::size_t>(E), 0);
  for (int j = 0; j < k; ++j) {
    for (std::int64_t t = 0; t < T; ++t) {
      const std::int64_t a = t * k + j;
      std::int64_t& used = ws.fill[expert[a]];
      const bool kept = used < capacity;
      keep[a] = kept ? 1 : 0;
      used += kept ? 1 : 0;
    }
  }
}

}  // namespace

std::int64_t ceil_snapped(double x) {
  checked(x, "ceil_snapped");
  double r;
  return static_cast<std::int64_t>(near_integer(x, r) ? r : std::ceil(x));
}

std::int64_t floor_snapped(double x) {
  checked(x, "floor_snapped");
  double r;
  return static_cast<std::int64_t>(near_integer(x, r) ? r : std::floor(x));
}

std::int64_t expert_capacity(double cf, std::int64_t T, int k, int E, std::int64_t min_capacity) {
  if (!(cf >= 0) || T < 0 || k < 1 || E < 1)
    throw std::invalid_argument("expert_capacity: need cf >= 0, T >= 0, k >= 1, E >= 1");
  // Left to right, as the formula reads: ((cf·T)·k)/E.
  const double x = cf * static_cast<double>(T) * k / E;
  return std::max(ceil_snapped(x), min_capacity);
}

void capacity_keep(std::span<const std::int32_t> expert, std::span<const float> gate, int T, int k,
                   int E, std::int64_t capacity, CapacityPolicy policy,
                   std::span<std::uint8_t> keep, CapacityWorkspace& ws) {
  if (T < 0 || k < 1 || E < 1 || capacity < 0)
    throw std::invalid_argument("capacity_keep: need T >= 0, k >= 1, E >= 1, capacity >= 0");
  const auto n = static_cast<std::size_t>(T) * static_cast<std::size_t>(k);
  check_sizes(n, expert.size(), gate.size(), keep.size());
  for (std::int32_t e : expert)
    if (e < 0 || e >= E) throw std::invalid_argument("capacity_keep: expert id out of [0, E)");
  if (policy == CapacityPolicy::probs)
    keep_probs(expert, gate, E, capacity, keep, ws);
  else
    keep_position(expert, T, k, E, capacity, keep, ws);
}

}  // namespace moesim
