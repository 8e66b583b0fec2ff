#pragma once
// Timing of one MoE step on a cluster (MODEL.md §6; the project's own
// description is docs/timing.md): per micro-batch and layer, dense part →
// dispatch → expert compute → combine, chained per device, on the
// discrete-event kernel of des.hpp.
//
// Resources: per device one compute unit (one task at a time, first ready
// first, ties to the lower micro-batch then layer) and per device and link
// class (intra-node NVLink, inter-node InfiniBand) a send and a receive port.
// A port serves flows first-come-first-served: the flows released on it at
// the same instant form one group that drains together, after the previous
// group; a later flow never joins a group in progress. A flow arrives its
// class's latency after both its send and its receive group have drained.
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace moesim {

// How many copies of a token cross a link (MODEL.md §6).
enum class DispatchMode {
  per_token,       // one copy per destination device (DeepEP)
  per_assignment,  // one copy per assignment (moesim before timing v2)
};

// Hardware and model constants of the timing model. (Named ClusterHardware,
// not ClusterSpec: scenario.hpp already defines moesim::ClusterSpec for the
// placement choice.) Defaults: DeepSeek-V3 on H800 (DeepSeek-V3 Technical
// Report, arXiv 2412.19437, "the report" below).
struct ClusterHardware {
  // The report §3.1: H800 nodes of 8 GPUs joined by NVLink/NVSwitch.
  int nodes = 1, devices_per_node = 8;
  // The report §3.2.2: "cross-node GPUs are fully interconnected with IB
  // (50 GB/s)" and "NVLink offers a bandwidth of 160 GB/s". Per device.
  double intra_bandwidth = 160e9;  // bytes/s, NVLink
  double inter_bandwidth = 50e9;   // bytes/s, InfiniBand
  // Seconds added to every flow of the class (MODEL.md §6); 0: bandwidth only.
  double intra_latency = 0, inter_latency = 0;
  // Bytes per token copy, hidden dimension 7168 (the report §4.2): dispatch
  // in FP8 (1 byte per element, §3.3.2), combine in BF16 (2 bytes).
  double dispatch_bytes = 7168;
  double combine_bytes = 7168.0 * 2;
  DispatchMode dispatch = DispatchMode::per_token;
  // DeepEP's normal kernels: one IB crossing per destination node, to the GPU
  // of that node with the sender's local index, then NVLink (MODEL.md §6).
  bool forwarding = false;
  // One routed expert's forward FLOPs per token. Experts are SwiGLU FFNs
  // (gate and up projections d→f, down projection f→d), i.e. 3 matrix
  // products of d·f multiply-adds, 2 FLOPs each: 3·2·d·f, with d = 7168 and
  // expert intermediate size f = 2048 (the report §4.2). Forward only: a
  // training step's backward is ≈ 2× forward (Kaplan et al. 2020, the
  // "6N" rule), which moesim does not model; scale this value to include it.
  double flops_per_token = 3.0 * 2 * 7168 * 2048;  // = 88,080,384
  // Weight-read floor: an expert with any token reads all its weights, 3·d·f
  // FP8 bytes = 44,040,192, at H800's HBM3 bandwidth (3.35 TB/s, NVIDIA H100
  // SXM datasheet; the H800 has the same memory).
  double expert_bytes = 3.0 * 7168 * 2048;
  double memory_bandwidth = 3.35e12;
  // Attention, norms and gate per token and layer, on the compute unit before
  // dispatch (0: not modelled).
  double dense_flops_per_token = 0;
  // H800 SXM has the H100 SXM's compute (it differs in NVLink/FP64):
  // NVIDIA H100 datasheet, BF16 Tensor Core 1,979 TFLOPS "with sparsity",
  // half of that dense.
  double peak_flops = 989.5e12;
  // Achieved fraction of peak for MoE grouped GEMMs: DeepGEMM's README
  // (deepseek-ai/DeepGEMM) reports 1,093-1,297 TFLOPS for V3-shaped
  // contiguous grouped GEMMs on H800 against a 1,979 TFLOPS FP8 dense peak,
  // i.e. 0.55-0.66; we take 0.6 and apply the same ratio to BF16.
  double efficiency = 0.6;
  // Sequences split into this many contiguous groups whose compute overlaps
  // the other's communication (DeepSeek's two-micro-batch overlap: 2).
  int micro_batches = 1;

  int devices() const { return nodes * devices_per_node; }
  int node_of(int device) const { return device / devices_per_node; }
};

// The most devices a node may have: a forwarded flow's fan-out (TrafficFlow::children) counts them in 16 bits.
constexpr int kMaxDevicesPerNode = 65536;

// Throws ParamError (param = the field name) when a value is unusable.
void validate(const ClusterHardware& hw);

// One aggregated flow of a (layer, micro-batch) cell: every token copy that
// moves from src to dst in dispatch; its combine runs dst → src with the same
// number of copies (results come back once per device that processed them).
// Trivial (no member defaults; brace-initialise it, e.g. TrafficFlow{}), so
// that the step's flow array grows without a serial zero-fill that its
// parallel fill then overwrites. 16 bytes: a decode step at DeepSeek's scale
// has a million flows, written by the builder and read by the model.
struct TrafficFlow {
  enum Kind : std::uint8_t {
    direct,    // home → processing device (any class without forwarding; NVLink with it)
    to_relay,  // forwarding: home → relay over IB; the next `children` flows are its fan-out
    fan_out,   // forwarding: relay → processing device over NVLink, after its to_relay flow arrives
  };
  std::int32_t src, dst;
  Kind kind;
  bool relay_processes;    // to_relay: the relay itself processes one of the tokens
  std::uint16_t children;  // to_relay: fan-out flows that follow it (< devices_per_node ≤ kMaxDevicesPerNode)
  std::int32_t copies;     // token copies (distinct tokens, or assignments with per_assignment), ≥ 0
};
static_assert(sizeof(TrafficFlow) == 16);

// A vector allocator whose resize() leaves new trivial elements unwritten
// (value-initialisation would zero them); what it holds is written before it is read.
template <class T>
struct UninitializedAllocator : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = UninitializedAllocator<U>;
  };
  UninitializedAllocator() = default;
  template <class U>
  UninitializedAllocator(const UninitializedAllocator<U>&) noexcept {}
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

