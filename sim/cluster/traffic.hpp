#pragma once
// Turns each layer's kept assignments into what the cluster must move and
// compute (MODEL.md §6): tokens of sequence n live on device n mod D
// (data-parallel attention, as DeepSeek-V3 deploys it); sequences split into
// contiguous micro-batches; a token's assignment to an expert with r replicas
// goes to replica (token mod r) (PlacementMap::slot_for); shared experts run
// on the token's own device. Flows are aggregated per (layer, micro-batch,
// src, dst), so their number grows with devices², never with tokens.
#include <algorithm>
#include <bit>
#include <cstdint>
#include <span>
#include <vector>

#if defined(__AVX512CD__)
#include <immintrin.h>
#endif

#include "moesim/cluster.hpp"
#include "moesim/placement.hpp"
#include "moesim/step.hpp"

namespace moesim {

// Thread i of n's first home, when the homes of a cell (whose tokens start at
// the prefix sums begin[0..D], D + 1 entries) are split into n contiguous runs
// of about equal tokens: the home boundary nearest i/n of the cell's tokens
// (D for i = n). Runs of equally many homes left a thread idle where the
// sequences occupy only some devices (bench-v3: 16 sequences on 32).
int split_homes(std::span<const std::int32_t> begin, int i, int n);

// Up to this many choices a token, its devices are told apart in registers
// (first_lanes, LateRepeats); beyond, by stamps per device.
inline constexpr int kDeviceLanes = 16;
// Bit j set where lane[j] differs from lane[0..j), for j < kDeviceLanes;
// `lane` is 64-byte aligned. One vpconflictd where the machine has AVX-512CD.
inline std::uint32_t first_lanes(const std::int32_t* lane) {
#if defined(__AVX512CD__)
  // vpconflictd: per lane, the earlier lanes equal to it; none means first.
  const __m512i v = _mm512_load_si512(lane);
  const __m512i earlier = _mm512_conflict_epi32(v);
  return _mm512_testn_epi32_mask(earlier, earlier);
#else
  std::uint32_t first = 0;
  for (int j = 0; j < kDeviceLanes; ++j) {
    bool seen = false;
    for (int i = 0; i < j; ++i) seen |= lane[i] == lane[j];
    first |= std::uint32_t(!seen) << j;
  }
  return first;
#endif
}

// A count of copies per device, one per token and device: each of a token's
// kept choices adds one as it is read, and end_token takes back the token's
// repeats, a token later (8% of tokens have one in
// deepseek-v3-decode-calibrated.json, 71% in deepseek-v3.json's EP32, none
// in the timing benchmark's routing). Read at once, the lanes just stored one by one would stall the
// 64-byte read of first_lanes until the stores reach the cache (35% of the
// traffic builder's samples). For tokens of at most kDeviceLanes choices.
class LateRepeats {
 public:
  // `none` marks a lane without a destination (a dropped choice, or past k).
  explicit LateRepeats(std::int32_t none) { std::fill_n(&lanes_[0][0], 2 * kMaxTopK, none); }
  // The current token's destination per choice, kMaxTopK lanes.
  std::int32_t* lanes() { return lanes_[current_]; }
  // Takes the previous token's repeats back from `count`; `kept` marks the
  // current token's lanes with a destination (0 after the last token).
  void end_token(std::int32_t* count, std::uint64_t kept) {
    const std::int32_t* before = lanes_[current_ ^ 1];
    for (std::uint64_t repeat = before_kept_ & ~std::uint64_t(first_lanes(before)); repeat != 0; repeat &= repeat - 1)
      --count[std::size_t(before[std::countr_zero(repeat)])];
    before_kept_ = kept;
    current_ ^= 1;
  }

 private:
  alignas(64) std::int32_t lanes_[2][kMaxTopK];
  std::uint64_t before_kept_ = 0;  // the previous token's lanes with a destination
  int current_ = 0;
};

// Bit j set where x[j] != 0, for j < n ≤ 64.
std::uint64_t nonzero_bits(const std::int32_t* x, int n);

class TrafficBuilder {
 public:
  TrafficBuilder(const Shape& shape, const ClusterHardware& hw);
  // Serving (MODEL.md §10): the next steps have home.size() tokens, token t
  // living on device home[t], micro-batch b holding tokens [b·T/m, (b+1)·T/m).
  // Until called, tokens live where the shape's sequences put them.
  void set_homes(std::span<const std::int32_t> home);
  // Starts a step of `layers` MoE layers; buffers keep their capacity.
  void begin_step(int layers);
  // Adds MoE layer `layer` (0-based, called in order) from data.expert /
  // data.keep (T×k, rank order) with that layer's placement and capacity
  // padding (0 = none; > 0 charges every slot that much compute, split evenly
  // over micro-batches). Fills data.device_load and data.device_dropped for
  // the layer: processed / dropped assignments per device, counted on the
  // replica that serves each token.
  void add_layer(int layer, StepData& data, const PlacementMap& map, double padded_capacity);
  const StepTraffic& traffic() const { return traffic_; }
  // Cells with at least this many assignments are counted by a thread team.
  static constexpr std::int64_t kParallelAssignments = 8192;

