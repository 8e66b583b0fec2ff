// EPLB against the reference's published example and hand-worked cases.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include "moesim/components.hpp"
#include "moesim/error.hpp"
#include "moesim/placement.hpp"
#include "moesim/metrics.hpp"
#include "moesim/routing_trace.hpp"
#include "testing/fixtures.hpp"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

using namespace moesim;

TEST_CASE("eplb: balanced_packing, by hand, equal weights in index order", "[eplb]") {
  // Items 0..5 = [1, 5, 3, 3, 2, 2] into 2 packs of 3. Sorted descending
  // (stable for ≤ 16 items): 1(5), 2(3), 3(3), 4(2), 5(2), 0(1).
  //  1 → pack 0 (both empty, lowest index)       packs (5, 0)
  //  2 → pack 1 (lighter)                        (5, 3)
  //  3 → pack 1                                  (5, 6)
  //  4 → pack 0                                  (7, 6)
  //  5 → pack 1, now full                        (7, 8)
  //  0 → pack 0, the only non-full one           (8, 8)
  const Packing p = balanced_packing({1, 5, 3, 3, 2, 2}, 2);
  CHECK(p.pack_index == std::vector<int>{0, 0, 1, 1, 0, 1});
  CHECK(p.rank_in_pack == std::vector<int>{2, 0, 0, 1, 1, 2});
}

TEST_CASE("eplb: balanced_packing with one item per pack keeps items in place", "[eplb]") {
  const Packing p = balanced_packing({3, 9, 1}, 3);
  CHECK(p.pack_index == std::vector<int>{0, 1, 2});
  CHECK(p.rank_in_pack == std::vector<int>{0, 0, 0});
}

TEST_CASE("eplb: replicate_experts, by hand, ties to the lower expert", "[eplb]") {
  // Loads [6, 2, 3] to 6 replicas.
  //  replica 3: loads/cnt = [6, 2, 3]   → expert 0 (rank 1)
  //  replica 4: [3, 2, 3], tie 0 and 2  → expert 0 (rank 2)
  //  replica 5: [2, 2, 3]               → expert 2 (rank 1)
  const Replication r = replicate_experts({6, 2, 3}, 6);
  CHECK(r.phy2log == std::vector<int>{0, 1, 2, 0, 0, 2});
  CHECK(r.rank == std::vector<int>{0, 0, 0, 1, 2, 1});
  CHECK(r.logcnt == std::vector<int>{3, 1, 2});
}

TEST_CASE("eplb: the README example of deepseek-ai/EPLB", "[eplb]") {
  // Two layers of 12 experts, 16 replicas, 4 groups, 2 nodes, 8 GPUs; the
  // printed phy2log of the README.
  const std::vector<std::vector<double>> weight = {
      {90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86},
      {20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27}};
  const EplbResult r = rebalance_experts(weight, 16, 4, 2, 8);
  REQUIRE(r.phy2log.size() == 2);
  CHECK(r.phy2log[0] == std::vector<int>{5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1});
  CHECK(r.phy2log[1] == std::vector<int>{7, 10, 6, 8, 6, 11, 8, 9, 2, 4, 5, 1, 5, 0, 3, 1});
  // Counts follow from phy2log; log2phy is padded to the largest count (2).
  CHECK(r.logcnt[0] == std::vector<int>{1, 2, 1, 1, 2, 2, 1, 1, 1, 1, 2, 1});
  CHECK(r.logcnt[1] == std::vector<int>{1, 2, 1, 1, 1, 2, 2, 1, 2, 1, 1, 1});
  CHECK(r.log2phy[0][5] == std::vector<int>{0, 2});
  CHECK(r.log2phy[0][0] == std::vector<int>{12, -1});
  for (int l = 0; l < 2; ++l)
    for (int e = 0; e < 12; ++e)
      for (int k = 0; k < r.logcnt[l][e]; ++k) CHECK(r.phy2log[l][r.log2phy[l][e][k]] == e);
}

TEST_CASE("eplb: global policy when nodes do not divide groups", "[eplb]") {
  // 3 groups over 2 nodes: the reference falls back to one group on one node.
  const std::vector<std::vector<double>> w = {{10, 1, 7, 3, 8, 2}};
  const EplbResult global = rebalance_experts(w, 8, 3, 2, 4);
  const EplbResult flat = rebalance_experts(w, 8, 1, 1, 4);
  CHECK(global.phy2log == flat.phy2log);
  // By hand: replicas to experts 0 (10 → 5 per replica) then 4 (8 → 4).
  // Per-replica loads, slots 0..7: [5, 1, 7, 3, 4, 2, 5, 4]; sorted
  // descending: slot 2 (7), 0 (5), 6 (5), 4 (4), 7 (4), 3 (3), 5 (2), 1 (1);
  // packed to 4 GPUs × 2: 2→g0, 0→g1, 6→g2, 4→g3 (7,5,5,4); 7→g3 (8);
  // 3→g1 (8); 5→g2 (7); 1→g0 (8). GPU slots: g0 [2,1] g1 [0,3] g2 [6,5] g3 [4,7],
  // i.e. experts [2,1, 0,3, 0,5, 4,4].
  CHECK(global.phy2log[0] == std::vector<int>{2, 1, 0, 3, 0, 5, 4, 4});
  CHECK(global.logcnt[0] == std::vector<int>{2, 1, 1, 1, 2, 1});
}

