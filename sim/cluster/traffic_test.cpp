// Tests of TrafficBuilder (MODEL.md §6): who sends how many token copies to
// whom, replica choice, and whole steps of several layers and micro-batches
// timed by hand. Hardware in unit form: a token copy is 1 B at 1 B/s (unless
// stated), a token's expert compute 1 s, no weight-read floor.
#include <catch2/catch.hpp>

#include <algorithm>
#include <numeric>
#include <utility>


#include "../testing/fixtures.hpp"
#include "moesim/cluster.hpp"
#include "moesim/placement.hpp"
#include "moesim/rng.hpp"
#include "traffic.hpp"

using namespace moesim;
using testing::check_same_timing;
using testing::ThreadCount;

namespace {

Shape make_shape(int nodes, int per_node, int experts, int k, int sequences, int seq_len) {
  Shape s;
  s.experts = experts;
  s.top_k = k;
  s.hidden = 1;
  s.sequences = sequences;
  s.seq_len = seq_len;
  s.nodes = nodes;
  s.devices_per_node = per_node;
  return s;
}

ClusterHardware unit_hardware(const Shape& s) {
  ClusterHardware hw;
  hw.nodes = s.nodes;
  hw.devices_per_node = s.devices_per_node;
  hw.intra_bandwidth = hw.inter_bandwidth = 1;
  hw.dispatch_bytes = hw.combine_bytes = 1;
  hw.flops_per_token = hw.peak_flops = hw.efficiency = 1;
  hw.expert_bytes = 0;
  return hw;
}

// StepData whose token t selects choices[t] (all kept).
StepData routed(const Shape& s, const std::vector<std::vector<int>>& choices) {
  StepData d;
  d.resize(s);
  for (std::size_t t = 0; t < choices.size(); ++t)
    for (int r = 0; r < s.top_k; ++r) d.expert[t * s.top_k + r] = choices[t][r];
  return d;
}

// Slot j holds expert (j · stride) mod experts: experts hit twice get a replica.
PlacementMap strided_placement(int slots, int stride, int experts, int devices) {
  std::vector<int> phy2log(static_cast<std::size_t>(slots));
  for (int j = 0; j < slots; ++j) phy2log[std::size_t(j)] = (j * stride) % experts;
  return placement_from_phy2log(phy2log, experts, devices);
}

StepTiming one_layer(const Shape& s, const ClusterHardware& hw, StepData& d, const PlacementMap& map) {
  TrafficBuilder b(s, hw);
  b.begin_step(1);
  b.add_layer(0, d, map, 0);
  return simulate_step(hw, b.traffic());
}

}  // namespace

TEST_CASE("traffic: one copy per destination device (dedup), or per assignment", "[cluster][traffic]") {
  // 1 node × 2 devices, experts 0,1 on device 0 and 2,3 on device 1, top-2;
  // sequences 0 and 1 of 2 tokens live on devices 0 and 1.
  //  token 0 (home 0): {2, 3} → device 1 twice;   token 1 (home 0): {0, 2} → local + device 1
  //  token 2 (home 1): {0, 1} → device 0 twice;   token 3 (home 1): {2, 3} → local
  // per_token: 0→1 carries tokens 0 and 1 (2 copies), 1→0 token 2 (1 copy).
  // per_assignment: 0→1 3 copies, 1→0 2 copies.
  // Loads: device 0 processes 2 + 1 = 3 assignments, device 1 3 + 2 = 5.
  const Shape s = make_shape(1, 2, 4, 2, 2, 2);
  const PlacementMap map = contiguous(4, 2);
  StepData d = routed(s, {{2, 3}, {0, 2}, {0, 1}, {2, 3}});
  auto hw = unit_hardware(s);
  SECTION("per_token") {
    TrafficBuilder b(s, hw);
    b.begin_step(1);
    b.add_layer(0, d, map, 0);
    const StepTraffic& t = b.traffic();
    REQUIRE(t.flows.size() == 2);
    CHECK((t.flows[0].src == 0 && t.flows[0].dst == 1 && t.flows[0].copies == 2));
    CHECK((t.flows[1].src == 1 && t.flows[1].dst == 0 && t.flows[1].copies == 1));
    CHECK(t.slot_copies == std::vector<double>{2, 1, 3, 2});
    CHECK(d.device_load == std::vector<double>{3, 5});
    // Dispatch 0→1 2 B arrives 2, 1→0 1 B arrives 1. Device 0 computes 3
    // tokens 1→4, device 1 5 tokens 2→7. Combine 0→1 1 B 4→5, 1→0 2 B 7→9.
    const auto r = simulate_step(hw, t);
    CHECK(r.step_time == 9);
    CHECK(r.bytes_intra == 2 * (2 + 1));
  }
  SECTION("per_assignment") {
    hw.dispatch = DispatchMode::per_assignment;
    // Dispatch 0→1 3 B arrives 3, 1→0 2 B arrives 2. Device 0 computes 2→5,
    // device 1 3→8. Combine 0→1 2 B 5→7, 1→0 3 B 8→11.
    const auto r = one_layer(s, hw, d, map);
    CHECK(r.step_time == 11);
    CHECK(r.bytes_intra == 2 * (3 + 2));
  }
}

