// The discrete-event model of one step's timing (MODEL.md §6; docs/timing.md).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <exception>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

#include <omp.h>

#include "moesim/cluster.hpp"
#include "moesim/des.hpp"
#include "moesim/error.hpp"

namespace moesim {

void validate(const ClusterHardware& hw) {
  auto positive = [](double v, const char* name) {
    if (!(std::isfinite(v) && v > 0)) throw ParamError(name, std::string(name) + " must be a positive number");
  };
  auto non_negative = [](double v, const char* name) {
    if (!(std::isfinite(v) && v >= 0)) throw ParamError(name, std::string(name) + " must be ≥ 0");
  };
  if (hw.nodes < 1) throw ParamError("nodes", "nodes must be ≥ 1");
  if (hw.devices_per_node < 1 || hw.devices_per_node > kMaxDevicesPerNode)
    throw ParamError("devices_per_node", "devices_per_node must be in [1, " + std::to_string(kMaxDevicesPerNode) + "]");
  positive(hw.intra_bandwidth, "intra_bandwidth");
  positive(hw.inter_bandwidth, "inter_bandwidth");
  non_negative(hw.intra_latency, "intra_latency");
  non_negative(hw.inter_latency, "inter_latency");
  non_negative(hw.dispatch_bytes, "dispatch_bytes");
  non_negative(hw.combine_bytes, "combine_bytes");
  non_negative(hw.flops_per_token, "flops_per_token");
  non_negative(hw.expert_bytes, "expert_bytes");
  positive(hw.memory_bandwidth, "memory_bandwidth");
  non_negative(hw.dense_flops_per_token, "dense_flops_per_token");
  positive(hw.peak_flops, "peak_flops");
  if (!(hw.efficiency > 0 && hw.efficiency <= 1)) throw ParamError("efficiency", "efficiency must be in (0, 1]");
  if (hw.micro_batches < 1) throw ParamError("micro_batches", "micro_batches must be ≥ 1");
}

namespace {

enum Class { intra = 0, inter = 1 };
enum Phase { dispatch_phase = 0, combine_phase = 1 };

// A flow arrives once both its send and its receive group have drained, and
// both are sealed at the end of the instant that released it: so its arrival
// time is known then. Rather than one event per drained group and per flow,
// each waiter (a device's expert compute, its layer end, a relay's combine
// gather) counts down at the seal and gets one event at its last arrival;
// with forwarding, each flow to a relay also gets one (the relay fans out).
// That event lands in the instant the last per-flow arrival would have: the
// first instant at that time if it is later than the seal, else the instant
// right after the seal (where a zero-byte, zero-latency arrival would land);
// a countdown finished by a task ending now acts at once. So the schedule is
// unchanged: only which events carry the work differs.
struct Event {
  enum Kind : std::uint8_t {
    task_end,   // a: device; b: cell·2 + (1 if expert compute)
    ready,      // a: key(device, cell): expert input complete
    layer_end,  // a: key(device, cell): own compute and every combine flow home
    gathered,   // a: to_relay flow; b: cell: every combine contribution at the relay
    relayed,    // a: to_relay flow; b: cell: its dispatch reached the relay
  };
  int a;
  std::uint32_t b_kind;  // b · 8 + kind: 8 bytes in all, so a heap entry is 24
  Event() = default;
  Event(Kind kind, int a_, int b) : a(a_), b_kind(std::uint32_t(b) << 3 | kind) {}
  Kind kind() const { return Kind(b_kind & 7); }
  int b() const { return int(b_kind >> 3); }
};

// Countdowns: per waiter, the arrivals still awaited and the latest known
// one. A structure of arrays, so that a dense row's arrivals, which count
// down consecutive devices, are a loop that vectorises.
struct Countdowns {
  std::vector<int> left;
  std::vector<double> time;
  void resize(std::size_t n) {
    left.resize(n);
    time.resize(n);
  }
  void start(std::size_t i, int awaited) { left[i] = awaited, time[i] = 0; }
};

// FCFS ports (MODEL.md §6): flows released at one instant are collected into
// a port's open group, sealed once the instant's events are all handled.
// Structure of arrays, indexed by port_index: the receive ports of one class
// are contiguous by device, so that a dense row's walk over them vectorises.
struct Ports {
  std::vector<double> free_at;     // when the last sealed group drains
  std::vector<double> open_time;   // instant of the group being collected; −1: none
  std::vector<double> open_bytes;
  void reset(std::size_t n) {
    free_at.assign(n, 0.0);
    open_time.assign(n, -1.0);
    open_bytes.assign(n, 0.0);
  }
};

// What a flow's arrival acts on.
enum class Waiter : std::uint8_t {
  ready,   // target: key(device, cell), the device's expert input
  end,     // target: key(home, cell), the home's layer end
  gather,  // target: the to_relay flow whose combine gathers at the relay
  relay,   // target: the to_relay flow whose dispatch reached the relay
  row,     // a dense row (send_port: its sender, recv_port: its phase): one entry for all its flows
};

// A flow released in the current instant: its two ports and its waiter,
// 16 bytes built in registers (a struct filled field by field in memory and
// then copied stalled on store forwarding).
struct Released {
  int send_port, recv_port, target;
  std::uint32_t tag;  // cell · 8 + waiter
  static std::uint32_t tag_of(int cell, Waiter w) { return std::uint32_t(cell) << 3 | std::uint32_t(w); }
  int cell() const { return int(tag >> 3); }
  Waiter waiter() const { return Waiter(tag & 7); }
  // ready and relay wait for dispatch flows, end and gather for combine flows.
  int phase() const { return waiter() == Waiter::ready || waiter() == Waiter::relay ? 0 : 1; }
};

// A flow as a device's list releases it: from that device to `peer`. 16
// bytes: the expert lists hold one per flow.
struct Outgoing {
  double copies;
  int flow;
  std::uint32_t peer_ : 30, kind_ : 2;  // a device index fits: its four port indices are ints
  Outgoing() = default;
  Outgoing(double c, int f, int peer, TrafficFlow::Kind kind)
      : copies(c), flow(f), peer_(std::uint32_t(peer)), kind_(std::uint32_t(kind)) {}
  int peer() const { return int(peer_); }
  TrafficFlow::Kind kind() const { return TrafficFlow::Kind(kind_); }
};

// Positions [begin, end) in a per-flow list.
struct Range {
  int begin, end;
};

[[noreturn]] void bad_traffic(const char* what) { throw std::invalid_argument(std::string("simulate_step: ") + what); }
// A token count the model accepts: finite and ≥ 0.
bool count_ok(double v) { return std::isfinite(v) && v >= 0; }

// A compute task waiting for the unit: micro-batch b's next task.
struct Ready {
  double time = -1;  // −1: none
  int cell = 0;
  bool expert = false;
};

class StepModel {
 public:
  StepTiming run(const ClusterHardware& hw, const StepTraffic& t, bool dense_rows) {
    hw_ = &hw;
    t_ = &t;
    D_ = t.devices;
    m_ = t.micro_batches;
    cells_ = t.cells();
    prepare(dense_rows);
    // One cell has nothing to list ahead: the simulation needs it at once.
    if (flows() < kPrepareAheadFlows || cells_ < 2 || omp_in_parallel() || omp_get_max_threads() < 2) simulate();
    else simulate_with_helper();
    return metrics();
  }