TEST_CASE("eplb: shapes the reference asserts on are refused", "[eplb]") {
  const std::vector<std::vector<double>> w = {{1, 2, 3, 4}};
  auto param_of = [&](int replicas, int groups, int nodes, int gpus) {
    try {
      rebalance_experts(w, replicas, groups, nodes, gpus);
    } catch (const ParamError& e) {
      return e.param();
    }
    return std::string("none");
  };
  CHECK(param_of(6, 2, 1, 4) == "num_replicas");  // 6 % 4 GPUs
  CHECK(param_of(4, 3, 1, 2) == "num_groups");     // 4 experts % 3 groups
  CHECK(param_of(4, 2, 2, 3) == "num_gpus");       // 3 GPUs % 2 nodes
  CHECK(param_of(2, 2, 1, 2) == "num_replicas");   // fewer replicas than experts
  CHECK(param_of(4, 2, 2, 2) == "none");
  CHECK_THROWS_AS(rebalance_experts({{1, -2, 3, 4}}, 4, 1, 1, 2), std::invalid_argument);
}

TEST_CASE("eplb: a layer as a placement map", "[eplb]") {
  const EplbResult r = rebalance_experts({{90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86}}, 16, 4, 2, 8);
  const PlacementMap m = to_placement(r, 0, 8);
  CHECK(m.slots_per_device == 2);
  CHECK(m.device_of_slot(13) == 6);
  // By hand, node 1 of this layer (groups 3 and 0: experts 9 10 11 0 1 2,
  // loads 56 183 86 90 132 40): replicas 6 → expert 10, 7 → expert 1 (rank 1).
  // Per-replica loads k0..k7: 56 91.5 86 90 66 40 91.5 66; packing to 4 GPUs
  // (heaviest first, lightest non-full GPU): k1 g0, k6 g1, k3 g2, k2 g3, k4 g3,
  // k7 g2, k0 g0, k5 g1. So slot 13 (g2, second) is k7 = expert 1 rank 1 and
  // slot 15 (g3, second) is k4 = expert 1 rank 0.
  CHECK(m.log2phy[1] == std::vector<int>{15, 13});
  CHECK(m.phy2log[13] == 1);
  CHECK(m.logcnt[1] == 2);
  // Expert 1's 132 tokens split 66/66, expert 10's 183 split 92/91 (rank 0
  // first); device loads follow the slots.
  std::vector<double> counts = {90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86};
  const std::vector<double> dev = device_loads(m, counts);
  // Node 1 GPUs (devices 4..7) hold [10,9], [10,2], [0,1], [11,1]; expert 10's
  // rank 0 is k1 (device 4) and rank 1 k6 (device 5).
  CHECK(dev[4] == 92 + 56);
  CHECK(dev[5] == 91 + 40);
  CHECK(dev[6] == 90 + 66);
  CHECK(dev[7] == 86 + 66);
}

TEST_CASE("EPLB on real 58-layer DeepSeek-V3 loads matches DeepSeek's algorithm layer by layer", "[eplb][loads][layers]") {
  // Reference: DeepSeek's eplb.py run on the same files (provenance in the JSON).
  const auto ref = nlohmann::json::parse(
      testing::read_text(MOESIM_SOURCE_DIR "/sim/cluster/testdata/eplb_reference_real_loads.json"));
  for (const char* deployment : {"prefill", "decode"}) {
    INFO(deployment);
    const auto& d = ref[deployment];
    const LayerLoads file = read_layer_loads(MOESIM_SOURCE_DIR "/" + d["loads"].get<std::string>());
    REQUIRE(file.layers() == 58);
    const int devices = d["devices"].get<int>();
    const EplbResult r = rebalance_experts(file.load, d["replicas"].get<int>(), d["groups"].get<int>(),
                                           d["nodes"].get<int>(), devices);
    const auto& expected = d["device_max_over_mean"];
    double worst = 0;
    for (int l = 0; l < file.layers(); ++l) {
      const double ours = max_over_mean(device_loads(to_placement(r, l, devices), file.load[l]));
      worst = std::max(worst, std::abs(ours - expected[l].get<double>()));
    }
    CHECK(worst < 1e-5);  // float32 sums in both; the placements are the same
  }
}

TEST_CASE("eplb placement: max_rebalances 1 places once from the first window, then stays", "[eplb][placement]") {
  auto placement_after = [](int max_rebalances) {
    const Scenario sc = testing::tiny_scenario(fmt::format(
        R"({{"strategies": [{{"name": "e", "placement": {{"type": "eplb", "redundant_experts": 2, "rebalance_every": 1,
                                                        "window": 1, "max_rebalances": {}}}}}]}})", max_rebalances));
    const ComponentSpec& spec = sc.strategies[0].placement;
    auto p = PlacementRegistry::instance().find("eplb")->make(spec.params, sc.shape);
    PlacementMap map = p->initial(sc.shape);
    const std::vector<double> hot0{50, 1, 1, 1, 1, 1, 1, 1}, hot7{1, 1, 1, 1, 1, 1, 1, 50};
    p->observe(0, hot0, map);
    const std::vector<int> first = map.logcnt;
    p->observe(1, hot7, map);
    return std::pair{first, map.logcnt};
  };
  const auto [once_first, once_then] = placement_after(1);
  CHECK(once_first[0] == 3);  // the hot expert gets both redundant replicas
  CHECK(once_then == once_first);
  const auto [every_first, every_then] = placement_after(0);
  CHECK(every_first == once_first);
  CHECK(every_then[7] == 3);
  CHECK(every_then[0] == 1);
}