TEST_CASE("traffic: replica token mod r, and drops counted on that replica", "[cluster][traffic]") {
  // 2 devices, each holding a replica of both experts (slots: device 0 = {e0,
  // e1}, device 1 = {e0, e1}). Two sequences of one token: token 0 (home 0)
  // and token 1 (home 1) both pick expert 0, so token 0 goes to replica 0
  // (device 0) and token 1 to replica 1 (device 1): one each, no transfer.
  // (The old rule gave each source's remainder to the first replica: 2 and 0.)
  const Shape s = make_shape(1, 2, 2, 1, 2, 1);
  const PlacementMap map = placement_from_phy2log({0, 1, 0, 1}, 2, 2);
  StepData d = routed(s, {{0}, {0}});
  TrafficBuilder b(s, unit_hardware(s));
  b.begin_step(1);
  b.add_layer(0, d, map, 0);
  CHECK(d.device_load == std::vector<double>{1, 1});
  CHECK(b.traffic().flows.empty());
  CHECK(b.traffic().slot_copies == std::vector<double>{1, 0, 1, 0});
  d.keep[1] = 0;  // token 1's assignment dropped: charged to device 1, the replica that would serve it
  b.begin_step(1);
  b.add_layer(0, d, map, 0);
  CHECK(d.device_load == std::vector<double>{1, 0});
  CHECK(d.device_dropped == std::vector<double>{0, 1});
}

TEST_CASE("traffic: forwarding sends one IB copy per node", "[cluster][traffic]") {
  // 2 nodes × 2 devices, one expert per device, top-3; one sequence of one
  // token on device 0 choosing experts 1, 2, 3: device 1 directly over
  // NVLink, devices 2 and 3 through the relay 2 (node 1's device with local
  // index 0).
  const Shape s = make_shape(2, 2, 4, 3, 1, 1);
  StepData d = routed(s, {{1, 2, 3}});
  auto hw = unit_hardware(s);
  hw.forwarding = true;
  TrafficBuilder b(s, hw);
  b.begin_step(1);
  b.add_layer(0, d, contiguous(4, 4), 0);
  const auto& f = b.traffic().flows;
  REQUIRE(f.size() == 3);
  CHECK((f[0].kind == TrafficFlow::direct && f[0].src == 0 && f[0].dst == 1 && f[0].copies == 1));
  CHECK((f[1].kind == TrafficFlow::to_relay && f[1].src == 0 && f[1].dst == 2 && f[1].copies == 1));
  CHECK((f[1].children == 1 && f[1].relay_processes));
  CHECK((f[2].kind == TrafficFlow::fan_out && f[2].src == 2 && f[2].dst == 3 && f[2].copies == 1));
  // Dispatch at 0: 0→1 NVLink arrives 1; 0→2 IB arrives 1, fan-out 2→3 1→2.
  // Computes: device 1 1→2, device 2 1→2, device 3 2→3. Combine: 1→0 2→3;
  // gather 3→2 3→4; the relay's IB 2→0 (its own compute ended at 2) 4→5.
  const auto r = simulate_step(hw, b.traffic());
  CHECK(r.dispatch == 2);
  CHECK(r.step_time == 5);
  CHECK(r.bytes_inter == 2);
  CHECK(r.bytes_intra == 4);
}

TEST_CASE("traffic: forwarding counts tokens per node up to 64 nodes and beyond", "[cluster][traffic]") {
  // Two tokens on device 0 of 2-device nodes; nodes A and B are the last
  // two (bit 63 of a 64-node mask; past 64 nodes, stamps). Token 0 picks
  // A's devices 0 and B's 0, 1; token 1 picks A's 1 and B's 0, 1. Each node
  // receives 2 tokens over IB at its relay (local index 0), which processes
  // one copy of each and fans out its local neighbour's.
  for (int nodes : {64, 66}) {
    INFO(nodes << " nodes");
    const int D = 2 * nodes, a = D - 4, bn = D - 2;
    const Shape s = make_shape(nodes, 2, D, 3, 1, 2);
    StepData d = routed(s, {{a, bn, bn + 1}, {bn, bn + 1, a + 1}});
    auto hw = unit_hardware(s);
    hw.forwarding = true;
    TrafficBuilder b(s, hw);
    b.begin_step(1);
    b.add_layer(0, d, contiguous(D, D), 0);
    const auto& f = b.traffic().flows;
    REQUIRE(f.size() == 4);
    CHECK((f[0].kind == TrafficFlow::to_relay && f[0].src == 0 && f[0].dst == a && f[0].copies == 2));
    CHECK((f[0].children == 1 && f[0].relay_processes));
    CHECK((f[1].kind == TrafficFlow::fan_out && f[1].src == a && f[1].dst == a + 1 && f[1].copies == 1));
    CHECK((f[2].kind == TrafficFlow::to_relay && f[2].src == 0 && f[2].dst == bn && f[2].copies == 2));
    CHECK((f[2].children == 1 && f[2].relay_processes));
    CHECK((f[3].kind == TrafficFlow::fan_out && f[3].src == bn && f[3].dst == bn + 1 && f[3].copies == 2));
  }
}

