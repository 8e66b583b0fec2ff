// Tests of the step timing model against hand-computed schedules. Units are
// chosen so that one assignment is 1 byte and 1 FLOP·s at rate 1, which makes
// every event time a small integer that can be checked exactly.
#include <catch2/catch.hpp>

#include <numeric>

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
  hw.hidden_bytes = 1;
  hw.flops_per_token = 1;
  hw.peak_flops = 1;
  hw.efficiency = 1;
  return hw;
}

StepTraffic traffic(int D, std::vector<double> sent, std::vector<double> compute) {
  return StepTraffic{D, std::move(sent), std::move(compute)};
}

}  // namespace

TEST_CASE("timing: two devices on one node, by hand", "[cluster][timing]") {
  // sent = [[5, 3], [1, 2]]: device 0 keeps 5, sends 3 to 1; device 1 sends
  // 1 to 0 and keeps 2. compute = column sums [6, 5]. Bandwidth 1 B/s.
  // Dispatch (all start at 0): flow 0→1 (3 B) needs send(0)=3 and recv(1)=3,
  //   arrives at 3; flow 1→0 (1 B): send(1)=1, recv(0)=1, arrives at 1.
  // Compute: device 0 ready at 1, busy 6, ends 7; device 1 ready at 3, busy
  //   5, ends 8.
  // Combine: device 0 at 7 returns 1 B to device 1: ports idle since 3, so
  //   done at 8. Device 1 at 8 returns 3 B to device 0: done at 11.
  // Barrier = 11; exposed combine = 11 − 8 = 3.
  const auto r = simulate_step(unit_hardware(1, 2, 1, 1), traffic(2, {5, 3, 1, 2}, {6, 5}));
  CHECK(r.step_time == 11);
  CHECK(r.dispatch == 3);
  CHECK(r.compute == 6);
  CHECK(r.combine == 3);
  CHECK(r.busy == std::vector<double>{6, 5});
  CHECK(r.critical_device == 0);
  CHECK(r.idle_fraction == Approx(1.0 / 12).epsilon(1e-15));  // 1 − 5.5/6
  CHECK(r.bytes_intra == 8);                                   // (3 + 1) each way
  CHECK(r.bytes_inter == 0);
}

TEST_CASE("timing: link classes run concurrently, each at its own bandwidth", "[cluster][timing]") {
  // 2 nodes × 2 devices; NVLink 2 B/s, IB 1 B/s. Device 0 sends 4 B to device
  // 1 (same node: 4/2 = 2 s) and 3 B to device 2 (other node: 3/1 = 3 s).
  // Classes overlap, so dispatch ends at max(2, 3) = 3, not 2 + 3 = 5.
  // Compute: device 1 ready 2, busy 4 → 6; device 2 ready 3, busy 3 → 6;
  //   devices 0 and 3 have nothing (end at 0).
  // Combine at 6: 1→0 4 B intra = 2 s → 8; 2→0 3 B inter = 3 s → 9.
  std::vector<double> sent(16, 0.0);
  sent[0 * 4 + 1] = 4;
  sent[0 * 4 + 2] = 3;
  const auto r = simulate_step(unit_hardware(2, 2, 2, 1), traffic(4, sent, {0, 4, 3, 0}));
  CHECK(r.dispatch == 3);
  CHECK(r.step_time == 9);
  CHECK(r.compute == 4);
  CHECK(r.combine == 3);  // 9 − 6
  CHECK(r.critical_device == 1);
  CHECK(r.idle_fraction == 1.0 - (7.0 / 4) / 4);  // 0.5625 exactly
  CHECK(r.bytes_intra == 8);
  CHECK(r.bytes_inter == 6);
}