 private:
  // A second thread prepares cells ahead of the simulation (prepare_ahead):
  // preparing is about a third of the sequential simulation's work, and
  // independent of it. Not inside another parallel region (a sweep's
  // configurations, one per core), nor when told to use one thread.
  void simulate_with_helper() {
    ensure_prepared(0);  // here, not waited for: the first cell is needed at once
    std::exception_ptr error;
#pragma omp parallel num_threads(2)
    {
      if (omp_get_thread_num() == 1) {
        prepare_ahead();
      } else {
        try {
          helper_ = omp_get_num_threads() == 2;  // else this thread prepares cells itself
          simulate();
        } catch (...) {  // an exception must not leave an OpenMP region
          error = std::current_exception();
          stop_helper_.store(true, std::memory_order_relaxed);
        }
      }
    }
    if (error) std::rethrow_exception(error);
  }

  int flows() const { return int(t_->flows.size()); }
  const TrafficFlow& flow(int i) const { return t_->flows[std::size_t(i)]; }
  // Cell-major, so a cell's per-device state is contiguous.
  int key(int device, int cell) const { return cell * D_ + device; }
  // Four ports per device: (class intra/inter) × (direction send 0 / receive
  // 1), in blocks of 2^port_shift_ ≥ D devices, one block per (direction, class).
  int port_index(int device, int cls, int dir) const { return ((dir * 2 + cls) << port_shift_) | device; }
  int port_class(int pi) const { return (pi >> port_shift_) & 1; }
  int cls(int a, int b) const { return node_[std::size_t(a)] == node_[std::size_t(b)] ? intra : inter; }
  double copy_bytes(int phase) const { return phase == dispatch_phase ? hw_->dispatch_bytes : hw_->combine_bytes; }
  double bandwidth(int c) const { return c == intra ? hw_->intra_bandwidth : hw_->inter_bandwidth; }
  double latency(int c) const { return c == intra ? hw_->intra_latency : hw_->inter_latency; }

  // Sizes every per-step buffer (capacity kept across calls). A cell's flow
  // lists are built when its first dense part ends (prepare_cell), so its
  // flows are read while they are hot rather than in passes over the step,
  // or by a helper thread ahead of the simulation.
  void prepare(bool dense_rows) {
    const int F = flows();
    q_.reset();
    port_shift_ = 0;
    while ((1 << port_shift_) < D_) ++port_shift_;
    ports_.reset(std::size_t(4) << port_shift_);
    rows_joined_ = false;
    node_.resize(std::size_t(D_));  // a table: a division per flow is dearer than the rest of its release
    for (int d = 0; d < D_; ++d) node_[std::size_t(d)] = hw_->node_of(d);
    parent_.resize(std::size_t(F));
    gather_.resize(std::size_t(F));
    ready_wait_.resize(std::size_t(D_) * cells_);  // filled per cell
    end_wait_.resize(std::size_t(D_) * cells_);
    times_.assign(std::size_t(D_) * cells_, CellTimes{});
    busy_.assign(std::size_t(D_) * 2, 0.0);  // dense, expert
    unit_busy_.assign(std::size_t(D_), 0);
    waking_.assign(std::size_t(D_), 0);
    wake_.clear();
    open_ports_.clear();
    released_.clear();
    ready_.assign(std::size_t(D_) * m_, Ready{});
    done_ = 0;
    prepared_.store(0, std::memory_order_relaxed);
    helper_ = false;
    helper_failed_.store(false, std::memory_order_relaxed);
    stop_helper_.store(false, std::memory_order_relaxed);
    helper_error_ = nullptr;
    first_release_[0] = first_release_[1] = -1;
    last_arrival_[0] = last_arrival_[1] = -1;
    bytes_[0][0] = bytes_[0][1] = bytes_[1][0] = bytes_[1][1] = 0;
    bytes_sent_.assign(std::size_t(D_), 0.0);
    bytes_received_.assign(std::size_t(D_), 0.0);
    // A cell's lists fit in its own flow range: each flow is in at most one of each.
    dense_range_.resize(std::size_t(D_) * cells_);
    expert_range_.resize(std::size_t(D_) * cells_);
    dense_list_.resize(std::size_t(F));
    expert_list_.resize(std::size_t(F));
    sends_.resize(std::size_t(D_));
    computes_.resize(std::size_t(D_));
    forwarded_.assign(std::size_t(cells_), 0);
    dense_.assign(std::size_t(cells_), 0);
    // Room for every cell's two tables, within kDenseRowBytes (compared per
    // cell, so that no product overflows); filled per dense cell.
    const std::size_t cell_doubles = 2 * std::size_t(D_) * std::size_t(D_);
    dense_allowed_ = dense_rows && D_ >= 2 && std::size_t(cells_) <= kDenseRowBytes / sizeof(double) / cell_doubles;
    if (dense_allowed_) {
      rows_.resize(std::size_t(cells_) * cell_doubles);
      row_sent_.resize(std::size_t(cells_) * 4 * D_);
      row_count_.resize(std::size_t(cells_) * 4 * D_);
    }
  }

