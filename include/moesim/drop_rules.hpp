#pragma once
// Pure drop rules (MODEL.md §5, FORMATS.md "Exact rules the checks rely on").
//
// Every function works on the simulator's step layout: T tokens (B sequences ×
// L tokens, token t in sequence t / L), k assignments per token stored
// row-major, assignment a = t·k + j is the token's j-th choice in rank order.
// The functions only read routing arrays and write keep[T·k] (1 kept, 0
// dropped); scratch lives in a caller-owned workspace so that, after the first
// call at a given size, no call allocates.
#include <cstdint>
#include <span>
#include <vector>

#include "moesim/placement.hpp"

namespace moesim {

// ---------------------------------------------------------------------------
// Decimal-exact rounding.
//
// Capacities are ceil(cf·T·k/E) "in double" (FORMATS.md), evaluated left to
// right, exactly as an independent checker (e.g. Python's math.ceil) would.
// Beware: a product that is an integer in exact arithmetic can land one ulp
// above it (1.1·10 = 11.000000000000002 → capacity 12), or below it for floor
// (0.29·100 = 28.999999999999996). The contract keeps plain rounding so that
// replayed traces agree bit for bit with other implementations; the snap
// tolerance exists for callers that want exact-arithmetic rounding and is 0.
inline constexpr double kIntegerSnap = 0.0;
std::int64_t ceil_snapped(double x);
std::int64_t floor_snapped(double x);

// ---------------------------------------------------------------------------
// Per-expert capacity (MODEL.md §5; GShard arXiv 2006.16668 §2.2,
// Switch Transformer arXiv 2101.03961 §2.2; DeepSpeed sharded_moe._capacity):
//   C = max(ceil(cf·T·k/E), min_capacity), evaluated as ((cf·T)·k)/E in double
//   and rounded with ceil_snapped (see above). cf ≥ 0, T ≥ 0, k ≥ 1, E ≥ 1.
std::int64_t expert_capacity(double cf, std::int64_t T, int k, int E, std::int64_t min_capacity);

enum class CapacityPolicy {
  probs,     // each expert keeps its C assignments with highest gate (ties: lower token index)
  position,  // each expert keeps the first C by (rank in token, token index) — GShard/DeepSpeed top-2
};

// Scratch for capacity_keep; reuse one per dropper.
struct CapacityWorkspace {
  std::vector<std::int64_t> offset;  // E+1: bucket starts of the per-expert assignment lists
  std::vector<std::int64_t> fill;    // E: per-expert write cursor / kept count
  std::vector<std::int64_t> order;   // T·k: assignment indices bucketed by expert
};

// Sets keep for a per-expert capacity drop. expert and gate hold T·k entries
// (rank order per token); every expert id is in [0, E) and no token repeats an
// expert. A dropped assignment removes that expert only (MODEL.md §5).
// Throws std::invalid_argument when span sizes do not match T·k.
void capacity_keep(std::span<const std::int32_t> expert, std::span<const float> gate, int T, int k,
                   int E, std::int64_t capacity, CapacityPolicy policy,
                   std::span<std::uint8_t> keep, CapacityWorkspace& ws);

// ---------------------------------------------------------------------------
// Device-level token dropping (DeepSeek-V2, arXiv 2405.04434 §2.2.4 "Token-Dropping Strategy";
// MODEL.md §5).
//   C_d = ceil(cf·T·k/D), evaluated as ((cf·T)·k)/D, ceil_snapped.
std::int64_t device_capacity(double cf, std::int64_t T, int k, int D);

// Sequence n (index within the step) is protected iff
// floor((n+1)·p) > floor(n·p) (MODEL.md §5), with floor_snapped so that
// exactly floor(N·p) of the first N sequences are protected for decimal p.
// p = 0.1 protects sequences 9, 19, 29, ...; p ≥ 1 protects all; p ≤ 0 none.
bool is_protected(std::int64_t n, double p);

// Scratch for device_keep; reuse one per dropper.
struct DeviceDropWorkspace {
  std::vector<std::int64_t> offset;     // D+1: bucket starts of unprotected assignments per device
  std::vector<std::int64_t> fill;       // D: write cursor
  std::vector<std::int64_t> protected_count;  // D: protected assignments per device
  std::vector<std::int64_t> order;      // T·k: unprotected assignment indices bucketed by device
  std::vector<std::uint8_t> seq_protected;    // B = T / L
  std::vector<std::int32_t> device;           // T×k: device of each assignment
  ReplicaIndex replicas;                      // the placement, for the device of each assignment
};

// Sets keep for the device-level drop. On each device d with more than
// capacity_d assignments: every assignment of a protected sequence is kept
// (even when they alone exceed capacity_d), and of the unprotected ones the
// max(0, capacity_d − protected_d) with the highest affinity s are kept,
// ordered by s descending, ties lower token index, then lower expert index.
// Two experts of one token on one device are two assignments.
// Requires T % L == 0, device ids in [0, D). Throws std::invalid_argument on
// size mismatches.
void device_keep(std::span<const std::int32_t> expert, std::span<const float> affinity,
                 std::span<const std::int32_t> device_of_expert, int T, int k, int L, int D,
                 std::int64_t capacity_d, double protected_fraction, std::span<std::uint8_t> keep,
                 DeviceDropWorkspace& ws);
// The same with replicas: assignment (t, j) counts on the device of the
// replica that serves token t (PlacementMap::device_for, MODEL.md §6).
void device_keep(std::span<const std::int32_t> expert, std::span<const float> affinity, const PlacementMap& map,
                 int T, int k, int L, std::int64_t capacity_d, double protected_fraction,
                 std::span<std::uint8_t> keep, DeviceDropWorkspace& ws);

}  // namespace moesim
