// Simple placements and the even split of tokens over replicas.
#include <catch2/catch.hpp>

#include <numeric>
#include <span>
#include <stdexcept>
#include <vector>

#include "moesim/error.hpp"
#include "moesim/placement.hpp"
#include "moesim/rng.hpp"

using namespace moesim;

TEST_CASE("placement: contiguous and round-robin", "[placement]") {
  const PlacementMap c = contiguous(8, 4);
  CHECK(c.slots_per_device == 2);
  CHECK(c.phy2log == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7});
  CHECK(c.device_of_slot(5) == 2);  // expert 5 on device 5 / 2
  const PlacementMap r = round_robin(8, 4);
  CHECK(r.phy2log == std::vector<int>{0, 4, 1, 5, 2, 6, 3, 7});
  CHECK(r.log2phy[5] == std::vector<int>{3});
  CHECK(r.device_of_slot(r.log2phy[5][0]) == 1);  // 5 mod 4
  CHECK(r.logcnt == std::vector<int>(8, 1));
  CHECK_THROWS_AS(contiguous(6, 4), ParamError);
}

TEST_CASE("placement: phy2log is checked", "[placement]") {
  CHECK_THROWS_AS(placement_from_phy2log({0, 1, 1}, 2, 2), ParamError);  // 3 slots on 2 devices
  CHECK_THROWS_AS(placement_from_phy2log({0, 0}, 2, 2), ParamError);     // expert 1 nowhere
  CHECK_THROWS_AS(placement_from_phy2log({0, 2}, 2, 2), ParamError);     // no expert 2
}

TEST_CASE("placement: replicas share tokens evenly, remainder to the first ranks", "[placement]") {
  CHECK(replica_share(7, 3, 0) == 3);
  CHECK(replica_share(7, 3, 1) == 2);
  CHECK(replica_share(7, 3, 2) == 2);
  CHECK(replica_share(8, 3, 1) == 3);
  CHECK(replica_share(8, 3, 2) == 2);
  CHECK(replica_share(2.5, 2, 1) == 1.25);
  CHECK(replica_share(5, 1, 0) == 5);
  // Expert 0 has replicas in slots 0 (rank 0) and 3 (rank 1); 2 devices × 2 slots.
  const PlacementMap m = placement_from_phy2log({0, 1, 2, 0}, 3, 2);
  CHECK(slot_loads(m, {9, 4, 1}) == std::vector<double>{5, 4, 1, 4});
  CHECK(device_loads(m, {9, 4, 1}) == std::vector<double>{9, 5});
}

TEST_CASE("ReplicaIndex looks up the replica of PlacementMap::slot_for and device_for", "[placement]") {
  // 40 experts on 12 devices of 5 slots: 20 redundant slots, so replica
  // counts from 1 to 4, and tokens up to the 32-bit limit of the multiply.
  std::vector<int> phy2log(60);
  for (int j = 0; j < 60; ++j) phy2log[std::size_t(j)] = j < 40 ? (j * 7) % 40 : (j * 3) % 9;
  const PlacementMap map = placement_from_phy2log(phy2log, 40, 12);
  const ReplicaIndex index(map);
  CHECK(index.replicated());
  Rng rng(4);
  for (int i = 0; i < 20000; ++i) {
    const int e = int(rng.next() % 40);
    // Small tokens, tokens just below 2³², and any.
    const std::uint32_t t = i < 1000   ? std::uint32_t(i)
                            : i < 2000 ? ~std::uint32_t(0) - std::uint32_t(i)
                                       : std::uint32_t(rng.next());
    INFO("expert " << e << ", token " << t);
    REQUIRE(index.replica_for(e, t).slot == map.slot_for(e, t));
    REQUIRE(index.replica_for(e, t).device == map.device_for(e, t));
  }
  for (int slot = 0; slot < 60; ++slot) CHECK(index.device_of_slot(slot) == map.device_of_slot(slot));
  CHECK_FALSE(ReplicaIndex(contiguous(40, 8)).replicated());
  // Re-indexing replaces the previous map, multipliers and all.
  ReplicaIndex reused(map);
  reused.index(contiguous(40, 8));
  CHECK_FALSE(reused.replicated());
  CHECK(reused.replica_for(39, 12345).device == 7);
}

