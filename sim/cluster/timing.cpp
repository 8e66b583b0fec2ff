// The discrete-event model of one step's timing (MODEL.md §6; docs/timing.md).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

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
  if (hw.devices_per_node < 1) throw ParamError("devices_per_node", "devices_per_node must be ≥ 1");
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
  } kind;
  int a;
  int b;
};

// Arrivals still awaited and the latest known one.
struct Countdown {
  int left = 0;
  double time = 0;
};

// A FCFS port (MODEL.md §6): flows released at one instant are collected into
// the open group, sealed once the instant's events are all handled.
struct Port {
  double free_at = 0;     // when the last sealed group drains
  double open_time = -1;  // instant of the group being collected; −1: none
  double open_bytes = 0;
};

// What a flow's arrival acts on.
enum class Waiter : std::uint8_t {
  ready,   // target: key(device, cell), the device's expert input
  end,     // target: key(home, cell), the home's layer end
  gather,  // target: the to_relay flow whose combine gathers at the relay
  relay,   // target: the to_relay flow whose dispatch reached the relay
};

// A flow released in the current instant: its two ports and its waiter.
struct Released {
  int send_port, recv_port;
  int target, cell;
  Waiter waiter;
  std::uint8_t phase;
};

// A flow as a device's list releases it: from that device to `peer`.
struct Outgoing {
  double copies;
  int flow, peer;
  TrafficFlow::Kind kind;
};

// A compute task waiting for the unit: micro-batch b's next task.
struct Ready {
  double time = -1;  // −1: none
  int cell = 0;
  bool expert = false;
};

class StepModel {
 public:
  StepTiming run(const ClusterHardware& hw, const StepTraffic& t) {
    hw_ = &hw;
    t_ = &t;
    D_ = t.devices;
    m_ = t.micro_batches;
    cells_ = t.cells();
    prepare();
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
    return metrics();
  }

 private:
  int flows() const { return int(t_->flows.size()); }
  const TrafficFlow& flow(int i) const { return t_->flows[std::size_t(i)]; }
  int key(int device, int cell) const { return device * cells_ + cell; }
  // Four ports per device: (class intra/inter) × (direction send 0 / receive 1).
  static int port_index(int device, int cls, int dir) { return (device * 2 + cls) * 2 + dir; }
  static int port_class(int pi) { return (pi / 2) % 2; }
  int cls(int a, int b) const { return node_[std::size_t(a)] == node_[std::size_t(b)] ? intra : inter; }
  double copy_bytes(int phase) const { return phase == dispatch_phase ? hw_->dispatch_bytes : hw_->combine_bytes; }
  double bandwidth(int c) const { return c == intra ? hw_->intra_bandwidth : hw_->inter_bandwidth; }
  double latency(int c) const { return c == intra ? hw_->intra_latency : hw_->inter_latency; }