  void simulate() {
    for (int d = 0; d < D_; ++d)
      for (int b = 0; b < m_; ++b) make_ready(d, b, false);
    end_of_instant();
    while (!q_.empty()) {
      // Every event of this instant first; then ports seal their groups and
      // free compute units choose (MODEL.md §6).
      const double now = q_.next_time();
      while (!q_.empty() && q_.next_time() == now) q_.step([this](Event& e) { handle(e); });
      end_of_instant();
    }
    if (done_ != D_ * m_) throw std::logic_error("simulate_step: the step did not end on every device");
  }

  // Cells are prepared in order, each before its first flow is released:
  // here, or by the helper thread (prepare_ahead), whom the simulation then
  // waits for. A cell's preparation writes only that cell's state, which the
  // simulation touches only once the cell is published as prepared.
  void ensure_prepared(int c) {
    if (!helper_) {
      for (int next = prepared_.load(std::memory_order_relaxed); next <= c; ++next) {
        prepare_cell(next);
        prepared_.store(next + 1, std::memory_order_relaxed);
      }
      return;
    }
    while (prepared_.load(std::memory_order_acquire) <= c) {
      // The helper stopped at a malformed cell: the error, when the
      // simulation reaches that cell, as without a helper.
      if (helper_failed_.load(std::memory_order_acquire)) std::rethrow_exception(helper_error_);
      std::this_thread::yield();  // the helper is mostly ahead: waits are short and rare
    }
  }

  void prepare_ahead() {
    try {
      for (int c = prepared_.load(std::memory_order_relaxed); c < cells_ && !stop_helper_.load(std::memory_order_relaxed);
           ++c) {
        prepare_cell(c);
        prepared_.store(c + 1, std::memory_order_release);
      }
    } catch (...) {
      helper_error_ = std::current_exception();
      helper_failed_.store(true, std::memory_order_release);
    }
  }

  // Checks cell c's flows (check_traffic checked the rest) and builds its
  // lists per device: flows released when the dense part ends, and flows
  // acted on when the expert compute ends.
  void prepare_cell(int c) {
    // Locals rather than members: the simulating thread keeps writing members
    // on the same cache lines (the queue, the released flows), and a store
    // through an int pointer would make the compiler reload an int member.
    const TrafficFlow* traffic = t_->flows.data();
    const int D = D_, begin = t_->flow_begin[c], end = t_->flow_begin[c + 1], base = key(0, c);
    if (dense_allowed_ && worth_tables(end - begin, D) && canonical_direct(traffic + begin, end - begin, D)) {
      fill_rows(c, traffic + begin, traffic + end);
      // Waits: own dense part (+ dispatch flows in) and own expert compute
      // (+ combine flows home), the flows counted per row by fill_rows.
      const double* sent = &row_count_[row_stat(c, dispatch_phase, 0)];  // per class: the flows each home sends
      const double* computed = &row_count_[row_stat(c, combine_phase, 0)];  // and each device computes
      for (int d = 0; d < D; ++d) {
        ready_wait_.start(std::size_t(base + d), 1 + int(computed[d] + computed[D + d]));
        end_wait_.start(std::size_t(base + d), 1 + int(sent[d] + sent[D + d]));
      }
      forwarded_[std::size_t(c)] = 0;
      dense_[std::size_t(c)] = 1;
      return;
    }
    int *sends = sends_.data(), *computes = computes_.data(), *parent = parent_.data();
    int* dense_list = dense_list_.data();
    Outgoing* expert_list = expert_list_.data();
    Range *dense_range = &dense_range_[std::size_t(base)], *expert_range = &expert_range_[std::size_t(base)];
    bool forwarded = false;
    std::fill_n(sends, D, 0);
    std::fill_n(computes, D, 0);
    // Consecutive flows share their home: count its run in a register, not
    // with an increment through memory that waits for the previous one.
    int home = -1, run = 0;
    auto count_home = [&](int src) {
      if (src != home) {
        if (home >= 0) sends[home] += run;
        home = src, run = 0;
      }
      ++run;
    };
    for (int i = begin; i < end; ++i) {
      const TrafficFlow& f = traffic[i];
      check_flow(f, D);
      if (f.kind == TrafficFlow::fan_out) bad_traffic("a fan_out flow does not follow its to_relay flow");
      if (f.kind == TrafficFlow::to_relay) {
        if (i + f.children >= end) bad_traffic("a to_relay flow's children leave its cell");
        if (f.children == 0 && !f.relay_processes) bad_traffic("a to_relay flow serves nobody");
        for (int j = i + 1; j <= i + f.children; ++j) {
          const TrafficFlow& g = traffic[j];
          if (g.kind != TrafficFlow::fan_out || g.src != f.dst) bad_traffic("a fan_out flow does not leave its relay");
          check_flow(g, D);
          parent[j] = i;
          ++computes[g.dst];  // a fan-out: the relay sends it, its destination computes
        }
        gather_.start(std::size_t(i), f.children + (f.relay_processes ? 1 : 0));
        count_home(f.src);
        // The relay's compute matters to a to_relay flow only if it processes one of its tokens.
        if (f.relay_processes) ++computes[f.dst];
        forwarded = true;
        i += f.children;
        continue;
      }
      count_home(f.src);
      ++computes[f.dst];
    }
    if (home >= 0) sends[home] += run;
    // Waits: own dense part (+ dispatch flows in) and own expert compute (+ combine flows home).
    for (int d = 0, dense = begin, expert = begin; d < D; ++d) {
      ready_wait_.start(std::size_t(base + d), 1 + computes[d]);
      end_wait_.start(std::size_t(base + d), 1 + sends[d]);
      dense_range[d] = {dense, dense};
      expert_range[d] = {expert, expert};
      dense += sends[d], expert += computes[d];
    }
    forwarded_[std::size_t(c)] = forwarded;  // once: the simulating thread reads its neighbours
    // An expert list holds what its release reads: its flows lie scattered.
    home = -1;
    int at = 0;  // home's next position in the dense list, in a register for the same reason
    for (int i = begin; i < end; ++i) {
      const TrafficFlow& f = traffic[i];
      if (f.kind != TrafficFlow::fan_out) {
        if (f.src != home) {
          if (home >= 0) dense_range[home].end = at;
          home = f.src, at = dense_range[home].end;
        }
        dense_list[at++] = i;
      }
      if (f.kind != TrafficFlow::to_relay || f.relay_processes)
        expert_list[expert_range[f.dst].end++] = Outgoing(f.copies, i, f.src, f.kind);
    }
    if (home >= 0) dense_range[home].end = at;
  }

