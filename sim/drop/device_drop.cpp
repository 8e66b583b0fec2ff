// Device-level token dropping with protected sequences (DeepSeek-V2,
// arXiv 2405.04434 §2.2.4 "Token-Dropping Strategy"; MODEL.md §5).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <stdexcept>

#include "moesim/drop_rules.hpp"

namespace moesim {
namespace {

// V2 drops "tokens with the lowest affinity scores" first; FORMATS.md fixes
// the order as s descending, then lower token index, then lower expert index.
// NaN sorts as -inf so the comparator stays a strict weak order.
struct ByAffinityThenTokenThenExpert {
  const float* affinity;
  const std::int32_t* expert;
  int k;
  bool operator()(std::int64_t a, std::int64_t b) const {
    float sa = affinity[a], sb = affinity[b];
    if (std::isnan(sa)) sa = -std::numeric_limits<float>::infinity();
    if (std::isnan(sb)) sb = -std::numeric_limits<float>::infinity();
    if (sa != sb) return sa > sb;
    if (a / k != b / k) return a / k < b / k;
    return expert[a] < expert[b];
  }
};

}  // namespace

std::int64_t device_capacity(double cf, std::int64_t T, int k, int D) {
  if (!(cf >= 0) || T < 0 || k < 1 || D < 1)
    throw std::invalid_argument("device_capacity: need cf >= 0, T >= 0, k >= 1, D >= 1");
  // V2 sets the device budget from the average device load T·k/D.
  return ceil_snapped(cf * static_cast<double>(T) * k / D);
}

bool is_protected(std::int64_t n, double p) {
  // V2: "ensure that the tokens belonging to approximately 10% of the training
  // sequences will never be dropped"; MODEL.md §5 spreads them evenly.
  return floor_snapped(static_cast<double>(n + 1) * p) > floor_snapped(static_cast<double>(n) * p);
}

namespace {

void check_sizes(std::span<const std::int32_t> expert, std::span<const float> affinity, int T, int k, int L, int D,
                 std::int64_t capacity_d, std::span<std::uint8_t> keep, std::int64_t E) {
  if (T < 0 || k < 1 || L < 1 || D < 1 || capacity_d < 0 || T % L != 0)
    throw std::invalid_argument(
        "device_keep: need T >= 0, k >= 1, L >= 1, D >= 1, capacity_d >= 0, T % L == 0");
  const auto n = static_cast<std::size_t>(T) * static_cast<std::size_t>(k);
  if (expert.size() != n || affinity.size() != n || keep.size() != n)
    throw std::invalid_argument("device_keep: expert, affinity and keep must hold T*k entries");
  for (std::int32_t e : expert)
    if (e < 0 || e >= E) throw std::invalid_argument("device_keep: expert id out of [0, E)");
}

// The drop itself, on ws.device (the device of every assignment).
void keep_by_device(std::span<const std::int32_t> expert, std::span<const float> affinity, int T, int k, int L,
                    int D, std::int64_t capacity_d, double protected_fraction, std::span<std::uint8_t> keep,
                    DeviceDropWorkspace& ws) {
  const auto n = static_cast<std::size_t>(T) * static_cast<std::size_t>(k);

  const int B = T / L;
  ws.seq_protected.resize(static_cast<std::size_t>(B));
  for (int s = 0; s < B; ++s) ws.seq_protected[s] = is_protected(s, protected_fraction) ? 1 : 0;

  // Bucket the unprotected assignments by device (stable in assignment order)
  // and count the protected ones, which are kept unconditionally.
  ws.offset.assign(static_cast<std::size_t>(D) + 1, 0);
  ws.protected_count.assign(static_cast<std::size_t>(D), 0);
  const auto count = static_cast<std::int64_t>(n);
  auto device_of = [&](std::int64_t a) { return ws.device[a]; };
  auto protected_assignment = [&](std::int64_t a) { return ws.seq_protected[(a / k) / L] != 0; };
  for (std::int64_t a = 0; a < count; ++a) {
    if (protected_assignment(a))
      ++ws.protected_count[device_of(a)];
    else
      ++ws.offset[static_cast<std::size_t>(device_of(a)) + 1];
  }
  for (int d = 0; d < D; ++d) ws.offset[d + 1] += ws.offset[d];
  ws.fill.assign(ws.offset.begin(), ws.offset.end() - 1);
  ws.order.resize(n);
  for (std::int64_t a = 0; a < count; ++a) {
    keep[a] = 1;
    if (!protected_assignment(a)) ws.order[ws.fill[device_of(a)]++] = a;
  }

  const ByAffinityThenTokenThenExpert cmp{affinity.data(), expert.data(), k};
  for (int d = 0; d < D; ++d) {
    auto first = ws.order.begin() + ws.offset[d];
    auto last = ws.order.begin() + ws.offset[d + 1];
    const std::int64_t unprotected = last - first;
    // Room left for unprotected assignments after the protected ones.
    const std::int64_t room = std::max<std::int64_t>(0, capacity_d - ws.protected_count[d]);
    if (unprotected <= room) continue;
    std::nth_element(first, first + room, last, cmp);
    for (auto it = first + room; it != last; ++it) keep[*it] = 0;
  }
}

}  // namespace

void device_keep(std::span<const std::int32_t> expert, std::span<const float> affinity,
                 std::span<const std::int32_t> device_of_expert, int T, int k, int L, int D,
                 std::int64_t capacity_d, double protected_fraction, std::span<std::uint8_t> keep,
                 DeviceDropWorkspace& ws) {
  check_sizes(expert, affinity, T, k, L, D, capacity_d, keep, static_cast<std::int64_t>(device_of_expert.size()));
  for (std::int32_t d : device_of_expert)
    if (d < 0 || d >= D) throw std::invalid_argument("device_keep: device id out of [0, D)");
  ws.device.resize(expert.size());
  for (std::size_t a = 0; a < expert.size(); ++a) ws.device[a] = device_of_expert[expert[a]];
  keep_by_device(expert, affinity, T, k, L, D, capacity_d, protected_fraction, keep, ws);
}

void device_keep(std::span<const std::int32_t> expert, std::span<const float> affinity, const PlacementMap& map,
                 int T, int k, int L, std::int64_t capacity_d, double protected_fraction,
                 std::span<std::uint8_t> keep, DeviceDropWorkspace& ws) {
  check_sizes(expert, affinity, T, k, L, map.devices, capacity_d, keep, map.experts());
  ws.device.resize(expert.size());
  ws.replicas.index(map);  // no division per assignment
  for (int t = 0; t < T; ++t)
    for (int r = 0; r < k; ++r) {
      const std::size_t a = std::size_t(t) * k + r;
      ws.device[a] = ws.replicas.replica_for(expert[a], std::uint32_t(t)).device;  // map.device_for(expert[a], t)
    }
  keep_by_device(expert, affinity, T, k, L, map.devices, capacity_d, protected_fraction, keep, ws);
}

}  // namespace moesim