TEST_CASE("traffic: two layers chained per device", "[cluster][traffic][layers]") {
  // 1 node × 2 devices, expert e on device e, top-1, two sequences of one
  // token (token 0 on device 0, token 1 on device 1); dense part 1 s a token.
  // Layer 0: both tokens pick expert 1. Layer 1: both pick expert 0.
  //  L0: dense 0→1 on both devices; 0→1 released at 1 arrives 2. Device 0
  //      has no expert work (ends at 1); device 1 computes 2 tokens 2→4 and
  //      returns token 0: 4→5. Layer 0 ends: device 0 at 5, device 1 at 4.
  //  L1: device 1 dense 4→5, sends token 1 to device 0: 5→6. Device 0 dense
  //      5→6, computes 2 tokens 6→8, returns token 1: 8→9. Step = 9.
  // Layer times: 5 (all of layer 0 ended at 5) and 9 − 5 = 4.
  const Shape s = make_shape(1, 2, 2, 1, 2, 1);
  const PlacementMap map = contiguous(2, 2);
  auto hw = unit_hardware(s);
  hw.dense_flops_per_token = 1;
  StepData l0 = routed(s, {{1}, {1}}), l1 = routed(s, {{0}, {0}});
  TrafficBuilder b(s, hw);
  b.begin_step(2);
  b.add_layer(0, l0, map, 0);
  b.add_layer(1, l1, map, 0);
  CHECK_THROWS_AS(b.add_layer(1, l1, map, 0), std::logic_error);
  const auto r = simulate_step(hw, b.traffic());
  CHECK(r.step_time == 9);
  CHECK(r.layer_time == std::vector<double>{5, 4});
  CHECK(r.busy == std::vector<double>{4, 4});  // 2 s dense + 2 s expert each
  CHECK(r.compute == 2);
  CHECK(r.dense == 2);
  CHECK(r.dispatch == 1);  // layer 0: released at 1, arrived at 2
  CHECK(l0.device_load == std::vector<double>{0, 2});
  CHECK(l1.device_load == std::vector<double>{2, 0});
}

TEST_CASE("traffic: two micro-batches overlap compute with communication", "[cluster][traffic][micro_batches]") {
  // 1 node × 2 devices, expert e on device e, top-1; four sequences of one
  // token (homes 0, 1, 0, 1), each choosing the other device's expert. 2 B a
  // copy each way at 1 B/s (2 s a token), 1 s of compute a token.
  // One micro-batch: 2 tokens each way, 4 B: dispatch 0→4, compute 4→6,
  //   combine 6→10. Step 10.
  // Two (sequences {0, 1} and {2, 3}): micro-batch 0's dispatch 0→2, micro-
  //   batch 1's queues behind it 2→4. Compute mb0 2→3; its combine waits for
  //   the port, 4→6; compute mb1 4→5, combine 6→8. Step 8.
  const Shape s = make_shape(1, 2, 2, 1, 4, 1);
  const PlacementMap map = contiguous(2, 2);
  auto hw = unit_hardware(s);
  hw.dispatch_bytes = hw.combine_bytes = 2;
  StepData d = routed(s, {{1}, {0}, {1}, {0}});
  const auto one = one_layer(s, hw, d, map);
  CHECK(one.step_time == 10);
  hw.micro_batches = 2;
  const auto two = one_layer(s, hw, d, map);
  CHECK(two.step_time == 8);
  CHECK(two.dispatch == 2);  // micro-batch 0 only
  CHECK(two.busy == one.busy);
  REQUIRE(two.timeline.size() == 2);
  CHECK(two.timeline[1].expert_start == 4);
  CHECK(two.timeline[1].layer_end == 8);
}

