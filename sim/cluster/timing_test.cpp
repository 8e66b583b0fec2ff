// Tests of the step timing model against hand-computed schedules (MODEL.md
// §6). Units are chosen so that a token copy is 1 byte and a token's expert
// compute 1 s, which makes every event time a small number checked exactly.
// Each example writes out its schedule so a reader can check it, and runs
// both ways the model can hold a cell's flows (timed, below).
#include <catch2/catch.hpp>

#include <numeric>

#include "../testing/fixtures.hpp"
#include "moesim/cluster.hpp"
#include "moesim/error.hpp"

using namespace moesim;

namespace {

ClusterHardware unit_hardware(int nodes, int per_node, double intra_bw, double inter_bw) {
  ClusterHardware hw;
  hw.nodes = nodes;
  hw.devices_per_node = per_node;
  hw.intra_bandwidth = intra_bw;
  hw.inter_bandwidth = inter_bw;
  hw.dispatch_bytes = 1;
  hw.combine_bytes = 1;
  hw.flops_per_token = 1;
  hw.expert_bytes = 0;  // no weight-read floor unless a test sets one
  hw.memory_bandwidth = 1;
  hw.peak_flops = 1;
  hw.efficiency = 1;
  return hw;
}

// One layer, one micro-batch, one slot per device with `compute` tokens.
StepTraffic one_cell(std::vector<TrafficFlow> flows, std::vector<double> compute) {
  StepTraffic t;
  t.devices = int(compute.size());
  t.layers = 1;
  t.flow_begin = {0, int(flows.size())};
  t.flows.assign(flows.begin(), flows.end());
  t.slot_begin = {0};
  t.slots_per_device = {1};
  t.slot_copies = std::move(compute);
  t.home_tokens.assign(std::size_t(t.devices), 0.0);
  return t;
}

TrafficFlow direct(int src, int dst, int copies) { return {src, dst, TrafficFlow::direct, false, 0, copies}; }

// The step simulated twice, from dense tables where a cell qualifies and
// with every cell listed (simulate_step's two paths), which must agree bit
// for bit: so every schedule worked out below checks both.
StepTiming timed(const ClusterHardware& hw, const StepTraffic& t) {
  const StepTiming listed = simulate_step(hw, t, false);
  const StepTiming tables = simulate_step(hw, t);
  CHECK(listed.dense_cells == 0);
  moesim::testing::check_same_timing(tables, listed);
  return tables;
}

}  // namespace

TEST_CASE("timing: two devices on one node, by hand", "[cluster][timing]") {
  // Device 0 sends 3 tokens to device 1, device 1 sends 1 to device 0;
  // device 0 computes 6 tokens, device 1 5. Bandwidth 1 B/s.
  // Dispatch (both released at 0): 0→1 (3 B) drains send(0) and recv(1) at
  //   3; 1→0 (1 B) arrives at 1.
  // Compute: device 0 ready at 1, 1→7; device 1 ready at 3, 3→8.
  // Combine: device 0 at 7 returns 1 B to device 1: 7→8. Device 1 at 8
  //   returns 3 B to device 0: 8→11. Step = 11.
  // dispatch_time = 3 − 0; combine_time = 11 − 7 (first combine release).
  const auto r = timed(unit_hardware(1, 2, 1, 1), one_cell({direct(0, 1, 3), direct(1, 0, 1)}, {6, 5}));
  CHECK(r.dense_cells == 1);  // both pairs: a table (timed also checks the lists)
  CHECK(r.step_time == 11);
  CHECK(r.dispatch == 3);
  CHECK(r.combine == 4);
  CHECK(r.compute == 6);
  CHECK(r.busy == std::vector<double>{6, 5});
  CHECK(r.critical_device == 0);
  CHECK(r.idle_fraction == Approx(1.0 / 12).epsilon(1e-15));  // 1 − 5.5/6
  CHECK(r.bytes_intra == 8);                                   // (3 + 1) each way
  CHECK(r.bytes_inter == 0);
  CHECK(r.layer_time == std::vector<double>{11});
  REQUIRE(r.timeline.size() == 1);
  CHECK(r.timeline[0].expert_ready == 1);
  CHECK(r.timeline[0].expert_end == 7);
  CHECK(r.timeline[0].layer_end == 11);
}