  // Sizes and fills every per-step buffer (capacity kept across calls).
  void prepare() {
    const int F = flows();
    q_.reset();
    ports_.assign(std::size_t(D_) * 4, Port{});
    node_.resize(std::size_t(D_));  // a table: a division per flow is dearer than the rest of its release
    for (int d = 0; d < D_; ++d) node_[std::size_t(d)] = hw_->node_of(d);
    parent_.resize(std::size_t(F));
    gather_.resize(std::size_t(F));
    ready_wait_.assign(std::size_t(D_) * cells_, Countdown{1, 0});  // own dense part
    end_wait_.assign(std::size_t(D_) * cells_, Countdown{1, 0});    // own expert compute
    times_.assign(std::size_t(D_) * cells_, CellTimes{});
    busy_.assign(std::size_t(D_) * 2, 0.0);  // dense, expert
    unit_busy_.assign(std::size_t(D_), 0);
    waking_.assign(std::size_t(D_), 0);
    wake_.clear();
    open_ports_.clear();
    released_.clear();
    ready_.assign(std::size_t(D_) * m_, Ready{});
    done_ = 0;
    first_release_[0] = first_release_[1] = -1;
    last_arrival_[0] = last_arrival_[1] = -1;
    bytes_[0][0] = bytes_[0][1] = bytes_[1][0] = bytes_[1][1] = 0;
    bytes_sent_.assign(std::size_t(D_), 0.0);
    bytes_received_.assign(std::size_t(D_), 0.0);
    // Lists per (device, cell): flows released when the dense part ends, and
    // flows acted on when the expert compute ends.
    dense_out_.assign(std::size_t(D_) * cells_ + 1, 0);
    expert_out_.assign(std::size_t(D_) * cells_ + 1, 0);
    for (int c = 0; c < cells_; ++c)
      for (int i = t_->flow_begin[c]; i < t_->flow_begin[c + 1]; ++i) {
        const TrafficFlow& f = flow(i);
        if (f.kind == TrafficFlow::to_relay) {
          for (int j = i + 1; j <= i + f.children; ++j) parent_[j] = i;
          gather_[i] = Countdown{f.children + (f.relay_processes ? 1 : 0), 0};
        }
        const bool home_sends = f.kind != TrafficFlow::fan_out;
        // The relay's compute matters to a to_relay flow only if it processes one of its tokens.
        const bool dst_computes = f.kind != TrafficFlow::to_relay || f.relay_processes;
        if (home_sends) ++dense_out_[key(f.src, c) + 1], ++end_wait_[key(f.src, c)].left;
        if (dst_computes) ++expert_out_[key(f.dst, c) + 1], ++ready_wait_[key(f.dst, c)].left;
      }
    for (std::size_t k = 1; k < dense_out_.size(); ++k) {
      dense_out_[k] += dense_out_[k - 1];
      expert_out_[k] += expert_out_[k - 1];
    }
    dense_list_.resize(std::size_t(dense_out_.back()));
    expert_list_.resize(std::size_t(expert_out_.back()));
    fill_.assign(dense_out_.begin(), dense_out_.end() - 1);
    fill2_.assign(expert_out_.begin(), expert_out_.end() - 1);
    // An expert list holds what its release reads: its flows lie scattered.
    for (int c = 0; c < cells_; ++c)
      for (int i = t_->flow_begin[c]; i < t_->flow_begin[c + 1]; ++i) {
        const TrafficFlow& f = flow(i);
        if (f.kind != TrafficFlow::fan_out) dense_list_[fill_[key(f.src, c)]++] = i;
        if (f.kind != TrafficFlow::to_relay || f.relay_processes)
          expert_list_[fill2_[key(f.dst, c)]++] = {f.copies, i, f.src, f.kind};
      }
  }

  void handle(const Event& e) {
    switch (e.kind) {
      case Event::task_end: task_end(e.a, e.b / 2, e.b % 2 == 1); break;
      case Event::ready: expert_ready(e.a / cells_, e.a % cells_); break;
      case Event::layer_end: layer_end(e.a / cells_, e.a % cells_); break;
      case Event::gathered: release_one(e.a, combine_phase, e.b); break;
      case Event::relayed:  // the relay fans the tokens out over NVLink
        for (int j = e.a + 1; j <= e.a + flow(e.a).children; ++j) release_one(j, dispatch_phase, e.b);
        break;
    }
  }

  // Releases one flow (a fan-out, or a relay's combine back home).
  void release_one(int i, int phase, int cell) {
    const TrafficFlow& f = flow(i);
    const int self = phase == dispatch_phase ? f.src : f.dst, peer = phase == dispatch_phase ? f.dst : f.src;
    release(1, [&](int) { return Outgoing{f.copies, i, peer, f.kind}; }, self, phase, cell);
  }

  // Releases n flows, out(0 .. n−1), from device `self` at this instant. The
  // receive side is per flow; the send side is one port per class, so its
  // bytes are summed here and joined once (no chain of dependent updates).
  template <class Out>
  void release(int n, Out out, int self, int phase, int cell) {
    if (n == 0) return;
    if (cell == 0 && first_release_[phase] < 0) first_release_[phase] = q_.now();
    const double unit = copy_bytes(phase);
    double sent[2] = {0, 0};
    int joined[2] = {0, 0};
    for (int j = 0; j < n; ++j) {
      const Outgoing o = out(j);
      const int c = cls(self, o.peer);
      const double bytes = o.copies * unit;
      sent[c] += bytes;
      ++joined[c];
      Released r{port_index(self, c, 0), port_index(o.peer, c, 1), 0, cell, Waiter::ready, std::uint8_t(phase)};
      set_waiter(r, o, phase);
      join(r.recv_port, bytes);
      bytes_received_[o.peer] += bytes;
      released_.push_back(r);
    }
    for (int c : {intra, inter}) {
      if (joined[c] == 0) continue;
      join(port_index(self, c, 0), sent[c]);
      bytes_[phase][c] += sent[c];
      bytes_sent_[self] += sent[c];
    }
  }