// What one step asks of the cluster, per cell = (layer, micro-batch), cell
// index layer·micro_batches + micro_batch.
struct StepTraffic {
  int devices = 0, layers = 0, micro_batches = 1;
  int shared_experts = 0;
  // Flows of cell c are flows[flow_begin[c] .. flow_begin[c+1]).
  std::vector<TrafficFlow, UninitializedAllocator<TrafficFlow>> flows;
  std::vector<int> flow_begin;
  // Cell c's processed assignments per physical slot (the padded capacity
  // instead with padding): slot_copies[slot_begin[c] + slot], slots
  // device-major with slots_per_device[c] slots each.
  std::vector<double> slot_copies;
  std::vector<int> slot_begin, slots_per_device;
  // Cell c's tokens homed on device d: home_tokens[c·devices + d].
  std::vector<double> home_tokens;

  int cells() const { return layers * micro_batches; }
};

// When one device did what in one cell (seconds from the step's start).
struct CellTimes {
  double dense_start = 0, dense_end = 0;
  double expert_ready = 0;  // dense ended and every awaited dispatch flow arrived
  double expert_start = 0, expert_end = 0;
  double layer_end = 0;     // own compute ended and every combine flow home arrived
};

struct StepTiming {
  double step_time = 0;  // every device ended the last layer of every micro-batch
  // Layer 0, micro-batch 0 (MODEL.md §6): first dispatch release to last
  // dispatch arrival, and the same for combine (0 when nothing moves).
  double dispatch = 0, combine = 0;
  double compute = 0;  // busiest device's expert compute (routed + shared), all layers and micro-batches
  double dense = 0;    // busiest device's dense part, all layers and micro-batches
  // layers: the time from the end of layer l−1 (all devices, all micro-batches)
  // to the end of layer l; they sum to step_time.
  std::vector<double> layer_time;
  std::vector<double> busy;  // D: compute-unit seconds per device (dense + expert)
  int critical_device = 0;   // argmax busy, ties to the lower index
  double idle_fraction = 0;  // 1 − mean(busy)/max(busy), 0 if max is 0
  // Bytes moved, each flow counted once (not at both ends), per phase and class.
  double bytes_dispatch_intra = 0, bytes_dispatch_inter = 0, bytes_combine_intra = 0, bytes_combine_inter = 0;
  double bytes_intra = 0, bytes_inter = 0;  // dispatch + combine
  // D: bytes each device sent / received over links, dispatch plus combine.
  std::vector<double> bytes_sent, bytes_received;
  // The critical device's schedule, one entry per cell (what timing.png draws).
  std::vector<CellTimes> timeline;
  // Diagnostics for benchmarks and tests, not model outputs: the discrete
  // events the simulation executed, and the cells it read from dense tables.
  std::uint64_t events = 0;
  int dense_cells = 0;
};

// Runs the discrete-event model of one step (MODEL.md §6). Throws ParamError
// for a bad ClusterHardware or when traffic.devices ≠ hw.devices(), and
// std::invalid_argument for
// malformed traffic (sizes, negative or non-finite counts: a caller bug).
// Reuses per-thread buffers, so repeated calls do not allocate for the queue.
// A step of two or more cells and at least kPrepareAheadFlows flows, called
// outside any OpenMP parallel region with two or more threads allowed, runs
// on two threads: one simulates while the other checks and lists each cell's
// flows ahead of it. The result does not depend on it.
// A cell whose flows are sorted by (src, dst) and join at least a quarter of
// the device pairs (a decode step's, say) is simulated from dense D × D
// tables, if every cell's fit in kDenseRowBytes; dense_rows = false lists
// every cell's flows instead. The result does not depend on it either.
StepTiming simulate_step(const ClusterHardware& hw, const StepTraffic& traffic, bool dense_rows = true);
// Fewer flows are listed by the simulating thread itself: starting a second
// one (microseconds) would cost more than it saves.
constexpr int kPrepareAheadFlows = 16384;
// The most memory a step's dense tables take: 2 · cells · devices² doubles
// (58 layers on 144 devices: 19 MB).
constexpr std::size_t kDenseRowBytes = std::size_t(64) << 20;

}  // namespace moesim