  // A dense cell (most device pairs exchange tokens, as in a decode step of
  // a large expert-parallel deployment) keeps its flows as two D × D tables
  // instead of lists: row d of the dispatch table holds what home d sends
  // to each device, row p of the combine table what device p sends back to
  // each home, −1 where no flow is. A release then walks a row in device
  // order with no per-flow record, and its arrivals are one entry
  // (Waiter::row). A canonical cell's lists hold the same flows in the same
  // order, so both give the same sums and schedule the same events in the
  // same order (tested against dense_rows = false).
  void fill_rows(int c, const TrafficFlow* first, const TrafficFlow* last) {
    const std::size_t DD = std::size_t(D_) * std::size_t(D_);
    double* dispatch = row_of(0, dispatch_phase, c);
    double* combine = row_of(0, combine_phase, c);
    std::fill_n(dispatch, 2 * DD, -1.0);  // the two tables are adjacent
    for (const TrafficFlow* f = first; f != last; ++f) {
      dispatch[std::size_t(f->src) * D_ + f->dst] = f->copies;
      combine[std::size_t(f->dst) * D_ + f->src] = f->copies;
    }
    for (int phase : {dispatch_phase, combine_phase}) sum_rows(c, phase);
  }
  // Each row's bytes per link class, summed in the row's device order as its
  // release would, so that the simulating thread only looks them up (this
  // runs ahead of it, on the helper thread when there is one). Row d of one
  // table is column d of the other: the sums of all rows advance together,
  // a column at a time, vectorised over the rows. A peer without a flow, or
  // of the other class, adds 0.0, which leaves a sum as it was.
  void sum_rows(int c, int phase) {
    const double unit = copy_bytes(phase);
    const std::size_t base = row_stat(c, phase, 0);
    std::fill_n(&row_sent_[base], 2 * D_, 0.0);
    std::fill_n(&row_count_[base], 2 * D_, 0.0);
    for (int p = 0; p < D_; ++p) {
      const double* column = row_of(p, 1 - phase, c);  // column[d]: row d's entry for peer p
      // Rows d of p's node reach p over NVLink, the others over IB.
      for_each_run(p, [&](int from, int to, int cls) {
        double* sum = &row_sent_[row_stat(c, phase, cls)];
        double* count = &row_count_[row_stat(c, phase, cls)];
        for (int d = from; d < to; ++d) {
          const bool has = column[d] >= 0;
          sum[d] += has ? column[d] * unit : 0.0;
          count[d] += has ? 1.0 : 0.0;
        }
      });
    }
  }
  // At least a quarter of the D·(D − 1) device pairs: a row walk then reads
  // at most four entries per flow. A round threshold, not a tuned one: the
  // decode benchmark's cells join nearly all pairs, a serving decode
  // iteration's a few.
  static bool worth_tables(int flows, int D) { return std::int64_t(flows) * 4 >= std::int64_t(D) * (D - 1); }
  // Whether the n flows at f are what a dense cell needs and the traffic
  // builder makes for one: direct, sorted by (home, destination) with no pair
  // twice, devices and counts valid. One pass without branches (it
  // vectorises); a cell that fails it is checked flow by flow, which names
  // the fault, and listed if it has none.
  static bool canonical_direct(const TrafficFlow* f, int n, int D) {
    int bad = 0;
    for (int i = 0; i < n; ++i)
      bad |= int(unsigned(f[i].src) >= unsigned(D)) | int(unsigned(f[i].dst) >= unsigned(D)) |
             int(f[i].src == f[i].dst) | int(f[i].copies < 0) | int(f[i].kind != TrafficFlow::direct);
    for (int i = 1; i < n; ++i)
      bad |= int(std::int64_t(f[i].src) * D + f[i].dst <= std::int64_t(f[i - 1].src) * D + f[i - 1].dst);
    return bad == 0;
  }
  // Where row_sent_ and row_count_ hold (cell, phase, class)'s D devices.
  std::size_t row_stat(int cell, int phase, int cls) const {
    return ((std::size_t(cell) * 2 + std::size_t(phase)) * 2 + std::size_t(cls)) * std::size_t(D_);
  }
  double* row_of(int device, int phase, int cell) {
    return rows_.data() + (std::size_t(cell) * 2 + phase) * D_ * D_ + std::size_t(device) * D_;
  }
  // Device d's node's devices: [first, first + devices_per_node).
  int node_first(int d) const { return node_[std::size_t(d)] * hw_->devices_per_node; }

  static void check_flow(const TrafficFlow& f, int D) {
    if (f.src < 0 || f.src >= D || f.dst < 0 || f.dst >= D || f.src == f.dst || f.copies < 0)
      bad_traffic("a flow has a bad device or count");
    if (unsigned(f.kind) > unsigned(TrafficFlow::fan_out)) bad_traffic("a flow has an unknown kind");
  }