  // Whom the flow's arrival serves (MODEL.md §6).
  void set_waiter(Released& r, const Outgoing& o, int phase) const {
    if (phase == dispatch_phase) {
      if (o.kind == TrafficFlow::to_relay) r.waiter = Waiter::relay, r.target = o.flow;
      else r.waiter = Waiter::ready, r.target = key(o.peer, r.cell);
    } else if (o.kind == TrafficFlow::fan_out) {
      r.waiter = Waiter::gather, r.target = parent_[o.flow];
    } else {
      r.waiter = Waiter::end, r.target = key(o.peer, r.cell);
    }
  }

  void join(int pi, double bytes) {
    Port& p = ports_[pi];
    if (p.open_time < 0) {
      p.open_time = q_.now();
      p.open_bytes = 0;
      open_ports_.push_back(pi);
    }
    p.open_bytes += bytes;
  }

  void seal(int pi) {
    Port& p = ports_[pi];
    const double start = std::max(p.open_time, p.free_at);
    p.free_at = start + p.open_bytes / bandwidth(port_class(pi));
    p.open_time = -1;
  }

  // Both groups of a flow released this instant are sealed: it arrives one
  // latency after the later of them drains.
  void arrive(const Released& r) {
    const double t =
        std::max(ports_[r.send_port].free_at, ports_[r.recv_port].free_at) + latency(port_class(r.send_port));
    if (r.cell == 0) last_arrival_[r.phase] = std::max(last_arrival_[r.phase], t);
    switch (r.waiter) {
      case Waiter::ready: count_down(ready_wait_[r.target], t, {Event::ready, r.target, 0}); break;
      case Waiter::end: count_down(end_wait_[r.target], t, {Event::layer_end, r.target, 0}); break;
      case Waiter::gather: count_down(gather_[r.target], t, {Event::gathered, r.target, r.cell}); break;
      case Waiter::relay: {
        q_.schedule(t, {Event::relayed, r.target, r.cell});
        const TrafficFlow& f = flow(r.target);
        const int k = key(f.dst, r.cell);
        if (f.relay_processes) count_down(ready_wait_[k], t, {Event::ready, k, 0});
        break;
      }
    }
  }

  // One more awaited arrival at time t (≥ now). The last one schedules the
  // waiter's event at the latest time; from a task ending now at now itself
  // it acts at once, as the arrival handled in this instant did.
  bool count_down(Countdown& w, double t, Event e, bool in_instant = false) {
    w.time = std::max(w.time, t);
    if (--w.left != 0) return false;
    if (in_instant && w.time == q_.now()) return true;
    q_.schedule(w.time, e);
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
      // Home-sent flows lie in flow order, so reading them is a sequential scan.
      const int* list = dense_list_.data() + dense_out_[k];
      release(dense_out_[k + 1] - dense_out_[k], [&](int j) {
        const TrafficFlow& f = flow(list[j]);
        return Outgoing{f.copies, list[j], f.dst, f.kind};
      }, d, dispatch_phase, c);
      if (count_down(ready_wait_[k], now, {Event::ready, k, 0}, true)) expert_ready(d, c);
      return;
    }
    times_[k].expert_end = now;
    // Results go back to their homes; a relay's own part of a forwarded
    // combine counts towards that flow's gather instead.
    const Outgoing* first = expert_list_.data() + expert_out_[k];
    const Outgoing* last = expert_list_.data() + expert_out_[k + 1];
    for (const Outgoing* o = first; o != last;) {
      if (o->kind == TrafficFlow::to_relay) {
        if (count_down(gather_[o->flow], now, {Event::gathered, o->flow, c}, true)) release_one(o->flow, combine_phase, c);
        ++o;
        continue;
      }
      const Outgoing* run = o;  // a run of flows that go back right away
      while (o != last && o->kind != TrafficFlow::to_relay) ++o;
      release(int(o - run), [&](int j) { return run[j]; }, d, combine_phase, c);
    }
    if (count_down(end_wait_[k], now, {Event::layer_end, k, 0}, true)) layer_end(d, c);
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
    r.timeline.assign(times_.begin() + std::ptrdiff_t(key(r.critical_device, 0)),
                      times_.begin() + std::ptrdiff_t(key(r.critical_device, 0) + cells_));
    return r;
  }

  const ClusterHardware* hw_ = nullptr;
  const StepTraffic* t_ = nullptr;
  int D_ = 0, m_ = 1, cells_ = 0, done_ = 0;
  des::EventQueue<Event> q_;
  std::vector<Port> ports_;
  std::vector<Released> released_;  // flows released in the current instant
  std::vector<std::uint8_t> unit_busy_, waking_;
  std::vector<int> parent_;                          // per fan_out flow: its to_relay flow
  std::vector<Countdown> gather_;                    // per to_relay flow: its combine gather at the relay
  std::vector<Countdown> ready_wait_, end_wait_;     // per (device, cell)
  std::vector<int> node_;  // per device
  std::vector<int> dense_out_, expert_out_, dense_list_, fill_, fill2_, wake_, open_ports_;
  std::vector<Outgoing> expert_list_;  // per (device, cell), ranges given by expert_out_
  std::vector<CellTimes> times_;
  std::vector<double> busy_, bytes_sent_, bytes_received_;
  std::vector<Ready> ready_;
  double first_release_[2] = {-1, -1}, last_arrival_[2] = {-1, -1};
  double bytes_[2][2] = {};
};