TEST_CASE("timing: link classes run concurrently, each at its own bandwidth", "[cluster][timing]") {
  // 2 nodes × 2 devices; NVLink 2 B/s, IB 1 B/s. Device 0 sends 4 B to device
  // 1 (same node: 4/2 = 2 s) and 3 B to device 2 (other node: 3/1 = 3 s).
  // Classes overlap, so dispatch ends at max(2, 3) = 3, not 2 + 3 = 5.
  // Compute: device 1 ready 2, busy 4 → 6; device 2 ready 3, busy 3 → 6.
  // Combine at 6: 1→0 4 B intra = 2 s → 8; 2→0 3 B inter = 3 s → 9.
  const auto r =
      timed(unit_hardware(2, 2, 2, 1), one_cell({direct(0, 1, 4), direct(0, 2, 3)}, {0, 4, 3, 0}));
  CHECK(r.dispatch == 3);
  CHECK(r.step_time == 9);
  CHECK(r.compute == 4);
  CHECK(r.combine == 3);  // 9 − 6
  CHECK(r.critical_device == 1);
  CHECK(r.idle_fraction == 1.0 - (7.0 / 4) / 4);  // 0.5625 exactly
  CHECK(r.bytes_intra == 8);
  CHECK(r.bytes_inter == 6);
  CHECK(r.bytes_dispatch_intra == 4);
  CHECK(r.bytes_combine_inter == 3);
}

TEST_CASE("timing: ports serve groups first-come-first-served", "[cluster][timing]") {
  // One node, 3 devices, 1 B/s. Device 0 sends 2 to device 1 and 2 to device
  // 2 at the same instant: one group of 4 B on send(0), so BOTH arrive at 4
  // (the group drains together), not at 2 and 4.
  // Device 1 busy 2 (4→6), device 2 busy 3 (4→7). Combine 1→0 released at 6:
  // recv(0) group 6→8. 2→0 released at 7 while that group drains: it waits
  // for it and forms its own group, 8→10 (it never joins the first one).
  const auto r =
      timed(unit_hardware(1, 3, 1, 1), one_cell({direct(0, 1, 2), direct(0, 2, 2)}, {0, 2, 3}));
  CHECK(r.dispatch == 4);
  CHECK(r.step_time == 10);
  CHECK(r.combine == 4);  // first release 6 → last arrival 10
  CHECK(r.critical_device == 2);
}

TEST_CASE("timing: a combine flow never joins a port's dispatch group", "[cluster][timing]") {
  // The bug of issue #14 in miniature, on one node of 3 devices at 1 B/s.
  // Dispatch at 0: 0→1 (1 B) arrives at 1; 2→0 (4 B) holds recv(0) 0→4.
  // Device 1 computes 1→2 and returns its result at 2 while recv(0) still
  // drains: the result waits, 4→5. Device 0 has its tokens at 4 (5 under the
  // old joined busy period), computes 4→8, returns 4 B to device 2 8→12.
  const auto r =
      timed(unit_hardware(1, 3, 1, 1), one_cell({direct(0, 1, 1), direct(2, 0, 4)}, {4, 1, 0}));
  REQUIRE(r.timeline.size() == 1);
  // dispatch_time, step, device 0's expert start and its layer end (own compute; the result came at 5).
  CHECK(std::vector<double>{r.dispatch, r.step_time, r.timeline[0].expert_start, r.timeline[0].layer_end} ==
        std::vector<double>{4, 12, 4, 8});  // joining gave 5, 13, 5, 9
  CHECK(r.critical_device == 0);
}

TEST_CASE("timing: a group ending exactly when new bytes arrive is over", "[cluster][timing]") {
  // One node, 4 devices, 1 B/s. Dispatch: 0→1 (1 B), 2→0 (1 B), 3→0 (1 B).
  // recv(0) holds one group of 2 B and drains at 2; device 1 has its token at
  // 1, computes 1 s and at exactly 2 returns it to device 0: a new group
  // 2→3. Device 0 computes 2 tokens 2→4, then returns 1 B each to devices 2
  // and 3 in one group on send(0): 4→6.
  const auto r = timed(unit_hardware(1, 4, 1, 1),
                               one_cell({direct(0, 1, 1), direct(2, 0, 1), direct(3, 0, 1)}, {2, 1, 0, 0}));
  CHECK(r.dispatch == 2);
  CHECK(r.step_time == 6);
  CHECK(r.combine == 4);  // released at 2, last arrival 6
  CHECK(r.idle_fraction == 1.0 - (3.0 / 4) / 2);
}