  void handle(const Event& e) {
    switch (e.kind()) {
      case Event::task_end: task_end(e.a, e.b() / 2, e.b() % 2 == 1); break;
      case Event::ready: expert_ready(e.a % D_, e.a / D_); break;
      case Event::layer_end: layer_end(e.a % D_, e.a / D_); break;
      case Event::gathered: release_one(e.a, combine_phase, e.b()); break;
      case Event::relayed: {  // the relay fans the tokens out over NVLink
        const int first = e.a + 1;
        release<true>(flow(e.a).children, [&](int j) {
          const TrafficFlow& f = flow(first + j);
          return Outgoing(f.copies, first + j, f.dst, f.kind);
        }, flow(e.a).dst, dispatch_phase, e.b());
        break;
      }
    }
  }

  // Releases one flow (a fan-out, or a relay's combine back home).
  void release_one(int i, int phase, int cell) {
    const TrafficFlow& f = flow(i);
    const int self = phase == dispatch_phase ? f.src : f.dst, peer = phase == dispatch_phase ? f.dst : f.src;
    release(1, [&](int) { return Outgoing(f.copies, i, peer, f.kind); }, self, phase, cell);
  }

  // Releases n flows, out(0 .. n−1), from device `self` at this instant. The
  // receive side is per flow; the send side is one port per class, so its
  // bytes are summed here and joined once (no chain of dependent updates).
  // each_send: joined flow by flow instead, as releasing them one at a time
  // did (a relay's fan-out): the same additions in the same order.
  template <bool each_send = false, class Out>
  void release(int n, Out out, int self, int phase, int cell) {
    if (n == 0) return;
    note_release(phase, cell);
    const double unit = copy_bytes(phase);
    // Scalars, not arrays indexed by class: an array in memory would make
    // each flow wait for the previous flow's store.
    double sent_intra = 0, sent_inter = 0;
    bool any_intra = false, any_inter = false;
    for (int j = 0; j < n; ++j) {
      const Outgoing o = out(j);
      const int peer = o.peer();
      const int c = cls(self, peer);
      const double bytes = o.copies * unit;
      if (c == intra) sent_intra += bytes, any_intra = true;
      else sent_inter += bytes, any_inter = true;
      const int recv_port = port_index(peer, c, 1);
      join(recv_port, bytes);
      bytes_received_[peer] += bytes;
      const auto [waiter, target] = waiter_of(o, phase, cell);
      released_.push_back({port_index(self, c, 0), recv_port, target, Released::tag_of(cell, waiter)});
      if constexpr (each_send) send(self, c, phase, bytes);
    }
    if constexpr (each_send) return;
    send_groups(self, phase, {sent_intra, sent_inter}, {any_intra, any_inter});
  }

  // Cell 0's first release of a phase starts that phase's time (StepTiming::dispatch, combine).
  void note_release(int phase, int cell) {
    if (cell == 0 && first_release_[phase] < 0) first_release_[phase] = q_.now();
  }
  // A release's send side: one join per link class it used, of the bytes it summed in flow order.
  void send_groups(int self, int phase, const double (&sent)[2], const bool (&joined)[2]) {
    for (int c : {intra, inter})
      if (joined[c]) send(self, c, phase, sent[c]);
  }

  // Calls each(from, to, class) for device d's peers in device order, in
  // runs of one link class: other nodes' devices before d's node (IB), d's
  // node's (NVLink), those after (IB). A loop over one run has no class to
  // choose per device, so it vectorises.
  template <class Each>
  void for_each_run(int d, Each each) const {
    const int first = node_first(d), last = first + hw_->devices_per_node;
    each(0, first, inter);
    each(first, last, intra);
    each(last, D_, inter);
  }

  // release() for a dense cell's row: the same joins, sums and sends in the
  // same order, and one Released entry for all of the row's flows.
  void release_row(int self, int phase, int cell) {
    const std::size_t at[2] = {row_stat(cell, phase, intra) + std::size_t(self), row_stat(cell, phase, inter) + std::size_t(self)};
    const double sent[2] = {row_sent_[at[intra]], row_sent_[at[inter]]};
    const bool joined[2] = {row_count_[at[intra]] != 0.0, row_count_[at[inter]] != 0.0};
    if (!joined[intra] && !joined[inter]) return;
    join_row(row_of(self, phase, cell), self, copy_bytes(phase));
    note_release(phase, cell);
    released_.push_back({self, phase, 0, Released::tag_of(cell, Waiter::row)});
    send_groups(self, phase, sent, joined);
  }

  // The receive side of a row's release: for each peer p with a flow, join
  // p's receive port of the flow's class and count the bytes it receives.
  // Branch-free over every device of a run (a peer without a flow adds 0.0,
  // which leaves a sum unchanged), so that it vectorises; the ports it opens
  // are sealed by a scan (seal_receive_ports), not listed.
  void join_row(const double* row, int self, double unit) {
    const double now = q_.now();
    double* received = bytes_received_.data();
    for_each_run(self, [&](int from, int to, int c) {
      double* open_time = &ports_.open_time[std::size_t(port_index(0, c, 1))];
      double* open_bytes = &ports_.open_bytes[std::size_t(port_index(0, c, 1))];
      for (int p = from; p < to; ++p) {
        const bool has = row[p] >= 0;
        const double bytes = has ? row[p] * unit : 0.0;
        const bool opens = has && open_time[p] < 0;
        open_bytes[p] = (opens ? 0.0 : open_bytes[p]) + bytes;
        open_time[p] = opens ? now : open_time[p];
        received[p] += bytes;
      }
    });
    rows_joined_ = true;
  }