TEST_CASE("ReplicaIndex refuses an expert without a replica or a slot out of range", "[placement]") {
  PlacementMap map = contiguous(8, 4);
  map.log2phy[3].clear();
  CHECK_THROWS_AS(ReplicaIndex(map), std::invalid_argument);
  map = contiguous(8, 4);
  map.log2phy[3] = {8};
  CHECK_THROWS_AS(ReplicaIndex(map), std::invalid_argument);
}

TEST_CASE("ReplicaIndex's rows are each token's devices and replicas, tabulated or not", "[placement]") {
  // Replica counts 1–4 (period 12, tabulated) and 1, 5, 7, 9 (period 315,
  // beyond the table: written per token, and no replica rows); and a map
  // without rows asked.
  const auto map_with = [](std::vector<int> extra) {
    std::vector<int> phy2log(40);
    std::iota(phy2log.begin(), phy2log.end(), 0);
    phy2log.insert(phy2log.end(), extra.begin(), extra.end());
    return placement_from_phy2log(phy2log, 40, int(phy2log.size()) / 4);
  };
  const std::vector<int> short_period = {1, 2, 2, 3, 3, 3, 5, 6, 6, 6, 7, 7, 7, 8, 8, 8};    // 56 slots, 14 devices
  const std::vector<int> long_period = {1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 9, 9};  // 60, 15
  for (const auto& extra : {short_period, long_period}) {
    const PlacementMap map = map_with(extra);
    for (unsigned rows : {ReplicaIndex::device_rows | ReplicaIndex::replica_rows, unsigned(ReplicaIndex::device_rows),
                          unsigned(ReplicaIndex::replica_rows), unsigned(ReplicaIndex::no_rows)}) {
      const ReplicaIndex index(map, rows);
      const bool tabulated = (rows & ReplicaIndex::replica_rows) != 0 && extra == short_period;
      INFO("rows " << rows << ", period " << (extra == short_period ? 12 : 315));
      CHECK((index.replica_row(0) != nullptr) == tabulated);
      std::vector<std::int32_t> scratch;
      for (std::uint32_t t : {0u, 1u, 11u, 12u, 13u, 314u, 315u, 100003u, 4294967295u}) {
        const std::span<const std::int32_t> row = index.device_row(t, scratch);
        REQUIRE(row.size() == 40);
        for (int e = 0; e < 40; ++e) REQUIRE(row[std::size_t(e)] == map.device_for(e, t));
        if (!tabulated) continue;
        const ReplicaIndex::Replica* replicas = index.replica_row(t);
        for (int e = 0; e < 40; ++e) {
          REQUIRE(replicas[e].slot == map.slot_for(e, t));
          REQUIRE(replicas[e].device == map.device_for(e, t));
        }
      }
    }
  }
  // Rows past kMaxReplicaRowEntries are not tabulated: 1,024 experts with
  // replica counts 1–3 (period 6, 6,144 entries) get device rows only.
  std::vector<int> wide(1024);
  std::iota(wide.begin(), wide.end(), 0);
  wide.insert(wide.end(), {0, 1, 1, 5, 6, 7, 8, 9});
  const ReplicaIndex big(placement_from_phy2log(wide, 1024, 8), ReplicaIndex::device_rows | ReplicaIndex::replica_rows);
  CHECK(big.replica_row(0) == nullptr);
}

TEST_CASE("ReplicaIndex refuses slots that are not devices × slots_per_device", "[placement]") {
  PlacementMap map = contiguous(8, 4);
  map.phy2log.push_back(0);
  CHECK_THROWS_AS(ReplicaIndex(map), std::invalid_argument);
}