namespace {

// A random routing of `s` (no repeated expert per token), some drops.
StepData random_routing(const Shape& s, std::uint64_t seed) {
  Rng rng(seed);
  StepData d;
  d.resize(s);
  for (int t = 0; t < s.tokens(); ++t)
    for (int r = 0; r < s.top_k; ++r) {
      int e;
      bool repeat;
      do {
        e = int(rng.next() % std::uint64_t(s.experts));
        repeat = false;
        for (int q = 0; q < r; ++q) repeat = repeat || d.expert[std::size_t(t) * s.top_k + q] == e;
      } while (repeat);
      d.expert[std::size_t(t) * s.top_k + r] = e;
      d.keep[std::size_t(t) * s.top_k + r] = rng.next() % 8 != 0;
    }
  return d;
}

}  // namespace

TEST_CASE("traffic: bytes per link class match a count by token", "[cluster][traffic]") {
  // 3 nodes × 2 devices: 12 experts with 6 redundant replicas, top-4; and 40
  // experts with 20, top-16 (a token's devices told apart in one register of
  // lanes, all used) and top-20 (too many lanes: by stamps).
  struct Routing {
    int experts, k, slots;
  };
  for (const Routing& g : {Routing{12, 4, 18}, Routing{40, 16, 60}, Routing{40, 20, 60}})
    for (int seed = 1; seed <= 4; ++seed)
      for (bool forwarding : {false, true})
        for (DispatchMode mode : {DispatchMode::per_token, DispatchMode::per_assignment}) {
          const Shape s = make_shape(3, 2, g.experts, g.k, 9, 5);
          const PlacementMap map = strided_placement(g.slots, 7, g.experts, 6);
          INFO("top-" << g.k << ", seed " << seed);
          StepData d = random_routing(s, std::uint64_t(seed));
          auto hw = unit_hardware(s);
          hw.forwarding = forwarding;
          hw.dispatch = mode;
          hw.dispatch_bytes = 3;
          hw.combine_bytes = 5;
          hw.micro_batches = 1 + seed % 3;
          // Independent count: per token, the devices (and nodes) its kept
          // assignments go to, once each (per_token) or once per assignment.
          double intra = 0, inter = 0;
          for (int t = 0; t < s.tokens(); ++t) {
            const int home = (t / s.seq_len) % 6;
            std::vector<int> devs, nodes;
            for (int r = 0; r < s.top_k; ++r) {
              if (!d.keep[std::size_t(t) * g.k + r]) continue;
              const int dev = map.device_for(d.expert[std::size_t(t) * g.k + r], t);
              const bool seen = std::count(devs.begin(), devs.end(), dev) > 0;
              const bool node_seen = std::count(nodes.begin(), nodes.end(), dev / 2) > 0;
              if (mode == DispatchMode::per_assignment || !seen) devs.push_back(dev);
              if (mode == DispatchMode::per_assignment || !node_seen) nodes.push_back(dev / 2);
            }
            for (int dev : devs) {
              if (dev == home) continue;
              const int relay = (dev / 2) * 2 + home % 2;
              if (dev / 2 == home / 2) intra += 8;
              else if (!forwarding) inter += 8;
              else if (dev != relay) intra += 8;  // the relay's NVLink fan-out
            }
            if (forwarding)
              for (int n : nodes) inter += n != home / 2 ? 8 : 0;
          }
          TrafficBuilder b(s, hw);
          b.begin_step(1);
          b.add_layer(0, d, map, 0);
          const auto r = simulate_step(hw, b.traffic());
          CHECK(r.bytes_intra == intra);
          CHECK(r.bytes_inter == inter);
          CHECK(r.bytes_dispatch_intra * 5 == r.bytes_combine_intra * 3);
          CHECK(std::accumulate(r.bytes_sent.begin(), r.bytes_sent.end(), 0.0) == intra + inter);
          CHECK(std::accumulate(r.bytes_received.begin(), r.bytes_received.end(), 0.0) == intra + inter);
          // The schedule never beats the busiest device's compute.
          CHECK(r.step_time >= *std::max_element(r.busy.begin(), r.busy.end()));
        }
}