  // arrive() for each flow of a released row: branch-free over each run (a
  // peer without a flow keeps its countdown), so that it vectorises; then,
  // in device order as flow by flow, the countdowns this row finished, if
  // any, schedule their events.
  void arrive_row(int self, int phase, int cell) {
    const double* row = row_of(self, phase, cell);
    Countdowns& waits = phase == dispatch_phase ? ready_wait_ : end_wait_;
    int* left = &waits.left[std::size_t(key(0, cell))];
    double* time = &waits.time[std::size_t(key(0, cell))];
    int finished = 0;
    for_each_run(self, [&](int from, int to, int c) {
      const double sent_at = ports_.free_at[std::size_t(port_index(self, c, 0))], lat = latency(c);
      const double* free_at = &ports_.free_at[std::size_t(port_index(0, c, 1))];
      for (int p = from; p < to; ++p) {
        const bool has = row[p] >= 0;
        time[p] = has ? std::max(time[p], std::max(sent_at, free_at[p]) + lat) : time[p];
        finished += int(has && left[p] == 1);
        left[p] -= int(has);
      }
      if (cell == 0)  // StepTiming::dispatch and combine: the phase's last arrival in cell 0
        for (int p = from; p < to; ++p)
          if (row[p] >= 0) last_arrival_[phase] = std::max(last_arrival_[phase], std::max(sent_at, free_at[p]) + lat);
    });
    const Event::Kind kind = phase == dispatch_phase ? Event::ready : Event::layer_end;
    for (int p = 0; finished > 0; ++p)
      if (row[p] >= 0 && left[p] == 0) q_.schedule(time[p], {kind, key(p, cell), 0}), --finished;
  }

  void send(int self, int c, int phase, double bytes) {
    join(port_index(self, c, 0), bytes);
    bytes_[phase][c] += bytes;
    bytes_sent_[self] += bytes;
  }

  // Whom the flow's arrival serves (MODEL.md §6), and its target.
  std::pair<Waiter, int> waiter_of(const Outgoing& o, int phase, int cell) const {
    if (phase == dispatch_phase) {
      if (o.kind() == TrafficFlow::to_relay) return {Waiter::relay, o.flow};
      return {Waiter::ready, key(o.peer(), cell)};
    }
    if (o.kind() == TrafficFlow::fan_out) return {Waiter::gather, parent_[o.flow]};
    return {Waiter::end, key(o.peer(), cell)};
  }

  void join(int pi, double bytes) {
    const std::size_t i = std::size_t(pi);
    if (ports_.open_time[i] < 0) {
      ports_.open_time[i] = q_.now();
      ports_.open_bytes[i] = 0;
      open_ports_.push_back(pi);
    }
    ports_.open_bytes[i] += bytes;
  }

  // When a group opened at open_time drains, queued behind the port's last group.
  static double drained(double open_time, double free_at, double bytes, double bandwidth) {
    return std::max(open_time, free_at) + bytes / bandwidth;
  }
  void seal(int pi) {
    const std::size_t i = std::size_t(pi);
    ports_.free_at[i] = drained(ports_.open_time[i], ports_.free_at[i], ports_.open_bytes[i], bandwidth(port_class(pi)));
    ports_.open_time[i] = -1;
  }

  // Seals every open receive port (after the listed ones, each sealed once):
  // dense rows open them without listing them (join_row).
  void seal_receive_ports() {
    for (int c : {intra, inter}) {
      const std::size_t base = std::size_t(port_index(0, c, 1));
      double* free_at = &ports_.free_at[base];
      double* open_time = &ports_.open_time[base];
      const double* open_bytes = &ports_.open_bytes[base];
      const double bw = bandwidth(c);
      for (int p = 0; p < D_; ++p) {
        const bool open = open_time[p] >= 0;
        free_at[p] = open ? drained(open_time[p], free_at[p], open_bytes[p], bw) : free_at[p];
        open_time[p] = -1;
      }
    }
    rows_joined_ = false;
  }

  // Both groups of a flow released this instant are sealed: it arrives one
  // latency after the later of them drains.
  void arrive(const Released& r) {
    if (r.waiter() == Waiter::row) return arrive_row(r.send_port, r.recv_port, r.cell());
    const double t = std::max(ports_.free_at[std::size_t(r.send_port)], ports_.free_at[std::size_t(r.recv_port)]) +
                     latency(port_class(r.send_port));
    const int cell = r.cell();
    if (cell == 0) last_arrival_[r.phase()] = std::max(last_arrival_[r.phase()], t);
    switch (r.waiter()) {
      case Waiter::ready: count_down(ready_wait_, r.target, t, {Event::ready, r.target, 0}); break;
      case Waiter::end: count_down(end_wait_, r.target, t, {Event::layer_end, r.target, 0}); break;
      case Waiter::gather: count_down(gather_, r.target, t, {Event::gathered, r.target, cell}); break;
      case Waiter::relay: {
        q_.schedule(t, {Event::relayed, r.target, cell});
        const TrafficFlow& f = flow(r.target);
        const int k = key(f.dst, cell);
        if (f.relay_processes) count_down(ready_wait_, k, t, {Event::ready, k, 0});
        break;
      }
      case Waiter::row: break;  // arrive_row, above
    }
  }

  // One more awaited arrival at time t (≥ now). The last one schedules the
  // waiter's event at the latest time; from a task ending now at now itself
  // it acts at once, as the arrival handled in this instant did.
  bool count_down(Countdowns& w, int i, double t, Event e, bool in_instant = false) {
    double& time = w.time[std::size_t(i)];
    time = std::max(time, t);
    if (--w.left[std::size_t(i)] != 0) return false;
    if (in_instant && time == q_.now()) return true;
    q_.schedule(time, e);
    return false;
  }

  void expert_ready(int d, int c) {
    times_[key(d, c)].expert_ready = q_.now();
    make_ready(d, c, true);
  }

  void layer_end(int d, int c) {
    times_[key(d, c)].layer_end = q_.now();
    if (c + m_ < cells_) make_ready(d, c + m_, false);  // the next layer of the same micro-batch
    else ++done_;
  }

