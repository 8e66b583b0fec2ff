#pragma once
// Timing of one MoE step on a cluster (MODEL.md §6): gate → dispatch
// all-to-all → expert compute → combine all-to-all → barrier, run on the
// discrete-event kernel of des.hpp.
//
// Link model (the README paragraph, kept here next to the code):
//  Every device has, per link class (intra-node NVLink, inter-node
//  InfiniBand), a send port and a receive port, each moving bytes at that
//  class's per-device bandwidth. The two classes are separate hardware and run
//  concurrently, so a device's transfer time is the max over classes, never
//  the sum. A transfer (all assignments from one device to another in one
//  phase) loads the sender's send port and the receiver's receive port of its
//  class. A port is a work-conserving fluid server: bytes released to it
//  while it is busy extend its busy period; all transfers in one busy period
//  complete together when the port drains (the flows share the port and are
//  modelled as finishing together, the order-free reading of "a device's send
//  and receive each take bytes/bandwidth summed per link class"). A transfer
//  has arrived when both of its ports have drained it. In dispatch, where every
//  transfer starts at once, this gives exactly: transfer s→d of class c
//  arrives at max(send_c(s), recv_c(d)) / bandwidth_c. In combine, transfers
//  start when their sender's compute ends, so a receive port can see
//  staggered busy periods; a transfer released while an earlier period is
//  still draining joins it and finishes with it (conservative: a fair-share
//  port would finish the earlier flow sooner).
//
// Simplifications, stated so no one mistakes them for findings: the gate is
// instantaneous at t = 0; no latency term; cross-node tokens go straight over
// InfiniBand (DeepSeek-V3 actually sends each token over IB once to the
// same-index GPU of the target node and forwards it over NVLink, §3.2.2);
// dispatch and combine both carry hidden_bytes per assignment (V3 dispatches in
// FP8 and combines in BF16, §3.3.2; set hidden_bytes for the side you study).
#include <vector>

namespace moesim {

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
  // The report §4.2: hidden dimension 7168; 2 bytes per element in BF16.
  double hidden_bytes = 7168.0 * 2;
  // One routed expert's forward FLOPs per token. Experts are SwiGLU FFNs
  // (gate and up projections d→f, down projection f→d), i.e. 3 matrix
  // products of d·f multiply-adds, 2 FLOPs each: 3·2·d·f, with d = 7168 and
  // expert intermediate size f = 2048 (the report §4.2). Forward only: a
  // training step's backward is ≈ 2× forward (Kaplan et al. 2020, the
  // "6N" rule), which moesim does not model; scale this value to include it.
  double flops_per_token = 3.0 * 2 * 7168 * 2048;  // = 88,080,384
  // H800 SXM has the H100 SXM's compute (it differs in NVLink/FP64):
  // NVIDIA H100 datasheet, BF16 Tensor Core 1,979 TFLOPS "with sparsity",
  // half of that dense.
  double peak_flops = 989.5e12;
  // Achieved fraction of peak for MoE grouped GEMMs: DeepGEMM's README
  // (deepseek-ai/DeepGEMM) reports 1,093-1,297 TFLOPS for V3-shaped
  // contiguous grouped GEMMs on H800 against a 1,979 TFLOPS FP8 dense peak,
  // i.e. 0.55-0.66; we take 0.6 and apply the same ratio to BF16.
  double efficiency = 0.6;

  int devices() const { return nodes * devices_per_node; }
  int node_of(int device) const { return device / devices_per_node; }
};

// Throws ParamError (param = the field name) when a value is unusable.
void validate(const ClusterHardware& hw);

// What one step asks of the cluster.
struct StepTraffic {
  int devices = 0;              // D
  // D×D row-major: assignments whose token starts on device src (row) and whose
  // expert replica is on device dst (column). The diagonal moves no bytes.
  std::vector<double> sent;
  // D: assignments computed on each device (routed, after drops) + shared-expert tokens.
  std::vector<double> compute;
};

struct StepTiming {
  double step_time = 0;  // the barrier: every device computed, every result back
  double dispatch = 0;   // time of the last dispatch arrival (0 when nothing moves)
  double compute = 0;    // max over devices of busy (the critical device's compute)
  double combine = 0;    // exposed combine: step_time − last compute end
  // (dispatch + compute + combine ≥ step_time; equal when the device that
  // receives its dispatch last is also the critical one.)
  std::vector<double> busy;  // D: compute seconds per device
  int critical_device = 0;   // argmax busy, ties to the lower index
  double idle_fraction = 0;  // 1 − mean(busy)/max(busy), 0 if max is 0
  // Bytes moved, dispatch plus combine, each transfer counted once (not at
  // both ends): a balanced dispatch of X bytes gives 2X in total.
  double bytes_intra = 0, bytes_inter = 0;
  // D: bytes each device sent / received over links, dispatch plus combine.
  std::vector<double> bytes_sent, bytes_received;
};

// Runs the discrete-event model of one step (MODEL.md §6). Throws ParamError
// for a bad ClusterHardware or when traffic.devices ≠ hw.devices(), and
// std::invalid_argument for malformed traffic (sizes, negative or non-finite
// counts: a caller bug).
StepTiming simulate_step(const ClusterHardware& hw, const StepTraffic& traffic);

}  // namespace moesim