TEST_CASE("traffic: a thread team builds the same traffic as one thread", "[cluster][traffic][threads]") {
  // Cells of 4 096 tokens × top-4 (twice TrafficBuilder::kParallelAssignments)
  // on 3 nodes × 4 devices: teams of 2, 3, 5 and 12 threads split the 12
  // homes unevenly; flows, counts and loads must equal the one-thread build's.
  // The second shape puts 6 sequences on the 12 devices, so half the homes
  // hold no token and the team splits the others by their tokens.
  for (const Shape& s : {make_shape(3, 4, 16, 4, 32, 256), make_shape(3, 4, 16, 4, 6, 1366)}) {
    REQUIRE(std::int64_t(s.tokens()) * s.top_k / 2 >= TrafficBuilder::kParallelAssignments);
    const PlacementMap map = strided_placement(24, 5, 16, 12);
    for (bool forwarding : {false, true}) {
      auto hw = unit_hardware(s);
      hw.forwarding = forwarding;
      hw.micro_batches = 2;
      std::vector<StepData> layers{random_routing(s, 11), random_routing(s, 12)};
      auto build = [&](int threads) {
        const ThreadCount team(threads);
        TrafficBuilder b(s, hw);
        b.begin_step(2);
        std::vector<std::vector<double>> loads;
        for (int l = 0; l < 2; ++l) {
          b.add_layer(l, layers[std::size_t(l)], map, 0);
          loads.push_back(layers[std::size_t(l)].device_load);
          loads.push_back(layers[std::size_t(l)].device_dropped);
        }
        return std::pair{b.traffic(), loads};
      };
      const auto [one, one_loads] = build(1);
      REQUIRE(one.flows.size() > 100);
      for (int threads : {2, 3, 5, 12}) {
        INFO("forwarding " << forwarding << ", " << threads << " threads");
        const auto [team, team_loads] = build(threads);
        REQUIRE(team.flows.size() == one.flows.size());
        bool same = true;
        for (std::size_t i = 0; i < one.flows.size(); ++i) {
          const TrafficFlow &a = one.flows[i], &b = team.flows[i];
          same = same && a.src == b.src && a.dst == b.dst && a.kind == b.kind && a.children == b.children &&
                 a.copies == b.copies && a.relay_processes == b.relay_processes;
        }
        CHECK(same);
        CHECK(team.flow_begin == one.flow_begin);
        CHECK(team.slot_copies == one.slot_copies);
        CHECK(team.home_tokens == one.home_tokens);
        CHECK(team_loads == one_loads);
      }
    }
  }
}

namespace {

// The traffic of `layers` layers of random routing (layer l from seed + l).
StepTraffic random_step(const Shape& s, const ClusterHardware& hw, const PlacementMap& map, int layers,
                        std::uint64_t seed) {
  TrafficBuilder b(s, hw);
  b.begin_step(layers);
  for (int l = 0; l < layers; ++l) {
    StepData d = random_routing(s, seed + std::uint64_t(l));
    b.add_layer(l, d, map, 0);
  }
  return b.traffic();
}

}  // namespace

TEST_CASE("timing: a thread listing cells ahead of the simulation changes nothing", "[cluster][timing][threads]") {
  // 32 devices on 4 nodes, 20 layers × 2 micro-batches of random top-8
  // routing over 64 experts with 32 replicas: about 20,000 flows, past
  // kPrepareAheadFlows, so two threads simulate with a helper listing the
  // cells; one thread lists them itself. Every output must be the same, bit
  // for bit, and a malformed cell must be refused the same way.
  const Shape s = make_shape(4, 8, 64, 8, 32, 128);
  const PlacementMap map = strided_placement(96, 7, 64, 32);
  for (bool forwarding : {false, true}) {
    auto hw = unit_hardware(s);
    hw.forwarding = forwarding;
    hw.micro_batches = 2;
    hw.inter_bandwidth = 0.25;
    hw.inter_latency = 0.5;
    const StepTraffic t = random_step(s, hw, map, 20, 100);
    REQUIRE(t.flows.size() >= std::size_t(kPrepareAheadFlows));
    auto timed = [&](int threads, const StepTraffic& t) {
      const ThreadCount team(threads);
      return simulate_step(hw, t);
    };
    INFO("forwarding " << forwarding);
    const StepTiming one = timed(1, t);
    REQUIRE(one.step_time > 0);
    for (int threads : {2, 3}) check_same_timing(timed(threads, t), one);
    // A bad count in the first cell (listed before the helper starts) and in
    // a late one (listed by the helper while the simulation runs).
    for (int cell : {0, 37}) {
      StepTraffic bad = t;
      bad.flows[std::size_t(bad.flow_begin[std::size_t(cell)] + 5)].copies = -1;
      for (int threads : {1, 2})
        CHECK_THROWS_WITH(timed(threads, bad), "simulate_step: a flow has a bad device or count");
    }
  }
}