  void make_ready(int d, int cell, bool expert) {
    ready_[std::size_t(d) * m_ + cell % m_] = Ready{q_.now(), cell, expert};
    wake(d);
  }
  void wake(int d) {
    if (!waking_[d]) waking_[d] = 1, wake_.push_back(d);
  }

  void end_of_instant() {
    for (int pi : open_ports_) seal(pi);
    open_ports_.clear();
    if (rows_joined_) seal_receive_ports();
    for (const Released& r : released_) arrive(r);
    released_.clear();
    for (int d : wake_) {
      waking_[d] = 0;
      if (!unit_busy_[d]) start_next(d);
    }
    wake_.clear();
  }

  // First ready first; ties to the lower micro-batch, then the lower layer.
  void start_next(int d) {
    Ready* best = nullptr;
    for (int b = 0; b < m_; ++b) {
      Ready& r = ready_[std::size_t(d) * m_ + b];
      if (r.time >= 0 && (!best || r.time < best->time)) best = &r;  // b ascending: ties keep the lower
    }
    if (!best) return;
    const int c = best->cell;
    const bool expert = best->expert;
    best->time = -1;
    const double duration = expert ? expert_time(d, c) : dense_time(d, c);
    CellTimes& ct = times_[key(d, c)];
    (expert ? ct.expert_start : ct.dense_start) = q_.now();
    busy_[std::size_t(d) * 2 + expert] += duration;
    unit_busy_[d] = 1;
    q_.schedule(q_.now() + duration, {Event::task_end, d, c * 2 + (expert ? 1 : 0)});
  }

  void task_end(int d, int c, bool expert) {
    unit_busy_[d] = 0;
    wake(d);
    const int k = key(d, c);
    const double now = q_.now();
    if (!expert) {
      times_[k].dense_end = now;
      ensure_prepared(c);
      if (dense_[std::size_t(c)]) {
        release_row(d, dispatch_phase, c);
      } else {
        // Home-sent flows lie in flow order, so reading them is a sequential scan.
        const int* list = dense_list_.data() + dense_range_[std::size_t(k)].begin;
        release(dense_range_[std::size_t(k)].end - dense_range_[std::size_t(k)].begin, [&](int j) {
          const TrafficFlow& f = flow(list[j]);
          return Outgoing(f.copies, list[j], f.dst, f.kind);
        }, d, dispatch_phase, c);
      }
      if (count_down(ready_wait_, k, now, {Event::ready, k, 0}, true)) expert_ready(d, c);
      return;
    }
    times_[k].expert_end = now;
    if (dense_[std::size_t(c)]) {
      release_row(d, combine_phase, c);
      if (count_down(end_wait_, k, now, {Event::layer_end, k, 0}, true)) layer_end(d, c);
      return;
    }
    // Results go back to their homes; a relay's own part of a forwarded
    // combine counts towards that flow's gather instead.
    const Outgoing* first = expert_list_.data() + expert_range_[std::size_t(k)].begin;
    const Outgoing* last = expert_list_.data() + expert_range_[std::size_t(k)].end;
    if (!forwarded_[std::size_t(c)]) {  // every flow goes back at once: no scan for relays' gathers
      release(int(last - first), [&](int j) { return first[j]; }, d, combine_phase, c);
      if (count_down(end_wait_, k, now, {Event::layer_end, k, 0}, true)) layer_end(d, c);
      return;
    }
    for (const Outgoing* o = first; o != last;) {
      if (o->kind() == TrafficFlow::to_relay) {
        if (count_down(gather_, o->flow, now, {Event::gathered, o->flow, c}, true)) release_one(o->flow, combine_phase, c);
        ++o;
        continue;
      }
      const Outgoing* run = o;  // a run of flows that go back right away
      while (o != last && o->kind() != TrafficFlow::to_relay) ++o;
      release(int(o - run), [&](int j) { return run[j]; }, d, combine_phase, c);
    }
    if (count_down(end_wait_, k, now, {Event::layer_end, k, 0}, true)) layer_end(d, c);
  }

  double flops_time(double tokens, double flops) const { return tokens * flops / (hw_->peak_flops * hw_->efficiency); }
  // A slot with n > 0 tokens: compute-bound or bound by reading its weights.
  double expert_term(double n) const {
    return n > 0 ? std::max(flops_time(n, hw_->flops_per_token), hw_->expert_bytes / hw_->memory_bandwidth) : 0.0;
  }
  double dense_time(int d, int c) const {
    return flops_time(t_->home_tokens[std::size_t(c) * D_ + d], hw_->dense_flops_per_token);
  }
  double expert_time(int d, int c) const {
    const int spd = t_->slots_per_device[c];
    const double* n = &t_->slot_copies[std::size_t(t_->slot_begin[c]) + std::size_t(d) * spd];
    double sum = 0;
    for (int j = 0; j < spd; ++j) sum += expert_term(n[j]);
    return sum + t_->shared_experts * expert_term(t_->home_tokens[std::size_t(c) * D_ + d]);
  }