 private:
  // One thread's share of a cell: its homes' counts and flows. Threads take
  // contiguous runs of homes (split_homes), so their flows, concatenated in
  // thread order, come out in home order whatever the thread count; integer
  // counts sum exactly in any order.
  struct alignas(64) HomeCounter {  // a cache line of its own: threads bump their stamps and sizes
    // Integer counts (exact, and cheaper to bump than doubles), turned into the traffic's doubles once.
    std::vector<std::int32_t> need;       // D: copies the current home sends to each device
    std::vector<std::int32_t> node_need;  // N: copies the current home sends to each node (forwarding's IB crossing)
    std::vector<std::int32_t> dropped_count;  // D: the layer's dropped assignments
    std::vector<std::int32_t> slot_count;     // the cell's processed assignments per slot (device loads derive from them)
    // Per device / node: stamp when the current token already goes there (no
    // search, no clearing per token); devices only beyond kDeviceLanes choices.
    std::vector<std::uint32_t> device_stamp, node_stamp;
    std::uint32_t stamp = 0;
    std::vector<TrafficFlow, UninitializedAllocator<TrafficFlow>> flows;  // the cell's flows of this thread's homes

    void size_for(const Shape& shape);
    // 1 the first time the current token reaches `x` (a device or a node), else 0;
    // branch-free, as whether a token revisits a device is a coin toss.
    int first_visit(std::vector<std::uint32_t>& stamps, int x) {
      const int first = stamps[std::size_t(x)] != stamp;
      stamps[std::size_t(x)] = stamp;
      return first;
    }
    void next_token() {
      if (++stamp == 0) restart_stamps();
    }
    void restart_stamps();  // after 2³² tokens
  };
  // Counts and emits the flows of cell (layer, b)'s homes [h0, h1) into w.
  void count_homes(HomeCounter& w, int b, int h0, int h1, const StepData& data, double* home_tokens) const;
  // Calls each(d) for the devices d with w.need[d] > 0, ascending.
  template <class Each>
  void for_each_reached(const HomeCounter& w, Each each) const;
  // Emits cell flows for the tokens of home h counted in w.need / w.node_need, then zeroes both.
  void emit_flows(HomeCounter& w, int h) const;
  // emit_flows with forwarding: to_relay flows across nodes and their fan-outs.
  void emit_forwarded(HomeCounter& w, int h) const;
  // Checks the layer's placement against the shape and indexes it into replicas_.
  void index_placement(const PlacementMap& map);
  // Counts the assignments of tokens cell_tokens_[begin .. end) (one home's)
  // into w's counts; row_of(tok)[e] is token tok's replica of expert e.
  template <class RowOf>
  void count_home(HomeCounter& w, std::size_t begin, std::size_t end, const StepData& data, RowOf row_of) const;
  // A token's replicas looked up one by one, where ReplicaIndex has no table of rows.
  struct LookedUpRow {
    const ReplicaIndex* index;
    std::uint32_t tok;
    const ReplicaIndex::Replica& operator[](int expert) const { return index->replica_for(expert, tok); }
  };
  // Groups tokens by (micro-batch, home) into cell_tokens_ / cell_begin_.
  void group_tokens(std::span<const std::int32_t> home, std::span<const std::int32_t> batch);

  // Tokens grouped by (micro-batch, home): cell_tokens_[cell_begin_[b·D + h] ..
  // cell_begin_[b·D + h + 1]) are micro-batch b's tokens homed on device h.
  std::vector<std::int32_t> cell_tokens_, cell_begin_;
  std::vector<std::int32_t> batch_, next_;  // micro-batch per token (constructor, set_homes); the sort's fill positions
  std::int64_t tokens_ = 0;

  Shape shape_;
  ClusterHardware hw_;
  int layers_added_ = 0;
  std::vector<HomeCounter> counters_;  // one per thread of the widest team so far
  std::vector<std::size_t> flow_offset_;  // per thread: where its flows go in the cell
  std::vector<std::int32_t> load_count_;  // D: the layer's processed assignments
  std::vector<int> node_of_;           // D: node of each device
  ReplicaIndex replicas_;  // the layer's placement, looked up per assignment
  StepTraffic traffic_;
};

}  // namespace moesim