TEST_CASE("timing: a dense cell's tables and its flow lists give the same step", "[cluster][timing][dense]") {
  // 32 devices on 4 nodes, 12 layers × 2 micro-batches of random top-8
  // routing: each cell's flows join about half the device pairs, so every
  // cell is dense. Byte sizes that round (0.37, 0.61) make every sum's order
  // show, and latencies and a slower inter-node link make ports queue.
  const Shape s = make_shape(4, 8, 64, 8, 32, 128);
  const PlacementMap map = strided_placement(96, 7, 64, 32);
  auto hw = unit_hardware(s);
  hw.micro_batches = 2;
  hw.dispatch_bytes = 0.37;
  hw.combine_bytes = 0.61;
  hw.inter_bandwidth = 0.25;
  hw.intra_latency = 0.125;
  hw.inter_latency = 0.5;
  StepTraffic t = random_step(s, hw, map, 12, 300);
  const int cells = t.cells();
  for (int threads : {1, 2}) {
    INFO(threads << " threads");
    const ThreadCount team(threads);
    const StepTiming listed = simulate_step(hw, t, false);
    const StepTiming dense = simulate_step(hw, t, true);
    CHECK(listed.dense_cells == 0);
    CHECK(dense.dense_cells == cells);
    REQUIRE(listed.step_time > 0);
    check_same_timing(dense, listed);
  }
  // A cell whose flows are not sorted by destination is listed, the others
  // stay dense: still the same step as all listed. Swapping home 3's first
  // two flows in cell 5 reorders their sums and events in both runs alike.
  const int first = t.flow_begin[5];
  int i = first;
  while (t.flows[std::size_t(i)].src != 3) ++i;
  REQUIRE(t.flows[std::size_t(i + 1)].src == 3);
  std::swap(t.flows[std::size_t(i)], t.flows[std::size_t(i + 1)]);
  const StepTiming listed = simulate_step(hw, t, false);
  const StepTiming mixed = simulate_step(hw, t, true);
  CHECK(mixed.dense_cells == cells - 1);
  check_same_timing(mixed, listed);
  // A device pair twice in one cell (a table would keep only one of its
  // flows): that cell is listed too, and both flows move.
  StepTraffic twice = t;
  const int at = twice.flow_begin[7] + 3;
  twice.flows.insert(twice.flows.begin() + at, twice.flows[std::size_t(at)]);
  for (int c = 8; c <= cells; ++c) ++twice.flow_begin[std::size_t(c)];
  const StepTiming twice_listed = simulate_step(hw, twice, false);
  const StepTiming twice_mixed = simulate_step(hw, twice, true);
  CHECK(twice_mixed.dense_cells == cells - 2);
  check_same_timing(twice_mixed, twice_listed);
  CHECK(twice_listed.bytes_dispatch_intra + twice_listed.bytes_dispatch_inter >
        listed.bytes_dispatch_intra + listed.bytes_dispatch_inter);
  // Too few flows (one per home and cell) to be worth a table: listed.
  StepTraffic sparse = t;
  sparse.flows.clear();
  for (int c = 0; c < cells; ++c) {
    sparse.flow_begin[std::size_t(c)] = int(sparse.flows.size());
    for (int h = 0; h < t.devices; ++h) sparse.flows.push_back({h, (h + 1 + c) % t.devices, TrafficFlow::direct, false, 0, 1});
  }
  sparse.flow_begin.back() = int(sparse.flows.size());
  CHECK(simulate_step(hw, sparse, true).dense_cells == 0);
}

TEST_CASE("traffic: nonzero_bits marks the non-zero counts, within n", "[cluster][traffic]") {
  // Counts past n are non-zero and must not show; every length from 1 to 64,
  // against the bit-by-bit definition.
  std::vector<std::int32_t> x(80, 5);
  Rng rng = Rng::stream(5, "nonzero-bits");
  for (int round = 0; round < 200; ++round) {
    for (int j = 0; j < 64; ++j) x[std::size_t(j)] = rng.uniform() < 0.5 ? 0 : int(rng.next() % 7) - 3;
    const int n = 1 + round % 64;
    std::uint64_t expected = 0;
    for (int j = 0; j < n; ++j) expected |= std::uint64_t(x[std::size_t(j)] != 0) << j;
    INFO("n = " << n);
    REQUIRE(nonzero_bits(x.data(), n) == expected);
  }
  std::fill(x.begin(), x.end(), 1);
  CHECK(nonzero_bits(x.data(), 64) == ~std::uint64_t(0));
  CHECK(nonzero_bits(x.data(), 17) == (std::uint64_t(1) << 17) - 1);
}

TEST_CASE("traffic: first_lanes marks each value's first lane", "[cluster][traffic]") {
  // Lanes of few values (so that most repeat), against the pairwise definition.
  alignas(64) std::int32_t lane[kDeviceLanes];
  Rng rng = Rng::stream(6, "first-lanes");
  for (int round = 0; round < 500; ++round) {
    const int values = 1 + round % 20;
    for (int& x : lane) x = int(rng.next() % std::uint64_t(values)) - values / 2;
    std::uint32_t expected = 0;
    for (int j = 0; j < kDeviceLanes; ++j)
      if (std::find(lane, lane + j, lane[j]) == lane + j) expected |= std::uint32_t(1) << j;
    INFO("round " << round);
    REQUIRE(first_lanes(lane) == expected);
  }
  std::fill(std::begin(lane), std::end(lane), 7);
  CHECK(first_lanes(lane) == 1);
  for (int j = 0; j < kDeviceLanes; ++j) lane[j] = j;
  CHECK(first_lanes(lane) == (std::uint32_t(1) << kDeviceLanes) - 1);
}