  StepTiming metrics() const {
    StepTiming r;
    r.busy.assign(std::size_t(D_), 0.0);
    double max_busy = 0, sum_busy = 0;
    for (int d = 0; d < D_; ++d) {
      r.busy[d] = busy_[std::size_t(d) * 2] + busy_[std::size_t(d) * 2 + 1];
      r.dense = std::max(r.dense, busy_[std::size_t(d) * 2]);
      r.compute = std::max(r.compute, busy_[std::size_t(d) * 2 + 1]);
      sum_busy += r.busy[d];
      if (r.busy[d] > max_busy) {  // strict: ties keep the lower index
        max_busy = r.busy[d];
        r.critical_device = d;
      }
    }
    r.idle_fraction = max_busy > 0 ? 1.0 - (sum_busy / D_) / max_busy : 0.0;
    const int layers = t_->layers;
    r.layer_time.assign(std::size_t(layers), 0.0);
    double before = 0;
    for (int l = 0; l < layers; ++l) {
      double end = before;  // layer ends are monotone per device, so the max is too
      for (int d = 0; d < D_; ++d)
        for (int b = 0; b < m_; ++b) end = std::max(end, times_[key(d, l * m_ + b)].layer_end);
      r.layer_time[l] = end - before;
      before = end;
    }
    r.step_time = before;
    r.dispatch = last_arrival_[0] >= 0 ? last_arrival_[0] - first_release_[0] : 0.0;
    r.combine = last_arrival_[1] >= 0 ? last_arrival_[1] - first_release_[1] : 0.0;
    r.bytes_dispatch_intra = bytes_[0][intra];
    r.bytes_dispatch_inter = bytes_[0][inter];
    r.bytes_combine_intra = bytes_[1][intra];
    r.bytes_combine_inter = bytes_[1][inter];
    r.bytes_intra = bytes_[0][intra] + bytes_[1][intra];
    r.bytes_inter = bytes_[0][inter] + bytes_[1][inter];
    r.bytes_sent = bytes_sent_;
    r.bytes_received = bytes_received_;
    r.events = q_.executed();
    r.dense_cells = int(std::count(dense_.begin(), dense_.end(), std::uint8_t(1)));
    r.timeline.resize(std::size_t(cells_));
    for (int c = 0; c < cells_; ++c) r.timeline[std::size_t(c)] = times_[std::size_t(key(r.critical_device, c))];
    return r;
  }

  const ClusterHardware* hw_ = nullptr;
  const StepTraffic* t_ = nullptr;
  int D_ = 0, m_ = 1, cells_ = 0, done_ = 0;
  // Cells prepared so far, in order (ensure_prepared); written by the helper
  // thread when helper_.
  std::atomic<int> prepared_{0};
  bool helper_ = false;
  std::atomic<bool> helper_failed_{false}, stop_helper_{false};
  std::exception_ptr helper_error_;  // why the helper stopped, once helper_failed_
  des::EventQueue<Event> q_;
  Ports ports_;
  int port_shift_ = 0;
  bool rows_joined_ = false;  // a dense row joined receive ports this instant (they are not in open_ports_)
  std::vector<Released> released_;  // flows released in the current instant
  std::vector<std::uint8_t> unit_busy_, waking_;
  std::vector<int> parent_;                          // per fan_out flow: its to_relay flow
  Countdowns gather_;                                // per to_relay flow: its combine gather at the relay
  Countdowns ready_wait_, end_wait_;                 // per (device, cell)
  std::vector<int> node_;  // per device
  std::vector<int> dense_list_, wake_, open_ports_;
  std::vector<int> sends_, computes_;  // per device, in the cell being prepared: flows it sends as home, flows it computes
  std::vector<Outgoing> expert_list_;              // per (device, cell), ranges given by expert_range_
  std::vector<std::uint8_t> forwarded_;            // per cell: 1 if it holds to_relay flows
  std::vector<std::uint8_t> dense_;                // per cell: 1 if its flows are in rows_ (fill_rows)
  std::vector<double> rows_;                       // per cell: its dispatch table, then its combine table
  // Per (cell, phase, class, device): the row's bytes of that class, and its
  // flows of that class (counted in doubles: one vector type in sum_rows).
  std::vector<double> row_sent_, row_count_;
  bool dense_allowed_ = false;  // this step's cells may be tables (prepare)
  std::vector<Range> dense_range_, expert_range_;  // per (device, cell): its part of the cell's flow range
  std::vector<CellTimes> times_;
  std::vector<double> busy_, bytes_sent_, bytes_received_;
  std::vector<Ready> ready_;
  double first_release_[2] = {-1, -1}, last_arrival_[2] = {-1, -1};
  double bytes_[2][2] = {};
};

// The step's shape and counts; each cell's flows are checked as it is
// prepared (StepModel::prepare_cell), before any of them is released.
void check_traffic(const ClusterHardware& hw, const StepTraffic& t) {
  if (t.devices != hw.devices())
    throw ParamError("devices", "the step has " + std::to_string(t.devices) + " devices but the cluster has nodes × devices_per_node = " +
                                    std::to_string(hw.devices()));
  const int D = t.devices;
  if (t.layers < 0 || t.micro_batches < 1) bad_traffic("layers must be ≥ 0 and micro_batches ≥ 1");
  // Events pack a cell in 28 bits and per-device state is indexed by int.
  const std::int64_t cells = std::int64_t(t.layers) * t.micro_batches;
  if (cells >= (std::int64_t(1) << 28) || D >= (1 << 29) || cells * D > std::numeric_limits<int>::max())
    bad_traffic("more cells or devices than the model indexes");
  const int C = int(cells);
  if (int(t.flow_begin.size()) != C + 1 || t.flow_begin.front() != 0 || t.flow_begin.back() != int(t.flows.size()) ||
      !std::is_sorted(t.flow_begin.begin(), t.flow_begin.end()))
    bad_traffic("flow_begin does not index the flows per cell");
  if (int(t.slot_begin.size()) != C || int(t.slots_per_device.size()) != C ||
      t.home_tokens.size() != std::size_t(C) * D)
    bad_traffic("per-cell arrays do not match layers × micro_batches");
  for (int c = 0; c < C; ++c)
    if (t.slots_per_device[c] < 0 || t.slot_begin[c] < 0 ||
        std::size_t(t.slot_begin[c]) + std::size_t(t.slots_per_device[c]) * D > t.slot_copies.size())
      bad_traffic("slot range out of bounds");
  if (!std::all_of(t.slot_copies.begin(), t.slot_copies.end(), count_ok) ||
      !std::all_of(t.home_tokens.begin(), t.home_tokens.end(), count_ok))
    bad_traffic("counts must be finite and ≥ 0");
}

}  // namespace

StepTiming simulate_step(const ClusterHardware& hw, const StepTraffic& traffic, bool dense_rows) {
  validate(hw);
  check_traffic(hw, traffic);
  thread_local StepModel model;  // buffers reused across steps
  return model.run(hw, traffic, dense_rows);
}

}  // namespace moesim
