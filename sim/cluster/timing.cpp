// The discrete-event model of one step's timing (MODEL.md §6); the link
// model is described in moesim/cluster.hpp.
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
  non_negative(hw.hidden_bytes, "hidden_bytes");
  non_negative(hw.flops_per_token, "flops_per_token");
  positive(hw.peak_flops, "peak_flops");
  if (!(hw.efficiency > 0 && hw.efficiency <= 1)) throw ParamError("efficiency", "efficiency must be in (0, 1]");
}

namespace {

enum Class { intra = 0, inter = 1 };
enum Phase { dispatch_phase = 0, combine_phase = 1 };

struct Flow {
  int src, dst, cls, phase;
  double bytes;
  int ends_done = 0;  // ports (of 2) that have drained this flow
};

// A work-conserving fluid port (see cluster.hpp): busy_until is when the
// current busy period drains if nothing more arrives.
struct Port {
  double busy_until = 0;
  std::uint32_t generation = 0;  // bumps at each drain; stamps drain events
  bool drain_scheduled = false;
  std::vector<int> flows;  // flows of the current busy period
};

struct Event {
  enum Kind : std::uint8_t { gate, drain, compute_end } kind;
  int index;                // device or port
  std::uint32_t generation; // drain only
};

class StepModel {
 public:
  StepModel(const ClusterHardware& hw, const StepTraffic& t) : hw_(hw), t_(t), D_(t.devices) {
    ports_.resize(std::size_t(D_) * 4);
    out_dispatch_.resize(D_);
    out_combine_.resize(D_);
    waiting_.assign(D_, 1);  // the device's own gate
    compute_end_.assign(D_, 0.0);
    timing_.busy.assign(D_, 0.0);
    timing_.bytes_sent.assign(D_, 0.0);
    timing_.bytes_received.assign(D_, 0.0);
    for (int s = 0; s < D_; ++s)
      for (int d = 0; d < D_; ++d) {
        const double n = t.sent[std::size_t(s) * D_ + d];
        if (s == d || n == 0) continue;
        const int cls = hw.node_of(s) == hw.node_of(d) ? intra : inter;
        const double bytes = n * hw.hidden_bytes;
        out_dispatch_[s].push_back(int(flows_.size()));
        flows_.push_back({s, d, cls, dispatch_phase, bytes});
        ++waiting_[d];
        // Results travel back d → s, same class and size (MODEL.md §6 combine).
        out_combine_[d].push_back(int(flows_.size()));
        flows_.push_back({d, s, cls, combine_phase, bytes});
        (cls == intra ? timing_.bytes_intra : timing_.bytes_inter) += 2 * bytes;
      }
    // The barrier waits for every device's compute and every combine flow.
    outstanding_ = D_ + int(flows_.size() / 2);
    q_.reserve(flows_.size() + std::size_t(D_) * 6);
  }

  StepTiming run() {
    for (int d = 0; d < D_; ++d) q_.schedule(0.0, {Event::gate, d, 0});
    q_.run([this](Event& e) { handle(e); });
    if (outstanding_ != 0) throw std::logic_error("simulate_step: barrier not reached");
    finish_metrics();
    return timing_;
  }

 private:
  // Four ports per device: (class intra/inter) × (direction send 0 / receive 1).
  int port_index(int device, int cls, int dir) const { return (device * 2 + cls) * 2 + dir; }
  double bandwidth(int cls) const { return cls == intra ? hw_.intra_bandwidth : hw_.inter_bandwidth; }

  void handle(const Event& e) {
    switch (e.kind) {
      case Event::gate:  // gating is instantaneous; the device's tokens leave now
        for (int f : out_dispatch_[e.index]) release(f);
        arrived_at(e.index);
        break;
      case Event::drain: {
        const Port& p = ports_[e.index];
        if (e.generation != p.generation) break;  // that period was drained early
        if (p.busy_until > q_.now()) {            // extended since scheduling: wait
          q_.schedule(p.busy_until, e);
          break;
        }
        drain(e.index);
        break;
      }
      case Event::compute_end:
        compute_end_[e.index] = q_.now();
        for (int f : out_combine_[e.index]) release(f);
        count_down();
        break;
    }
  }

