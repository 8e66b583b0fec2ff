#pragma once
// Where experts live (MODEL.md §6 "Placement"): plain placement maps, the
// simple placements, DeepSeek's EPLB, and the even split of an expert's
// tokens over its replicas. Pure data and algorithms; no JSON, no timing.
#include <cstdint>
#include <span>
#include <vector>

namespace moesim {

// Physical slots are numbered device-major: slot = device·slots_per_device + j.
struct PlacementMap {
  int devices = 0;
  int slots_per_device = 0;
  std::vector<int> phy2log;               // devices·slots: logical expert held by each slot
  std::vector<std::vector<int>> log2phy;  // per logical expert: its slots, replica rank order
  std::vector<int> logcnt;                // per logical expert: number of replicas
  int device_of_slot(int slot) const { return slot / slots_per_device; }
  int experts() const { return int(logcnt.size()); }
  // The replica that serves token `token` (its index in the step) for
  // `expert`: replica token mod r of the expert's list (MODEL.md §6), a
  // deterministic even split every stage (routing limits, droppers, traffic)
  // agrees on.
  int slot_for(int expert, long long token) const {
    const auto& r = log2phy[std::size_t(expert)];
    return r[std::size_t(token % static_cast<long long>(r.size()))];
  }
  int device_for(int expert, long long token) const { return device_of_slot(slot_for(expert, token)); }
};

// PlacementMap::slot_for and device_for for the many tokens of a step, with
// no division per lookup: the map flattened (one record per replica, with
// its device), and token mod r by a multiply (Lemire, Kaser and Kurz 2019,
// "Faster remainder by direct computation"; exact for 32-bit tokens, and 0
// for r = 1, where the multiplier wraps to 0). The routing limits (each
// token's own row of replica devices), the device dropper and the traffic
// builder (every assignment) look replicas up this way.
class ReplicaIndex {
 public:
  struct Replica {
    std::int32_t slot, device;
  };
  // Per-token tables index() can make besides the replicas (flags, or'ed):
  // each token's row of replica devices (device_row: the routing limits) and
  // of replicas (replica_row: the traffic builder, every assignment).
  enum Rows : unsigned { no_rows = 0, device_rows = 1, replica_rows = 2 };
  ReplicaIndex() = default;
  explicit ReplicaIndex(const PlacementMap& map, unsigned rows = no_rows) { index(map, rows); }
  // Re-reads `map` and makes the `rows` asked for. Throws
  // std::invalid_argument if the slots are not devices × slots_per_device,
  // an expert has no replica or a slot is out of range (a caller's bug:
  // maps from placement_from_phy2log have none of these).
  void index(const PlacementMap& map, unsigned rows = no_rows);
  // map.slot_for(expert, tok) and map.device_for(expert, tok).
  const Replica& replica_for(int expert, std::uint32_t tok) const {
    const Expert& x = experts_[std::size_t(expert)];
    const std::uint64_t low = x.mod * tok;
    const auto rank = std::size_t((static_cast<unsigned __int128>(low) * std::uint64_t(x.count)) >> 64);
    return replicas_[std::size_t(x.begin) + rank];
  }
  int device_of_slot(int slot) const { return slot_device_[std::size_t(slot)]; }
  // Token tok's device for every expert (replica_for(e, tok).device, e =
  // 0..E−1). Rows repeat with the period p = lcm of the replica counts, as
  // (tok mod p) mod r = tok mod r: so with device_rows, p ≤ kMaxPeriod and
  // p·E ≤ kMaxRowEntries, row tok mod p of a table made by index; else
  // written into `scratch`.
  std::span<const std::int32_t> device_row(std::uint32_t tok, std::vector<std::int32_t>& scratch) const;
  static constexpr int kMaxPeriod = 64;
  static constexpr std::size_t kMaxRowEntries = std::size_t(1) << 16;
  // Token tok's replica for every expert (replica_for(e, tok), e = 0..E−1),
  // one load each instead of two and two multiplies; nullptr unless index
  // was asked for replica_rows, p ≤ kMaxPeriod and p·E ≤
  // kMaxReplicaRowEntries: at most 32 KiB, an L1 data cache's size (the
  // timing benchmark's table, p = 2 and 256 experts, is 4 KiB).
  const Replica* replica_row(std::uint32_t tok) const {
    if (replica_period_ == 0) return nullptr;
    return &replica_table_[std::size_t(tok % std::uint32_t(replica_period_)) * experts_.size()];
  }
  static constexpr std::size_t kMaxReplicaRowEntries = 4096;
  // Whether some expert has more than one replica, so that its device depends on the token.
  bool replicated() const { return replicated_; }