TEST_CASE("timing: combine ports serve staggered senders", "[cluster][timing]") {
  // One node, 3 devices, 1 B/s. All tokens start on device 0, which sends 2
  // to device 1 and 2 to device 2: send(0) holds 4 B, so both arrive at 4.
  std::vector<double> sent(9, 0.0);
  sent[1] = 2;
  sent[2] = 2;
  SECTION("the second sender starts after the first finished") {
    // Device 1 busy 2 (4→6), device 2 busy 4 (4→8). Combine 1→0 at 6, done
    // 8; 2→0 released at 8 when recv(0) has just drained: a new busy period,
    // done at 10.
    const auto r = simulate_step(unit_hardware(1, 3, 1, 1), traffic(3, sent, {0, 2, 4}));
    CHECK(r.dispatch == 4);
    CHECK(r.step_time == 10);
    CHECK(r.combine == 2);  // 10 − 8
    CHECK(r.idle_fraction == 0.5);  // 1 − 2/4
    CHECK(r.critical_device == 2);
  }
  SECTION("overlapping releases finish together") {
    // Device 2 busy 3 (4→7): its 2 B reach recv(0) at 7 while 1→0 (released
    // at 6) still drains: the port's busy period runs to max(8, 7) + 2 = 10
    // and both flows complete at 10 (cluster.hpp: finish-together ports).
    const auto r = simulate_step(unit_hardware(1, 3, 1, 1), traffic(3, sent, {0, 2, 3}));
    CHECK(r.step_time == 10);
    CHECK(r.combine == 3);  // 10 − 7
  }
}

TEST_CASE("timing: a busy period ending exactly when new bytes arrive is over", "[cluster][timing]") {
  // One node, 4 devices, 1 B/s. Dispatch: 0→1 (1 B), 2→0 (1 B), 3→0 (1 B).
  // recv(0) holds 2 B and drains at 2; device 1 has its token at 1, computes
  // 1 s and at exactly 2 sends its result back to device 0, onto recv(0).
  // That result starts a new busy period (2→3) instead of extending the old
  // one, so device 0's dispatch is complete at 2 (not 3): it computes 2→4,
  // then returns 1 B each to devices 2 and 3 over send(0): 2 B, done at 6.
  // (Were the periods merged, device 0 would start at 3 and the step end at 7.)
  std::vector<double> sent(16, 0.0);
  sent[0 * 4 + 1] = 1;
  sent[2 * 4 + 0] = 1;
  sent[3 * 4 + 0] = 1;
  const auto r = simulate_step(unit_hardware(1, 4, 1, 1), traffic(4, sent, {2, 1, 0, 0}));
  CHECK(r.dispatch == 2);
  CHECK(r.step_time == 6);
  CHECK(r.combine == 2);  // 6 − 4
  CHECK(r.idle_fraction == 1.0 - (3.0 / 4) / 2);
}

TEST_CASE("timing: bytes sent equal bytes received", "[cluster][timing]") {
  // 2 nodes × 3 devices, an irregular matrix with empty rows and columns.
  const int D = 6;
  std::vector<double> sent(D * D, 0.0);
  for (int s = 0; s < D; ++s)
    for (int d = 0; d < D; ++d) sent[s * D + d] = double((s * 7 + d * 3) % 5) * (s == 4 ? 0 : 1);
  std::vector<double> compute(D, 0.0);
  for (int s = 0; s < D; ++s)
    for (int d = 0; d < D; ++d) compute[d] += sent[s * D + d];
  auto hw = unit_hardware(2, 3, 3, 1);
  hw.hidden_bytes = 10;
  const auto r = simulate_step(hw, traffic(D, sent, compute));
  double intra = 0, inter = 0;  // expected, from the matrix directly
  for (int s = 0; s < D; ++s)
    for (int d = 0; d < D; ++d)
      if (s != d) (s / 3 == d / 3 ? intra : inter) += 2 * 10 * sent[s * D + d];
  CHECK(r.bytes_intra == intra);
  CHECK(r.bytes_inter == inter);
  const double out = std::accumulate(r.bytes_sent.begin(), r.bytes_sent.end(), 0.0);
  const double in = std::accumulate(r.bytes_received.begin(), r.bytes_received.end(), 0.0);
  CHECK(out == intra + inter);
  CHECK(in == intra + inter);
  // Per device: dispatch row out + combine column out.
  for (int x = 0; x < D; ++x) {
    double row = 0, col = 0;
    for (int y = 0; y < D; ++y)
      if (y != x) row += sent[x * D + y], col += sent[y * D + x];
    CHECK(r.bytes_sent[x] == 10 * (row + col));
    CHECK(r.bytes_received[x] == 10 * (row + col));
  }
}