TEST_CASE("traffic: LateRepeats leaves one copy per token and device", "[cluster][traffic]") {
  // Devices 0..3 (4: none). Token 0 goes to 1, 1, 2; token 1 to 3, 3, 3
  // and a dropped choice; token 2 to 2 and 0. Per token and device one
  // copy: 0 once, 1 once, 2 twice, 3 once.
  const std::vector<std::vector<int>> tokens = {{1, 1, 2}, {3, 3, 4, 3}, {2, 0}};
  std::int32_t count[5] = {};
  LateRepeats repeats(4);
  for (const auto& choices : tokens) {
    std::int32_t* lane = repeats.lanes();
    std::uint64_t kept = 0;
    for (std::size_t r = 0; r < choices.size(); ++r) {
      lane[r] = choices[r];
      if (choices[r] != 4) {
        ++count[choices[r]];
        kept |= std::uint64_t(1) << r;
      }
    }
    // Lanes past this token's choices keep the previous token's: only kept lanes count.
    repeats.end_token(count, kept);
  }
  repeats.end_token(count, 0);
  CHECK(std::vector<int>(count, count + 5) == std::vector<int>{1, 1, 2, 1, 0});
}

TEST_CASE("traffic: a team splits a cell's homes by tokens, not by count", "[cluster][traffic][threads]") {
  // 16 sequences of 1 000 tokens on 32 devices (bench-v3's shape): homes 0–15
  // hold the tokens, 16–31 none. An even split of homes gave one thread all.
  std::vector<std::int32_t> begin(33, 16000);
  for (int h = 0; h <= 16; ++h) begin[std::size_t(h)] = 1000 * h;
  CHECK(split_homes(begin, 0, 2) == 0);
  CHECK(split_homes(begin, 1, 2) == 8);
  CHECK(split_homes(begin, 2, 2) == 32);
  CHECK(split_homes(begin, 1, 4) == 4);
  CHECK(split_homes(begin, 3, 4) == 12);
  // A cell starting past 0 (micro-batch 1): offsets are relative to its first token.
  std::vector<std::int32_t> second{500, 500, 600, 1500};  // homes of 0, 100 and 900 tokens
  CHECK(split_homes(second, 1, 2) == 2);   // 500 tokens in: home 2's start (100 in) is nearer than the end (1000)
  CHECK(split_homes(second, 1, 10) == 2);  // 100 in: exactly home 2's start
  CHECK(split_homes(second, 2, 10) == 2);  // 200 in: home 2's start is nearer than the end
  CHECK(split_homes(second, 9, 10) == 3);  // 900 in: the end is nearer
  // An empty cell: every run is empty but the last, which takes all the homes.
  std::vector<std::int32_t> empty(5, 7);
  for (int i = 0; i <= 3; ++i) CHECK(split_homes(empty, i, 3) == (i == 3 ? 4 : 0));
  // More threads than homes: boundaries at the nearest home, some runs empty.
  std::vector<std::int32_t> two{0, 10, 20};
  CHECK(split_homes(two, 1, 5) == 0);  // 4 tokens in: nearer 0 than 10
  CHECK(split_homes(two, 2, 5) == 1);  // 8 in: nearer 10
  CHECK(split_homes(two, 3, 5) == 1);  // 12 in
  CHECK(split_homes(two, 4, 5) == 2);  // 16 in: nearer 20, home 1's end
}

TEST_CASE("traffic: two micro-batches never beat the busiest device's compute", "[cluster][traffic][micro_batches]") {
  // Random multi-layer steps with dense parts and the weight-read floor.
  const Shape s = make_shape(2, 2, 8, 2, 8, 4);
  const PlacementMap map = contiguous(8, 4);
  for (int seed = 1; seed <= 6; ++seed) {
    auto hw = unit_hardware(s);
    hw.dense_flops_per_token = 0.25;
    hw.expert_bytes = 2;
    hw.forwarding = seed % 2 == 0;
    hw.inter_bandwidth = 0.5;
    hw.micro_batches = 2;
    std::vector<StepData> layers;
    for (int l = 0; l < 3; ++l) layers.push_back(random_routing(s, std::uint64_t(seed * 10 + l)));
    TrafficBuilder b(s, hw);
    b.begin_step(3);
    for (int l = 0; l < 3; ++l) b.add_layer(l, layers[l], map, 0);
    const auto r = simulate_step(hw, b.traffic());
    const double max_busy = *std::max_element(r.busy.begin(), r.busy.end());
    CHECK(r.step_time >= max_busy);
    CHECK(std::accumulate(r.layer_time.begin(), r.layer_time.end(), 0.0) == Approx(r.step_time).epsilon(1e-12));
  }
}