 private:
  struct Expert {
    std::uint64_t mod;  // 2⁶⁴/count rounded up: replica_for's multiplier
    std::int32_t begin, count;
  };
  std::vector<Expert> experts_;            // expert e's replicas: replicas_[begin .. begin + count)
  std::vector<Replica> replicas_;
  std::vector<std::uint64_t> multiplier_;  // by replica count r ≥ 1: Expert::mod (entry 0 unused), kept across maps
  std::vector<int> slot_device_;           // per slot
  bool replicated_ = false;
  int period_ = 0;                         // rows in row_table_ (0: none)
  std::vector<std::int32_t> row_table_;    // period_ × experts: device_row's rows
  int replica_period_ = 0;                 // rows in replica_table_ (0: none)
  std::vector<Replica> replica_table_;     // replica_period_ × experts: replica_row's rows
};

// Builds log2phy/logcnt from phy2log, replicas ranked by ascending slot.
// Throws ParamError("placement") if a slot names no valid expert or an expert
// has no slot, or if phy2log.size() is not a multiple of devices.
PlacementMap placement_from_phy2log(std::vector<int> phy2log, int experts, int devices);

// Expert e on device e / (E/D), the default (MODEL.md §6). E % D == 0.
PlacementMap contiguous(int experts, int devices);
// Expert e on device e mod D. E % D == 0.
PlacementMap round_robin(int experts, int devices);

// ---- EPLB: DeepSeek's Expert-Parallelism Load Balancer ----------------------
// A C++ re-implementation of deepseek-ai/EPLB eplb.py (read at commit d52c72d,
// "Fix missing device for pphy2mlog tensor"). Arithmetic is float32, as there
// (the reference calls weight.float()), so ties resolve identically.
// Tie-breaking, matched to the reference:
//  - balanced_packing sorts items by weight descending with torch.sort
//    (stable=False). PyTorch's CPU kernel does that with std::sort and a
//    key-only comparator on (value, index) pairs starting in index order; we
//    call std::sort the same way, so under libstdc++ the permutation is the
//    same: for ≤ 16 items it is insertion sort, i.e. stable (equal weights in
//    index order); beyond that, libstdc++'s introsort order, as in torch.
//  - the pack chosen is the lightest non-full one, the lowest index among
//    equals (Python's min over packs in order).
//  - replicate_experts adds a replica to the expert with the largest
//    weight/replicas, the lowest index among equals (torch.max(dim) returns the
//    first maximal index).
struct Packing {
  std::vector<int> pack_index;    // per item
  std::vector<int> rank_in_pack;  // per item: order of arrival in its pack
};
// Packs n items into num_packs packs of exactly n/num_packs items, greedily
// heaviest first into the lightest pack (eplb.py balanced_packing).
Packing balanced_packing(const std::vector<float>& weight, int num_packs);

struct Replication {
  std::vector<int> phy2log;  // num_phy: logical expert of each replica
  std::vector<int> rank;     // num_phy: replica rank of each replica
  std::vector<int> logcnt;   // num_log: replicas per expert
};
// Replicas 0..num_log−1 are the experts themselves; each further replica goes
// to the expert with the highest load per replica (eplb.py replicate_experts).
Replication replicate_experts(const std::vector<float>& weight, int num_phy);

struct EplbResult {
  std::vector<std::vector<int>> phy2log;               // layers × num_replicas
  std::vector<std::vector<std::vector<int>>> log2phy;  // layers × experts × max logcnt, −1 padded
  std::vector<std::vector<int>> logcnt;                // layers × experts
};
// eplb.py rebalance_experts: hierarchical (groups packed to nodes, replicas
// made within nodes, replicas packed to GPUs) when num_nodes divides
// num_groups, else the global policy (the same with one group and one node).
// `weight` is layers × logical experts, loads ≥ 0. Throws ParamError naming
// num_replicas / num_groups / num_nodes / num_gpus when the shapes do not
// divide as the reference asserts, std::invalid_argument for ragged or
// negative/non-finite weights.
EplbResult rebalance_experts(const std::vector<std::vector<double>>& weight, int num_replicas, int num_groups,
                             int num_nodes, int num_gpus);

// One layer of an EPLB result as a PlacementMap over num_gpus devices
// (log2phy keeps EPLB's replica rank order, padding removed).
PlacementMap to_placement(const EplbResult& result, int layer, int num_gpus);

// ---- Replicas share their expert's tokens ----------------------------------
// The share of `count` tokens taken by replica `rank` of `replicas`: an even
// split, and for integral counts the remainder goes one token each to the
// lowest ranks (deterministic: 7 over 3 replicas is 3, 2, 2). Non-integral
// counts (e.g. averaged loads) split exactly as count/replicas.
double replica_share(double count, int replicas, int rank);
// Per-slot and per-device loads for per-expert counts (size experts()).
std::vector<double> slot_loads(const PlacementMap& map, const std::vector<double>& expert_counts);
std::vector<double> device_loads(const PlacementMap& map, const std::vector<double>& expert_counts);

}  // namespace moesim