TEST_CASE("timing: a perfectly balanced step has no idle time", "[cluster][timing]") {
  // 2 nodes × 2 devices, every device sends 2 to every device (itself
  // included), computes 8. NVLink 2 B/s, IB 1 B/s. Per device: 2 B intra
  // (1 s) and 4 B inter (4 s) each way; ready at 4, compute to 12, combine
  // to 16.
  const auto r = simulate_step(unit_hardware(2, 2, 2, 1), traffic(4, std::vector<double>(16, 2.0), {8, 8, 8, 8}));
  CHECK(r.idle_fraction == 0);
  CHECK(r.critical_device == 0);  // all tie: lowest index
  CHECK(r.dispatch == 4);
  CHECK(r.compute == 8);
  CHECK(r.combine == 4);
  CHECK(r.step_time == 16);
  CHECK(r.bytes_intra == 4 * 1 * 2 * 2);
  CHECK(r.bytes_inter == 4 * 2 * 2 * 2);
}

TEST_CASE("timing: nothing to do takes no time", "[cluster][timing]") {
  const auto r = simulate_step(unit_hardware(1, 2, 1, 1), traffic(2, {0, 0, 0, 0}, {0, 0}));
  CHECK(r.step_time == 0);
  CHECK(r.idle_fraction == 0);
  CHECK(r.critical_device == 0);
}

TEST_CASE("timing: DeepSeek-V3 defaults", "[cluster][timing]") {
  ClusterHardware hw;
  CHECK(hw.devices() == 8);
  CHECK(hw.flops_per_token == 88080384.0);  // 3·2·7168·2048
  CHECK(hw.hidden_bytes == 14336.0);
  // One device computes 1000 assignments locally, nothing moves.
  std::vector<double> compute(8, 0.0);
  compute[3] = 1000;
  const auto r = simulate_step(hw, traffic(8, std::vector<double>(64, 0.0), compute));
  const double t = 1000 * 88080384.0 / (989.5e12 * 0.6);
  CHECK(r.step_time == Approx(t).epsilon(1e-15));
  CHECK(r.critical_device == 3);
  CHECK(r.idle_fraction == Approx(7.0 / 8).epsilon(1e-15));
  // One token to a device on the same node takes 14336 B / 160 GB/s each way.
  std::vector<double> sent(64, 0.0);
  sent[0 * 8 + 1] = 1;
  const auto m = simulate_step(hw, traffic(8, sent, {0, 1, 0, 0, 0, 0, 0, 0}));
  CHECK(m.dispatch == Approx(14336 / 160e9).epsilon(1e-15));
  CHECK(m.step_time == Approx(2 * 14336 / 160e9 + 88080384.0 / (989.5e12 * 0.6)).epsilon(1e-15));
}

TEST_CASE("timing: bad input is refused", "[cluster][timing]") {
  auto hw = unit_hardware(1, 2, 1, 1);
  CHECK_THROWS_AS(simulate_step(hw, traffic(3, std::vector<double>(9, 0.0), {0, 0, 0})), ParamError);
  CHECK_THROWS_AS(simulate_step(hw, traffic(2, {0, 0, 0}, {0, 0})), std::invalid_argument);
  CHECK_THROWS_AS(simulate_step(hw, traffic(2, {0, -1, 0, 0}, {0, 0})), std::invalid_argument);
  hw.efficiency = 1.5;
  try {
    simulate_step(hw, traffic(2, {0, 0, 0, 0}, {0, 0}));
    FAIL("expected ParamError");
  } catch (const ParamError& e) {
    CHECK(e.param() == "efficiency");
  }
  hw.efficiency = 1;
  hw.inter_bandwidth = 0;
  CHECK_THROWS_AS(validate(hw), ParamError);
}