TEST_CASE("timing: per-flow latency of each class", "[cluster][timing]") {
  // 2 nodes × 2 devices, 1 B/s, latency intra 0.5 s, inter 0.25 s.
  // 0→1 (intra, 1 B): drains at 1, arrives 1.5; device 1 computes 1.5→2.5;
  //   the result drains 2.5→3.5 and arrives 4.
  // 0→2 (inter, 2 B): drains at 2, arrives 2.25; device 2 computes 2 tokens
  //   2.25→4.25; the result drains 4.25→6.25, arrives 6.5 = step.
  auto hw = unit_hardware(2, 2, 1, 1);
  hw.intra_latency = 0.5;
  hw.inter_latency = 0.25;
  const auto r = timed(hw, one_cell({direct(0, 1, 1), direct(0, 2, 2)}, {0, 1, 2, 0}));
  CHECK(r.dispatch == 2.25);
  CHECK(r.step_time == 6.5);
  CHECK(r.combine == 6.5 - 2.5);
}

TEST_CASE("timing: dispatch_time starts at the first flow, not at a dense part that sends nothing", "[cluster][timing]") {
  // One node, 2 devices, 1 B/s, dense part 1 s a home token. Device 0 has no
  // home tokens: its dense part ends at 0 and sends nothing. Device 1's two
  // tokens: dense 0→2, then 1 B to device 0, 2→3. Device 0 computes 3→4 and
  // returns 1 B, 4→5. dispatch_time = 3 − 2 (not 3 − 0); combine = 5 − 4.
  auto hw = unit_hardware(1, 2, 1, 1);
  hw.dense_flops_per_token = 1;
  StepTraffic t = one_cell({direct(1, 0, 1)}, {1, 0});
  t.home_tokens = {0, 2};
  const auto r = timed(hw, t);
  CHECK(r.dispatch == 1);
  CHECK(r.combine == 1);
  CHECK(r.step_time == 5);
}

TEST_CASE("timing: weight-read floor and shared experts", "[cluster][timing]") {
  // One device, 3 slots with 3, 0 and 8 tokens, one shared expert, 2 home
  // tokens. Reading an expert's weights takes expert_bytes/memory_bandwidth =
  // 10/2 = 5 s. Slots: max(3, 5) = 5, nothing for the empty slot, max(8, 5)
  // = 8; the shared expert: max(2, 5) = 5. Compute = 18 s.
  auto hw = unit_hardware(1, 1, 1, 1);
  hw.expert_bytes = 10;
  hw.memory_bandwidth = 2;
  StepTraffic t = one_cell({}, {3, 0, 8});
  t.devices = 1;
  t.slots_per_device = {3};
  t.shared_experts = 1;
  t.home_tokens = {2};
  const auto r = timed(hw, t);
  CHECK(r.compute == 18);
  CHECK(r.step_time == 18);
  CHECK(r.dispatch == 0);
  // Without the floor: 3 + 8 + 2 = 13.
  hw.expert_bytes = 0;
  CHECK(timed(hw, t).step_time == 13);
}

