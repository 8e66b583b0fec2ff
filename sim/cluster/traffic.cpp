#include "traffic.hpp"

#include <algorithm>
#include <bit>
#include <exception>
#include <stdexcept>
#include <string>
#include <type_traits>

#include <omp.h>

namespace moesim {

static_assert(std::is_trivially_default_constructible_v<TrafficFlow>,
              "add_layer sizes the step's flows unwritten, then fills them in parallel");

TrafficBuilder::TrafficBuilder(const Shape& shape, const ClusterHardware& hw) : shape_(shape), hw_(hw) {
  if (shape.top_k < 1 || shape.top_k > kMaxTopK)
    throw std::invalid_argument("TrafficBuilder: top_k must be in [1, " + std::to_string(kMaxTopK) + "]");
  if (hw.devices_per_node > kMaxDevicesPerNode)  // a relay's fan-out count would wrap
    throw std::invalid_argument("TrafficBuilder: more than " + std::to_string(kMaxDevicesPerNode) + " devices per node");
  node_of_.resize(std::size_t(shape.devices()));
  for (int d = 0; d < shape.devices(); ++d) node_of_[std::size_t(d)] = d / shape.devices_per_node;
  traffic_.devices = shape.devices();
  traffic_.micro_batches = hw.micro_batches;
  traffic_.shared_experts = shape.shared_experts;
  // Sequence n lives on device n mod D; micro-batches are contiguous runs of
  // sequences, [b·B/m, (b+1)·B/m), split by sequence rather than by token.
  const int D = shape.devices(), B = shape.sequences, L = shape.seq_len, m = hw.micro_batches;
  std::vector<std::int32_t> home(std::size_t(shape.tokens()));
  batch_.resize(std::size_t(shape.tokens()));
  for (int b = 0; b < m; ++b)
    for (int n = int(static_cast<long long>(b) * B / m); n < int(static_cast<long long>(b + 1) * B / m); ++n) {
      std::fill_n(&home[std::size_t(n) * L], L, n % D);
      std::fill_n(&batch_[std::size_t(n) * L], L, b);
    }
  group_tokens(home, batch_);
}

void TrafficBuilder::set_homes(std::span<const std::int32_t> home) {
  // Serving: micro-batch b holds tokens [b·T/m, (b+1)·T/m).
  const auto T = std::int64_t(home.size());
  const int m = traffic_.micro_batches;
  batch_.resize(std::size_t(T));
  for (std::int64_t t = 0; t < T; ++t) batch_[std::size_t(t)] = std::int32_t(t * m / T);
  group_tokens(home, batch_);
}

void TrafficBuilder::group_tokens(std::span<const std::int32_t> home, std::span<const std::int32_t> batch) {
  const int D = shape_.devices(), m = traffic_.micro_batches;
  const auto T = std::int64_t(home.size());
  tokens_ = T;
  cell_begin_.assign(std::size_t(m) * D + 1, 0);
  cell_tokens_.resize(std::size_t(T));
  // Counting sort by (micro-batch, home), stable in token order.
  auto cell_of = [&](std::int64_t t) { return std::size_t(batch[std::size_t(t)]) * D + std::size_t(home[std::size_t(t)]); };
  for (std::int64_t t = 0; t < T; ++t) {
    if (home[std::size_t(t)] < 0 || home[std::size_t(t)] >= D)
      throw std::invalid_argument("TrafficBuilder: home device out of range");
    ++cell_begin_[cell_of(t) + 1];
  }
  for (std::size_t c = 1; c < cell_begin_.size(); ++c) cell_begin_[c] += cell_begin_[c - 1];
  next_.assign(cell_begin_.begin(), cell_begin_.end() - 1);
  for (std::int64_t t = 0; t < T; ++t) cell_tokens_[std::size_t(next_[cell_of(t)]++)] = std::int32_t(t);
}

void TrafficBuilder::begin_step(int layers) {
  StepTraffic& t = traffic_;
  t.layers = layers;
  t.flows.clear();
  t.flow_begin.assign(1, 0);
  t.slot_copies.clear();
  t.slot_begin.clear();
  t.slots_per_device.clear();
  t.home_tokens.assign(std::size_t(t.cells()) * t.devices, 0.0);
  layers_added_ = 0;
}

void TrafficBuilder::HomeCounter::size_for(const Shape& shape) {
  need.assign(std::size_t(shape.devices()), 0);
  node_need.assign(std::size_t(shape.nodes), 0);
  dropped_count.assign(std::size_t(shape.devices()), 0);
  device_stamp.assign(std::size_t(shape.devices()), 0);
  node_stamp.assign(std::size_t(shape.nodes), 0);
  stamp = 0;
}

void TrafficBuilder::add_layer(int layer, StepData& data, const PlacementMap& map, double padded_capacity) {
  if (layer != layers_added_ || layer >= traffic_.layers)
    throw std::logic_error("TrafficBuilder::add_layer: layers must be added in order, within begin_step's count");
  const int D = shape_.devices(), k = shape_.top_k;
  const int m = traffic_.micro_batches;
  StepTraffic& t = traffic_;
  if (data.expert.size() < std::size_t(tokens_) * k || data.keep.size() < std::size_t(tokens_) * k)
    throw std::invalid_argument("TrafficBuilder::add_layer: fewer choices than tokens");
  if (data.device_load.size() < std::size_t(D) || data.device_dropped.size() < std::size_t(D))
    throw std::invalid_argument("TrafficBuilder::add_layer: device loads shorter than the devices");
  index_placement(map);
  ++layers_added_;  // after the checks: a refused layer may be added again
  const int team = std::max(1, std::min(omp_get_max_threads(), D));
  while (counters_.size() < std::size_t(team)) counters_.emplace_back().size_for(shape_);
  for (int i = 0; i < team; ++i) {
    std::fill(counters_[i].dropped_count.begin(), counters_[i].dropped_count.end(), 0);
  }
  load_count_.assign(std::size_t(D), 0);
  for (int b = 0; b < m; ++b) {
    const int cell = layer * m + b;
    const std::size_t slots = t.slot_copies.size();
    t.slot_begin.push_back(int(slots));
    t.slots_per_device.push_back(map.slots_per_device);
    t.slot_copies.resize(slots + map.phy2log.size(), padded_capacity > 0 ? padded_capacity / m : 0.0);
    for (int i = 0; i < team; ++i) counters_[i].slot_count.assign(map.phy2log.size(), 0);
    double* home_tokens = &t.home_tokens[std::size_t(cell) * D];
    // A team only where it pays for its start (≈ µs): a serving decode
    // iteration's few tokens run on one thread. Results do not depend on it.
    const std::int64_t assignments = std::int64_t(cell_begin_[std::size_t(b + 1) * D] - cell_begin_[std::size_t(b) * D]) * k;
    const int threads = assignments >= kParallelAssignments ? team : 1;
    flow_offset_.assign(std::size_t(team) + 1, 0);
    // Counting, emitting and sizing the step's flows may throw (bad_alloc):
    // caught in the region and rethrown after it, as an exception must not
    // leave an OpenMP region; every thread still meets the barriers.
    std::exception_ptr error;
    const std::size_t base = t.flows.size();
#pragma omp parallel num_threads(threads)
    {
      const int i = omp_get_thread_num(), n = omp_get_num_threads();  // n may fall short of `threads`
      HomeCounter& w = counters_[std::size_t(i)];
      try {
        const std::span<const std::int32_t> begin(&cell_begin_[std::size_t(b) * D], std::size_t(D) + 1);
        count_homes(w, b, split_homes(begin, i, n), split_homes(begin, i + 1, n), data, home_tokens);
        flow_offset_[std::size_t(i) + 1] = w.flows.size();
      } catch (...) {
#pragma omp critical(traffic_error)
        error = std::current_exception();
      }
#pragma omp barrier
#pragma omp single
      {
        for (int j = 0; j < n; ++j) flow_offset_[std::size_t(j) + 1] += flow_offset_[std::size_t(j)];
        try {
          if (!error) t.flows.resize(base + flow_offset_[std::size_t(n)]);
        } catch (...) {
          error = std::current_exception();
        }
      }  // a barrier: the offsets and the flows' size are known to all
      // Each thread's flows in place, home order; copying cannot throw. One
      // region for both halves: a second would start the team again.
      if (!error)
        std::copy(w.flows.begin(), w.flows.end(), t.flows.begin() + std::ptrdiff_t(base + flow_offset_[std::size_t(i)]));
    }
    if (error) std::rethrow_exception(error);
    for (std::size_t j = 0; j < map.phy2log.size(); ++j) {
      std::int32_t n = 0;
      for (int i = 0; i < team; ++i) n += counters_[i].slot_count[j];
      load_count_[std::size_t(replicas_.device_of_slot(int(j)))] += n;
      if (padded_capacity <= 0) t.slot_copies[slots + j] = double(n);
    }
    t.flow_begin.push_back(int(t.flows.size()));
  }
  for (int d = 0; d < D; ++d) {
    std::int32_t dropped = 0;
    for (int i = 0; i < team; ++i) dropped += counters_[i].dropped_count[d];
    data.device_load[d] = load_count_[std::size_t(d)];
    data.device_dropped[d] = dropped;
  }
}

std::uint64_t nonzero_bits(const std::int32_t* x, int n) {
  std::uint64_t bits = 0;
  for (int j = 0; j < n; ++j) bits |= std::uint64_t(x[j] != 0) << j;
  return bits;
}

int split_homes(std::span<const std::int32_t> begin, int i, int n) {
  const int D = int(begin.size()) - 1;
  if (i >= n) return D;
  const std::int64_t first = begin[0], total = std::int64_t(begin[std::size_t(D)]) - first;
  const std::int64_t target = first + total * i / n;  // i/n of the cell's tokens
  // The home boundary nearest the target (the earlier on a tie): the first
  // at or past it, or the one before when that is closer.
  const int h = int(std::lower_bound(begin.begin(), begin.end(), target) - begin.begin());
  return h > 0 && target - begin[std::size_t(h - 1)] < begin[std::size_t(h)] - target ? h - 1 : h;
}

void TrafficBuilder::count_homes(HomeCounter& w, int b, int h0, int h1, const StepData& data,
                                 double* home_tokens) const {
  const int D = shape_.devices();
  const bool tabulated = replicas_.replica_row(0) != nullptr;  // the same for every token of the layer
  w.flows.clear();
  for (int h = h0; h < h1; ++h) {
    const std::size_t begin = std::size_t(cell_begin_[std::size_t(b) * D + h]);
    const std::size_t end = std::size_t(cell_begin_[std::size_t(b) * D + h + 1]);
    if (begin == end) continue;  // no tokens, no flows: small serving batches skip most homes
    home_tokens[h] += double(end - begin);
    if (tabulated)
      count_home(w, begin, end, data, [this](std::uint32_t tok) { return replicas_.replica_row(tok); });
    else
      count_home(w, begin, end, data, [this](std::uint32_t tok) { return LookedUpRow{&replicas_, tok}; });
    emit_flows(w, h);
  }
}

template <class RowOf>
void TrafficBuilder::count_home(HomeCounter& w, std::size_t begin, std::size_t end, const StepData& data,
                                RowOf row_of) const {
  const int k = shape_.top_k, D = shape_.devices();
  const bool per_token = hw_.dispatch == DispatchMode::per_token, forwarding = hw_.forwarding;
  // One copy per kept choice, counted as it is read, unless a device's
  // stamp must say whether the token already reached it (per-token
  // dispatch beyond kDeviceLanes choices); with per-token dispatch the
  // repeats are then taken back a token later (LateRepeats).
  const bool stamped = per_token && k > kDeviceLanes;
  const bool late_repeats = per_token && !stamped;
  const std::int32_t* expert = data.expert.data();
  const std::uint8_t* keep = data.keep.data();
  const bool few_nodes = shape_.nodes <= 64;
  // The counts through local pointers: the compiler reloads a vector's data
  // pointer after every store through an int pointer it cannot rule out.
  std::int32_t* const need = w.need.data();
  std::int32_t* const slot_count = w.slot_count.data();
  std::int32_t* const dropped_count = w.dropped_count.data();
  LateRepeats devices(D);  // the token's device per choice, D where dropped
  for (std::size_t i = begin; i < end; ++i) {
    const auto tok = std::uint32_t(cell_tokens_[i]);
    w.next_token();
    std::int32_t* const lane = devices.lanes();
    // First where the token's assignments go, each independent of the others.
    std::uint64_t kept = 0;  // bit r: assignment r is processed
    const auto row = row_of(tok);
    for (int r = 0; r < k; ++r) {
      const std::size_t a = std::size_t(tok) * k + r;
      const auto [slot, dev] = row[expert[a]];
      if (!keep[a]) {
        ++dropped_count[std::size_t(dev)];
        lane[r] = D;
        continue;
      }
      ++slot_count[std::size_t(slot)];
      if (!stamped) ++need[std::size_t(dev)];
      lane[r] = dev;
      kept |= std::uint64_t(1) << r;
    }
    // Then whom the kept copies reach. DeepEP sends one copy per destination
    // device (and per node when forwarding).
    if (late_repeats) {
      devices.end_token(need, kept);
    } else if (stamped) {
      for (int r = 0; r < k; ++r)
        if (kept >> r & 1) need[std::size_t(lane[r])] += w.first_visit(w.device_stamp, lane[r]);
    }
    if (!forwarding) continue;
    std::uint64_t nodes = 0;  // the token's nodes so far, when there are at most 64
    for (int r = 0; r < k; ++r) {  // IB crossings per node: only forwarding reads them
      if (!(kept >> r & 1)) continue;
      const int node = node_of_[std::size_t(lane[r])];
      int first;
      if (few_nodes) {  // in a register: a token meets its nodes again often, and a stamp in memory stalls
        const std::uint64_t bit = std::uint64_t(1) << node;
        first = (nodes & bit) == 0;
        nodes |= bit;
      } else {
        first = w.first_visit(w.node_stamp, node);
      }
      w.node_need[std::size_t(node)] += first | !per_token;
    }
  }
  if (late_repeats) devices.end_token(need, 0);
}

void TrafficBuilder::index_placement(const PlacementMap& map) {
  // A map of another shape, an expert without a replica or a slot out of
  // range would index past the counters (a caller bug, not bad input).
  const auto bad = [] { throw std::invalid_argument("TrafficBuilder::add_layer: the placement does not match the shape"); };
  if (map.devices != shape_.devices() || map.experts() != shape_.experts) bad();
  try {  // ReplicaIndex checks the rest
    // A table of rows (one load per assignment) where its entries, at most
    // kMaxReplicaRowEntries, are fewer than the lookups: not for a serving
    // decode iteration's few tokens.
    const bool rows = tokens_ * shape_.top_k >= std::int64_t(ReplicaIndex::kMaxReplicaRowEntries);
    replicas_.index(map, rows ? ReplicaIndex::replica_rows : ReplicaIndex::no_rows);
  } catch (const std::invalid_argument&) {
    bad();
  }
}

void TrafficBuilder::HomeCounter::restart_stamps() {
  // Wrapped after 2³² tokens: old stamps could collide, so start over.
  std::fill(device_stamp.begin(), device_stamp.end(), 0);
  std::fill(node_stamp.begin(), node_stamp.end(), 0);
  stamp = 1;
}

template <class Each>
void TrafficBuilder::for_each_reached(const HomeCounter& w, Each each) const {
  const int D = shape_.devices();
  for (int base = 0; base < D; base += 64)
    for (std::uint64_t bits = nonzero_bits(&w.need[std::size_t(base)], std::min(64, D - base)); bits != 0;
         bits &= bits - 1)
      each(base + std::countr_zero(bits));
}

void TrafficBuilder::emit_flows(HomeCounter& w, int h) const {
  // Only the devices this home's tokens reach, ascending (the bits in order),
  // so flows come out in device order whatever the batch size. They are the
  // devices with a need, read here a word of 64 at a time rather than marked
  // per copy while counting, where each mark waited on the previous one in
  // the same word (BM_TimingTraffic58Layers/0 17.8–18.3 → 15.3–16.2 ms).
  if (!hw_.forwarding) {  // every flow direct: no nodes to follow, and at most D − 1 of them
    const int D = shape_.devices();
    auto& flows = w.flows;
    const std::size_t first = flows.size();
    flows.resize(first + std::size_t(D));
    TrafficFlow* out = flows.data() + first;
    for_each_reached(w, [&](int d) {
      *out = {h, d, TrafficFlow::direct, false, 0, w.need[std::size_t(d)]};
      out += d != h;  // a home's own tokens stay: overwritten by the next flow, or cut below
    });
    flows.resize(std::size_t(out - flows.data()));
  } else {
    emit_forwarded(w, h);
  }
  // Cleared for the next home after the emission (a relay's need is read when
  // its node opens, possibly before its own bit): whole, as the scan read it all.
  std::fill(w.need.begin(), w.need.end(), 0);
  std::fill(w.node_need.begin(), w.node_need.end(), 0);
}

void TrafficBuilder::emit_forwarded(HomeCounter& w, int h) const {
  const int G = shape_.devices_per_node, home_node = h / G;
  auto& flows = w.flows;
  std::size_t parent = 0;  // the open to_relay flow of the current node
  int node = -1;           // the node whose flows are being emitted
  for_each_reached(w, [&](int d) {
    if (node_of_[std::size_t(d)] != node) {
      node = node_of_[std::size_t(d)];
      if (node != home_node) {
        // One IB crossing to the relay, the node's device with h's local index.
        const int relay = node * G + h % G;
        parent = flows.size();
        flows.push_back({h, relay, TrafficFlow::to_relay, w.need[std::size_t(relay)] > 0, 0,
                        w.node_need[std::size_t(node)]});
      }
    }
    if (node == home_node) {
      if (d != h) flows.push_back({h, d, TrafficFlow::direct, false, 0, w.need[std::size_t(d)]});
    } else if (d != flows[parent].dst) {
      flows.push_back({flows[parent].dst, d, TrafficFlow::fan_out, false, 0, w.need[std::size_t(d)]});
      ++flows[parent].children;
    }
  });
}

}  // namespace moesim
