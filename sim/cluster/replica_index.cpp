// PlacementMap flattened for lookups by token (placement.hpp: ReplicaIndex).
#include <algorithm>
#include <numeric>
#include <stdexcept>

#include "moesim/placement.hpp"

namespace moesim {

void ReplicaIndex::index(const PlacementMap& map, unsigned rows) {
  const auto bad = [] {
    throw std::invalid_argument(
        "ReplicaIndex: the slots are not devices × slots_per_device, an expert has no replica or a slot is out of range");
  };
  // Every layer of every serving iteration comes here, so no division per
  // slot or expert (they were 3% of a serving run): slots are device-major,
  // and the multiplier of each replica count is computed once.
  const std::size_t S = map.phy2log.size();
  if (map.devices < 0 || map.slots_per_device < 0 || S != std::size_t(map.devices) * std::size_t(map.slots_per_device))
    bad();
  slot_device_.resize(S);
  for (std::size_t d = 0, j = 0; d < std::size_t(map.devices); ++d)
    for (int i = 0; i < map.slots_per_device; ++i) slot_device_[j++] = int(d);  // PlacementMap::device_of_slot
  experts_.clear();
  replicas_.clear();
  replicated_ = false;
  for (const auto& slots : map.log2phy) {
    const std::size_t r = slots.size();
    if (r == 0) bad();
    while (multiplier_.size() <= r) {  // one division per replica count
      const std::uint64_t count = std::max<std::uint64_t>(multiplier_.size(), 1);  // entry 0 is never read
      multiplier_.push_back(~std::uint64_t(0) / count + 1);
    }
    experts_.push_back({multiplier_[r], std::int32_t(replicas_.size()), std::int32_t(r)});
    replicated_ = replicated_ || r > 1;
    for (int slot : slots) {
      if (slot < 0 || std::size_t(slot) >= S) bad();
      replicas_.push_back({slot, slot_device_[std::size_t(slot)]});
    }
  }
  // The period of the rows, lcm of the counts, given up beyond kMaxPeriod
  // rows or kMaxRowEntries entries (every layer holds its own table).
  const std::size_t E = experts_.size();
  std::int64_t period = rows != no_rows ? 1 : 0;
  for (const Expert& x : experts_)
    if (period > 0 && period <= kMaxPeriod) period = std::lcm(period, std::int64_t(x.count));
  const auto fits = [&](unsigned table, std::size_t max_entries) {
    return (rows & table) != 0 && period <= kMaxPeriod && std::size_t(period) * E <= max_entries ? int(period) : 0;
  };
  period_ = fits(device_rows, kMaxRowEntries);
  row_table_.resize(std::size_t(period_) * E);
  replica_period_ = fits(replica_rows, kMaxReplicaRowEntries);
  replica_table_.resize(std::size_t(replica_period_) * E);
  for (int t = 0; t < std::max(period_, replica_period_); ++t)
    for (std::size_t e = 0; e < E; ++e) {
      const Replica& r = replica_for(int(e), std::uint32_t(t));
      if (t < period_) row_table_[std::size_t(t) * E + e] = r.device;
      if (t < replica_period_) replica_table_[std::size_t(t) * E + e] = r;
    }
}

std::span<const std::int32_t> ReplicaIndex::device_row(std::uint32_t tok, std::vector<std::int32_t>& scratch) const {
  const std::size_t E = experts_.size();
  if (period_ > 0) return {&row_table_[std::size_t(tok % std::uint32_t(period_)) * E], E};
  scratch.resize(E);
  for (std::size_t e = 0; e < E; ++e) scratch[e] = replica_for(int(e), tok).device;
  return scratch;
}

}  // namespace moesim