TEST_CASE("timing: forwarding through the relay", "[cluster][timing]") {
  // 2 nodes × 2 devices; NVLink 2 B/s, IB 1 B/s; dispatch 2 B, combine 4 B a
  // copy. One token homed on device 0 needs devices 2 and 3 (node 1); the
  // relay is device 2 (device 0's local index 0). 1 s of compute each.
  // Dispatch: 0→2 over IB, 2 B: 0→2. Fan-out 2→3 over NVLink, released when
  //   it arrives: 2 B at 2 B/s, 2→3. Device 2 computes 2→3, device 3 3→4.
  // Combine: 3→2 over NVLink, 4 B, 4→6; the relay's IB flow 2→0 waits for it
  //   and for its own compute (3): 4 B, 6→10. Step = 10.
  auto hw = unit_hardware(2, 2, 2, 1);
  hw.dispatch_bytes = 2;
  hw.combine_bytes = 4;
  const std::vector<TrafficFlow> forwarded = {{0, 2, TrafficFlow::to_relay, true, 1, 1},
                                              {2, 3, TrafficFlow::fan_out, false, 0, 1}};
  const auto r = timed(hw, one_cell(forwarded, {0, 0, 1, 1}));
  CHECK(r.dispatch == 3);
  CHECK(r.step_time == 10);
  CHECK(r.bytes_inter == 2 + 4);
  CHECK(r.bytes_intra == 2 + 4);
  // Sent directly, both copies cross IB in one group: 4 B, 0→4; both compute
  // 4→5; both results (8 B) in one group on recv(0): 5→13.
  const auto d = timed(hw, one_cell({direct(0, 2, 1), direct(0, 3, 1)}, {0, 0, 1, 1}));
  CHECK(d.dispatch == 4);
  CHECK(d.step_time == 13);
  CHECK(d.bytes_inter == 2 * (2 + 4));
  CHECK(d.bytes_intra == 0);
  SECTION("a relay that processes none of the tokens does not wait for them") {
    // Same, but only device 3 needs the token: the relay computes nothing,
    // device 3 gets it at 3 and computes 3→4; its result reaches the relay at
    // 6 and goes home 6→10, released by the gather alone.
    const std::vector<TrafficFlow> relay_idle = {{0, 2, TrafficFlow::to_relay, false, 1, 1},
                                                 {2, 3, TrafficFlow::fan_out, false, 0, 1}};
    const auto q = timed(hw, one_cell(relay_idle, {0, 0, 0, 1}));
    CHECK(q.step_time == 10);
    CHECK(q.busy == std::vector<double>{0, 0, 0, 1});
  }
}

TEST_CASE("timing: bytes sent equal bytes received, per class", "[cluster][timing]") {
  // 2 nodes × 3 devices, an irregular set of flows; 10 B dispatch, 3 B combine.
  const int D = 6;
  std::vector<TrafficFlow> flows;
  for (int s = 0; s < D; ++s)
    for (int d = 0; d < D; ++d)
      if (s != d && s != 4 && (s * 7 + d * 3) % 5 != 0) flows.push_back(direct(s, d, (s * 7 + d * 3) % 5));
  std::vector<double> compute(D, 0.0);
  for (const auto& f : flows) compute[f.dst] += f.copies;
  auto hw = unit_hardware(2, 3, 3, 1);
  hw.dispatch_bytes = 10;
  hw.combine_bytes = 3;
  const auto r = timed(hw, one_cell(flows, compute));
  double intra = 0, inter = 0;  // expected, from the flows directly
  for (const auto& f : flows) (f.src / 3 == f.dst / 3 ? intra : inter) += (10 + 3) * f.copies;
  CHECK(r.bytes_intra == intra);
  CHECK(r.bytes_inter == inter);
  const double out = std::accumulate(r.bytes_sent.begin(), r.bytes_sent.end(), 0.0);
  const double in = std::accumulate(r.bytes_received.begin(), r.bytes_received.end(), 0.0);
  CHECK(out == intra + inter);
  CHECK(in == intra + inter);
  for (int x = 0; x < D; ++x) {  // per device: dispatch out + combine out
    double sent = 0, received = 0;
    for (const auto& f : flows) {
      if (f.src == x) sent += 10 * f.copies, received += 3 * f.copies;
      if (f.dst == x) received += 10 * f.copies, sent += 3 * f.copies;
    }
    CHECK(r.bytes_sent[x] == sent);
    CHECK(r.bytes_received[x] == received);
  }
}

TEST_CASE("timing: nothing to do takes no time", "[cluster][timing]") {
  const auto r = timed(unit_hardware(1, 2, 1, 1), one_cell({}, {0, 0}));
  CHECK(r.step_time == 0);
  CHECK(r.idle_fraction == 0);
  CHECK(r.critical_device == 0);
}