void check_traffic(const ClusterHardware& hw, const StepTraffic& t) {
  if (t.devices != hw.devices())
    throw ParamError("devices", "the step has " + std::to_string(t.devices) + " devices but the cluster has nodes × devices_per_node = " +
                                    std::to_string(hw.devices()));
  auto bad = [](const char* what) { throw std::invalid_argument(std::string("simulate_step: ") + what); };
  const int D = t.devices, C = t.cells();
  if (t.layers < 0 || t.micro_batches < 1) bad("layers must be ≥ 0 and micro_batches ≥ 1");
  if (int(t.flow_begin.size()) != C + 1 || t.flow_begin.front() != 0 || t.flow_begin.back() != int(t.flows.size()) ||
      !std::is_sorted(t.flow_begin.begin(), t.flow_begin.end()))
    bad("flow_begin does not index the flows per cell");
  if (int(t.slot_begin.size()) != C || int(t.slots_per_device.size()) != C ||
      t.home_tokens.size() != std::size_t(C) * D)
    bad("per-cell arrays do not match layers × micro_batches");
  auto count_ok = [](double v) { return std::isfinite(v) && v >= 0; };
  for (int c = 0; c < C; ++c) {
    if (t.slots_per_device[c] < 0 || t.slot_begin[c] < 0 ||
        std::size_t(t.slot_begin[c]) + std::size_t(t.slots_per_device[c]) * D > t.slot_copies.size())
      bad("slot range out of bounds");
    for (int i = t.flow_begin[c]; i < t.flow_begin[c + 1]; ++i) {
      const TrafficFlow& f = t.flows[i];
      if (f.src < 0 || f.src >= D || f.dst < 0 || f.dst >= D || f.src == f.dst || !(count_ok(f.copies)))
        bad("a flow has a bad device or count");
      const bool is_parent = f.kind == TrafficFlow::to_relay;
      if (f.kind == TrafficFlow::fan_out) bad("a fan_out flow does not follow its to_relay flow");
      if (!is_parent) continue;
      if (f.children < 0 || i + f.children >= t.flow_begin[c + 1]) bad("a to_relay flow's children leave its cell");
      if (f.children == 0 && !f.relay_processes) bad("a to_relay flow serves nobody");
      for (int j = i + 1; j <= i + f.children; ++j)
        if (t.flows[j].kind != TrafficFlow::fan_out || t.flows[j].src != f.dst) bad("a fan_out flow does not leave its relay");
      i += f.children;
    }
  }
  if (!std::all_of(t.slot_copies.begin(), t.slot_copies.end(), count_ok) ||
      !std::all_of(t.home_tokens.begin(), t.home_tokens.end(), count_ok))
    bad("counts must be finite and ≥ 0");
}

}  // namespace

StepTiming simulate_step(const ClusterHardware& hw, const StepTraffic& traffic) {
  validate(hw);
  check_traffic(hw, traffic);
  thread_local StepModel model;  // buffers reused across steps
  return model.run(hw, traffic);
}

}  // namespace moesim