  // A flow loads its sender's send port and its receiver's receive port.
  void release(int f) {
    const Flow& fl = flows_[f];
    const double dt = fl.bytes / bandwidth(fl.cls);
    enqueue(port_index(fl.src, fl.cls, 0), f, dt);
    enqueue(port_index(fl.dst, fl.cls, 1), f, dt);
  }

  void enqueue(int pi, int f, double dt) {
    Port& p = ports_[pi];
    const double now = q_.now();
    // A period ending exactly now is over: a new arrival starts a new one
    // rather than holding the finished flows back.
    if (!p.flows.empty() && p.busy_until <= now) drain(pi);
    p.busy_until = std::max(p.busy_until, now) + dt;
    p.flows.push_back(f);
    if (!p.drain_scheduled) {
      q_.schedule(p.busy_until, {Event::drain, pi, p.generation});
      p.drain_scheduled = true;
    }
  }

  // The port's busy period is over: its flows have left (send port) or
  // arrived (receive port). Bytes are counted here, where they were moved.
  void drain(int pi) {
    Port& p = ports_[pi];
    const int device = pi / 4;
    const bool receive = pi % 2 == 1;
    ++p.generation;
    p.drain_scheduled = false;
    // flow_done only schedules events, never releases flows, so p.flows is
    // stable during the loop.
    for (int f : p.flows) {
      (receive ? timing_.bytes_received : timing_.bytes_sent)[device] += flows_[f].bytes;
      if (++flows_[f].ends_done == 2) flow_done(f);
    }
    p.flows.clear();
  }

  void flow_done(int f) {
    const Flow& fl = flows_[f];
    if (fl.phase == dispatch_phase) {
      timing_.dispatch = std::max(timing_.dispatch, q_.now());
      arrived_at(fl.dst);
    } else {
      count_down();
    }
  }

  // One more input of device d is present; with all of them, compute starts.
  void arrived_at(int d) {
    if (--waiting_[d] != 0) return;
    // compute = assignments · flops_per_token / (peak · efficiency) (MODEL.md §6)
    const double busy = t_.compute[d] * hw_.flops_per_token / (hw_.peak_flops * hw_.efficiency);
    timing_.busy[d] = busy;
    q_.schedule(q_.now() + busy, {Event::compute_end, d, 0});
  }

  void count_down() {
    if (--outstanding_ == 0) timing_.step_time = q_.now();
  }

  void finish_metrics() {
    StepTiming& r = timing_;
    double max_busy = 0, sum_busy = 0;
    for (int d = 0; d < D_; ++d) {
      sum_busy += r.busy[d];
      if (r.busy[d] > max_busy) {  // strict: ties keep the lower index
        max_busy = r.busy[d];
        r.critical_device = d;
      }
    }
    r.compute = max_busy;
    r.idle_fraction = max_busy > 0 ? 1.0 - (sum_busy / D_) / max_busy : 0.0;
    const double last_compute = *std::max_element(compute_end_.begin(), compute_end_.end());
    r.combine = r.step_time - last_compute;
  }

  const ClusterHardware& hw_;
  const StepTraffic& t_;
  const int D_;
  des::EventQueue<Event> q_;
  std::vector<Port> ports_;
  std::vector<Flow> flows_;
  std::vector<std::vector<int>> out_dispatch_, out_combine_;  // flow ids per sender
  std::vector<int> waiting_;
  std::vector<double> compute_end_;
  int outstanding_ = 0;
  StepTiming timing_;
};

void check_traffic(const ClusterHardware& hw, const StepTraffic& t) {
  if (t.devices != hw.devices())
    throw ParamError("devices", "the step has " + std::to_string(t.devices) + " devices but the cluster has nodes × devices_per_node = " +
                                    std::to_string(hw.devices()));
  const std::size_t D = std::size_t(t.devices);
  if (t.sent.size() != D * D || t.compute.size() != D)
    throw std::invalid_argument("simulate_step: traffic arrays do not match the device count");
  auto ok = [](double v) { return std::isfinite(v) && v >= 0; };
  if (!std::all_of(t.sent.begin(), t.sent.end(), ok) || !std::all_of(t.compute.begin(), t.compute.end(), ok))
    throw std::invalid_argument("simulate_step: traffic counts must be finite and ≥ 0");
}

}  // namespace

StepTiming simulate_step(const ClusterHardware& hw, const StepTraffic& traffic) {
  validate(hw);
  check_traffic(hw, traffic);
  return StepModel(hw, traffic).run();
}

}  // namespace moesim