TEST_CASE("timing: DeepSeek-V3 defaults", "[cluster][timing]") {
  ClusterHardware hw;
  CHECK(hw.devices() == 8);
  CHECK(hw.flops_per_token == 88080384.0);  // 3·2·7168·2048
  CHECK(hw.dispatch_bytes == 7168.0);
  CHECK(hw.combine_bytes == 14336.0);
  CHECK(hw.expert_bytes == 44040192.0);  // 3·7168·2048
  std::vector<double> compute(8, 0.0);
  compute[3] = 1000;  // compute-bound: 1000·88080384/(989.5e12·0.6) = 148 µs > 13.1 µs of weights
  const auto r = timed(hw, one_cell({}, compute));
  const double t = 1000 * 88080384.0 / (989.5e12 * 0.6);
  CHECK(r.step_time == Approx(t).epsilon(1e-15));
  CHECK(r.critical_device == 3);
  CHECK(r.idle_fraction == Approx(7.0 / 8).epsilon(1e-15));
  // One token sent to a device of the same node: 7168 B out, 14336 B back at
  // 160 GB/s; its expert is bound by reading 44040192 B at 3.35 TB/s.
  const auto m = timed(hw, one_cell({direct(0, 1, 1)}, {0, 1, 0, 0, 0, 0, 0, 0}));
  CHECK(m.dispatch == Approx(7168 / 160e9).epsilon(1e-15));
  CHECK(m.step_time == Approx(7168 / 160e9 + 44040192 / 3.35e12 + 14336 / 160e9).epsilon(1e-15));
}

TEST_CASE("timing: bad input is refused", "[cluster][timing]") {
  auto hw = unit_hardware(1, 2, 1, 1);
  CHECK_THROWS_AS(simulate_step(hw, one_cell({}, {0, 0, 0})), ParamError);
  StepTraffic t = one_cell({direct(0, 1, 1)}, {0, 0});
  t.flow_begin = {0, 0};
  CHECK_THROWS_AS(simulate_step(hw, t), std::invalid_argument);
  CHECK_THROWS_AS(simulate_step(hw, one_cell({direct(0, 1, -1)}, {0, 0})), std::invalid_argument);
  CHECK_THROWS_AS(simulate_step(hw, one_cell({direct(1, 1, 1)}, {0, 0})), std::invalid_argument);
  CHECK_THROWS_AS(simulate_step(hw, one_cell({{0, 1, TrafficFlow::fan_out, false, 0, 1}}, {0, 0})),
                  std::invalid_argument);
  CHECK_THROWS_WITH(simulate_step(hw, one_cell({{0, 1, TrafficFlow::Kind(5), 0, 1, false}}, {0, 0})),
                    Catch::Contains("unknown kind"));
  // Cells beyond what an event packs (2²⁸) are refused before anything is sized.
  StepTraffic huge = one_cell({}, {0, 0});
  huge.layers = 1 << 20;
  huge.micro_batches = 1 << 8;
  CHECK_THROWS_WITH(simulate_step(hw, huge), Catch::Contains("more cells or devices"));
  // A fan-out is checked like any flow: here it leaves the relay for a device that does not exist.
  auto fw = unit_hardware(2, 1, 1, 1);
  CHECK_THROWS_AS(simulate_step(fw, one_cell({{0, 1, TrafficFlow::to_relay, false, 1, 1},
                                              {1, 7, TrafficFlow::fan_out, false, 0, 1}}, {0, 0})),
                  std::invalid_argument);
  // Each cell's flows are checked as the simulation reaches the cell: a bad
  // flow in the second layer is refused as surely as one in the first.
  StepTraffic two = one_cell({direct(0, 1, 1), direct(0, 1, -1)}, {1, 1});
  two.layers = 2;
  two.flow_begin = {0, 1, 2};
  two.slot_begin = {0, 0};
  two.slots_per_device = {1, 1};
  two.home_tokens.assign(4, 0.0);
  CHECK_THROWS_AS(simulate_step(hw, two), std::invalid_argument);
  two.flows[1].copies = 1;  // the same step with a good second layer runs
  CHECK(timed(hw, two).layer_time.size() == 2);
  hw.efficiency = 1.5;
  try {
    simulate_step(hw, one_cell({}, {0, 0}));
    FAIL("expected ParamError");
  } catch (const ParamError& e) {
    CHECK(e.param() == "efficiency");
  }
  hw.efficiency = 1;
  hw.inter_bandwidth = 0;
  CHECK_THROWS_AS(validate(hw), ParamError);
  hw.inter_bandwidth = 1;
  hw.micro_batches = 0;
  CHECK_THROWS_AS(validate(hw), ParamError);
  hw.micro_batches = 1;
  hw.devices_per_node = kMaxDevicesPerNode + 1;  // a relay's fan-out count (16 bits) would wrap
  CHECK_THROWS_AS(validate(hw), ParamError);
  hw.devices_per_node = kMaxDevicesPerNode;
  CHECK_NOTHROW(validate(hw));
}
