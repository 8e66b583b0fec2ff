// Simple placements and the even split of tokens over replicas.
#include <catch2/catch.hpp>

#include "moesim/error.hpp"
#include "moesim/placement.hpp"

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