TEST_CASE("traffic: the builder's replica choice is PlacementMap::slot_for, tabulated or not", "[cluster][traffic]") {
  // The builder picks replica (token mod r) from ReplicaIndex's table of rows
  // where the period (lcm of the counts) is short, else by multiplication
  // (Lemire's remainder); every other stage uses PlacementMap::slot_for's
  // division. Experts 0..3 have 3, 5, 7 and 1 replicas (period 105: looked
  // up one by one, 16 slots on 4 devices), or 2, 3, 4 and 3 (period 12:
  // tabulated, 12 slots).
  struct Case {
    std::vector<int> counts;
    bool tabulated;
  };
  for (const auto& [counts, tabulated] : {Case{{3, 5, 7, 1}, false}, Case{{2, 3, 4, 3}, true}}) {
    std::vector<int> phy2log;
    for (int e : {0, 1, 2, 3})
      for (int r = 0; r < counts[std::size_t(e)]; ++r) phy2log.push_back(e);
    const PlacementMap map = placement_from_phy2log(phy2log, 4, 4);
    REQUIRE(map.logcnt == counts);
    INFO("tabulated " << tabulated);
    REQUIRE((ReplicaIndex(map, ReplicaIndex::replica_rows).replica_row(0) != nullptr) == tabulated);
    const Shape s = make_shape(1, 4, 4, 2, 64, 1024);  // 65 536 tokens
    StepData d;
    d.resize(s);
    std::vector<double> expected(map.phy2log.size(), 0.0);
    Rng rng(7);
    for (int t = 0; t < s.tokens(); ++t) {
      const int first = int(rng.next() % 4);
      for (int r = 0; r < 2; ++r) {
        const int e = (first + r) % 4;
        d.expert[std::size_t(t) * 2 + r] = e;
        expected[std::size_t(map.slot_for(e, t))] += 1.0;
      }
    }
    TrafficBuilder b(s, unit_hardware(s));
    b.begin_step(1);
    b.add_layer(0, d, map, 0);
    const std::vector<double>& got = b.traffic().slot_copies;
    CHECK(std::vector<double>(got.begin(), got.begin() + std::ptrdiff_t(expected.size())) == expected);
  }
}

TEST_CASE("traffic: a placement of another shape is refused, not read past", "[cluster][traffic]") {
  const Shape s = make_shape(1, 2, 4, 2, 2, 2);
  StepData d = routed(s, {{0, 1}, {2, 3}, {0, 2}, {1, 3}});
  TrafficBuilder b(s, unit_hardware(s));
  b.begin_step(1);
  CHECK_THROWS_WITH(b.add_layer(0, d, contiguous(8, 2), 0), Catch::Contains("does not match the shape"));
  CHECK_THROWS_WITH(b.add_layer(0, d, contiguous(4, 4), 0), Catch::Contains("does not match the shape"));
  PlacementMap broken = contiguous(4, 2);
  broken.log2phy[1].clear();  // an expert without a replica: a division by zero before
  CHECK_THROWS_WITH(b.add_layer(0, d, broken, 0), Catch::Contains("does not match the shape"));
  for (int slot : {-1, 4}) {  // a replica in no slot of the 2 × 2
    PlacementMap astray = contiguous(4, 2);
    astray.log2phy[3] = {slot};
    CHECK_THROWS_WITH(b.add_layer(0, d, astray, 0), Catch::Contains("does not match the shape"));
  }
  CHECK_NOTHROW(b.add_layer(0, d, contiguous(4, 2), 0));  // refused layers were not added
}

TEST_CASE("traffic: more than 64 choices a token are refused, not written past", "[cluster][traffic]") {
  CHECK_THROWS_AS(TrafficBuilder(make_shape(1, 2, 128, 65, 2, 1), unit_hardware(make_shape(1, 2, 128, 65, 2, 1))),
                  std::invalid_argument);
  CHECK_NOTHROW(TrafficBuilder(make_shape(1, 2, 128, 64, 2, 1), unit_hardware(make_shape(1, 2, 128, 64, 2, 1))));
}

TEST_CASE("traffic: a node too large for a relay's fan-out count is refused", "[cluster][traffic]") {
  const Shape s = make_shape(1, 2, 8, 2, 2, 1);
  ClusterHardware hw = unit_hardware(s);
  hw.devices_per_node = kMaxDevicesPerNode + 1;
  CHECK_THROWS_WITH(TrafficBuilder(s, hw), Catch::Contains("devices per node"));
}
