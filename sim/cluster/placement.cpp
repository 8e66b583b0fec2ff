// Simple placements and the even split of expert tokens over replicas.
#include <cmath>
#include <stdexcept>
#include <string>

#include "moesim/error.hpp"
#include "moesim/placement.hpp"

namespace moesim {

PlacementMap placement_from_phy2log(std::vector<int> phy2log, int experts, int devices) {
  if (devices < 1 || phy2log.empty() || phy2log.size() % std::size_t(devices) != 0)
    throw ParamError("placement", "the number of slots must be a positive multiple of the " +
                                      std::to_string(devices) + " devices");
  PlacementMap m;
  m.devices = devices;
  m.slots_per_device = int(phy2log.size() / std::size_t(devices));
  m.log2phy.assign(std::size_t(experts), {});
  m.logcnt.assign(std::size_t(experts), 0);
  for (int slot = 0; slot < int(phy2log.size()); ++slot) {
    const int e = phy2log[slot];
    if (e < 0 || e >= experts)
      throw ParamError("placement", "slot " + std::to_string(slot) + " names expert " + std::to_string(e) +
                                        ", valid experts are 0.." + std::to_string(experts - 1));
    m.log2phy[e].push_back(slot);
    ++m.logcnt[e];
  }
  for (int e = 0; e < experts; ++e)
    if (m.logcnt[e] == 0) throw ParamError("placement", "expert " + std::to_string(e) + " has no slot");
  m.phy2log = std::move(phy2log);
  return m;
}

namespace {
void check_divides(int experts, int devices) {
  if (devices < 1 || experts < 1 || experts % devices != 0)
    throw ParamError("placement", "experts (" + std::to_string(experts) + ") must be a positive multiple of devices (" +
                                      std::to_string(devices) + ")");
}
}  // namespace

PlacementMap contiguous(int experts, int devices) {
  check_divides(experts, devices);
  std::vector<int> p(static_cast<std::size_t>(experts));
  for (int e = 0; e < experts; ++e) p[e] = e;  // slot e = device e/(E/D), position e mod (E/D)
  return placement_from_phy2log(std::move(p), experts, devices);
}

PlacementMap round_robin(int experts, int devices) {
  check_divides(experts, devices);
  const int per = experts / devices;
  std::vector<int> p(static_cast<std::size_t>(experts));
  for (int d = 0; d < devices; ++d)
    for (int j = 0; j < per; ++j) p[d * per + j] = d + j * devices;  // device d holds d, d+D, d+2D, ...
  return placement_from_phy2log(std::move(p), experts, devices);
}

double replica_share(double count, int replicas, int rank) {
  if (replicas == 1) return count;
  if (count != std::floor(count)) return count / replicas;
  const double base = std::floor(count / replicas);
  const double rem = count - base * replicas;  // integral, < replicas
  return base + (rank < rem ? 1.0 : 0.0);
}

std::vector<double> slot_loads(const PlacementMap& map, const std::vector<double>& expert_counts) {
  if (int(expert_counts.size()) != map.experts())
    throw std::invalid_argument("slot_loads: expert_counts size differs from the placement's expert count");
  std::vector<double> load(map.phy2log.size(), 0.0);
  for (int e = 0; e < map.experts(); ++e)
    for (int r = 0; r < map.logcnt[e]; ++r) load[map.log2phy[e][r]] = replica_share(expert_counts[e], map.logcnt[e], r);
  return load;
}

std::vector<double> device_loads(const PlacementMap& map, const std::vector<double>& expert_counts) {
  const std::vector<double> per_slot = slot_loads(map, expert_counts);
  std::vector<double> load(std::size_t(map.devices), 0.0);
  for (int s = 0; s < int(per_slot.size()); ++s) load[map.device_of_slot(s)] += per_slot[s];
  return load;
}

}  // namespace moesim
