// Hand-worked checks of the per-expert capacity and its two drop policies
// (MODEL.md §5). Layout: assignment a = t*k + j, j = rank within the token.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "moesim/drop_rules.hpp"

namespace moesim {
namespace {

using Keep = std::vector<std::uint8_t>;

Keep run_capacity(const std::vector<std::int32_t>& expert, const std::vector<float>& gate, int T,
                  int k, int E, std::int64_t cap, CapacityPolicy policy) {
  Keep keep(expert.size(), 7);  // garbage: every entry must be overwritten
  CapacityWorkspace ws;
  capacity_keep(expert, gate, T, k, E, cap, policy, keep, ws);
  return keep;
}

// T=4, k=2, E=3. Rows are tokens, columns ranks.
//   t0: e0 .5  e1 .3
//   t1: e0 .6  e2 .2
//   t2: e0 .5  e1 .4
//   t3: e1 .7  e0 .2
const std::vector<std::int32_t> kExpert{0, 1, 0, 2, 0, 1, 1, 0};
const std::vector<float> kGate{.5f, .3f, .6f, .2f, .5f, .4f, .7f, .2f};

}  // namespace

TEST_CASE("expert_capacity is max(ceil(cf*T*k/E), min_capacity)", "[drop][capacity]") {
  CHECK(expert_capacity(1.0, 4, 2, 4, 0) == 2);
  CHECK(expert_capacity(1.25, 10, 2, 8, 0) == 4);   // 3.125 -> 4
  CHECK(expert_capacity(1.25, 8, 2, 4, 0) == 5);    // exactly 5 (1.25 is exact in binary)
  CHECK(expert_capacity(0.5, 4, 1, 4, 0) == 1);     // 0.5 -> 1
  CHECK(expert_capacity(0.5, 4, 1, 4, 3) == 3);     // min_capacity wins
  CHECK(expert_capacity(0.0, 4, 1, 4, 0) == 0);
  CHECK(expert_capacity(2.0, 4096, 8, 64, 0) == 1024);
  CHECK(expert_capacity(1.0, 4, 3, 6, 1) == 2);     // DeepSpeed TestTopkGate vector 2
}

TEST_CASE("expert_capacity is plain ceil in double, as FORMATS.md fixes it", "[drop][capacity]") {
  // The contract is the naive double evaluation, so that a Python checker's
  // math.ceil(cf*T*k/E) agrees bit for bit, including where decimal cf values
  // overshoot an integer by one ulp.
  CHECK(expert_capacity(1.1, 100, 1, 1, 0) == 111);  // 110.00000000000001
  CHECK(expert_capacity(1.1, 100, 8, 80, 0) == 12);  // 11.000000000000002
  CHECK(expert_capacity(2.2, 100, 1, 4, 0) == 56);   // 55.00000000000001
  CHECK(expert_capacity(1.25, 100, 1, 4, 0) == 32);  // 31.25, exact in binary
  CHECK(expert_capacity(1.0, 64, 2, 8, 0) == 16);
  CHECK(ceil_snapped(3.0000001) == 4);
  CHECK(ceil_snapped(3.0) == 3);
  CHECK(ceil_snapped(-0.5) == 0);
  CHECK(floor_snapped(0.29 * 100) == 28);  // 28.999999999999996
  CHECK(floor_snapped(2.9999999) == 2);
}

TEST_CASE("expert_capacity rejects impossible arguments", "[drop][capacity]") {
  CHECK_THROWS_AS(expert_capacity(-1.0, 4, 2, 4, 0), std::invalid_argument);
  CHECK_THROWS_AS(expert_capacity(NAN, 4, 2, 4, 0), std::invalid_argument);
  CHECK_THROWS_AS(expert_capacity(1.0, 4, 0, 4, 0), std::invalid_argument);
  CHECK_THROWS_AS(expert_capacity(1.0, 4, 2, 0, 0), std::invalid_argument);
  CHECK_THROWS_AS(ceil_snapped(INFINITY), std::invalid_argument);
}

TEST_CASE("capacity probs keeps the highest gates per expert, ties to the lower token",
          "[drop][capacity]") {
  // e0: t0 .5, t1 .6, t2 .5, t3 .2 -> keep t1, t0 (tie .5 with t2: lower token)
  // e1: t0 .3, t2 .4, t3 .7        -> keep t3, t2
  // e2: t1 .2                      -> keep
  CHECK(run_capacity(kExpert, kGate, 4, 2, 3, 2, CapacityPolicy::probs) ==
        Keep{1, 0, 1, 1, 0, 1, 1, 0});
  // capacity 1: e0 keeps t1 (.6), e1 keeps t3 (.7), e2 keeps t1
  CHECK(run_capacity(kExpert, kGate, 4, 2, 3, 1, CapacityPolicy::probs) ==
        Keep{0, 0, 1, 1, 0, 0, 1, 0});
}

TEST_CASE("capacity position keeps all first choices before second choices", "[drop][capacity]") {
  // e0: rank0 t0, t1, t2 then rank1 t3 -> keep t0, t1
  // e1: rank0 t3 then rank1 t0, t2     -> keep t3, t0
  CHECK(run_capacity(kExpert, kGate, 4, 2, 3, 2, CapacityPolicy::position) ==
        Keep{1, 1, 1, 1, 0, 0, 1, 0});
  // capacity 1: e1 keeps t3 (its only first choice) although t0 has the lower index
  CHECK(run_capacity(kExpert, kGate, 4, 2, 3, 1, CapacityPolicy::position) ==
        Keep{1, 0, 0, 1, 0, 0, 1, 0});
}

TEST_CASE("capacity tie-breaks on equal gates go to the lower token index", "[drop][capacity]") {
  const std::vector<std::int32_t> expert{0, 0, 0, 0};
  CHECK(run_capacity(expert, {.25f, .25f, .25f, .25f}, 4, 1, 1, 2, CapacityPolicy::probs) ==
        Keep{1, 1, 0, 0});
  CHECK(run_capacity(expert, {.25f, .25f, .5f, .25f}, 4, 1, 1, 2, CapacityPolicy::probs) ==
        Keep{1, 0, 1, 0});
  CHECK(run_capacity(expert, {.1f, .2f, .3f, .4f}, 4, 1, 1, 2, CapacityPolicy::probs) ==
        Keep{0, 0, 1, 1});
  CHECK(run_capacity(expert, {.1f, .2f, .3f, .4f}, 4, 1, 1, 2, CapacityPolicy::position) ==
        Keep{1, 1, 0, 0});
}

TEST_CASE("capacity 0 drops everything, a large capacity nothing", "[drop][capacity]") {
  for (auto policy : {CapacityPolicy::probs, CapacityPolicy::position}) {
    CHECK(run_capacity(kExpert, kGate, 4, 2, 3, 0, policy) == Keep(8, 0));
    CHECK(run_capacity(kExpert, kGate, 4, 2, 3, 4, policy) == Keep(8, 1));
  }
}

TEST_CASE("capacity_keep reuses its workspace without reallocating", "[drop][capacity]") {
  CapacityWorkspace ws;
  Keep keep(8);
  capacity_keep(kExpert, kGate, 4, 2, 3, 2, CapacityPolicy::probs, keep, ws);
  const auto* order = ws.order.data();
  const auto* offset = ws.offset.data();
  // A second call on different data gives its own answer from the same buffers.
  const std::vector<float> gate2{.1f, .1f, .1f, .1f, .9f, .1f, .1f, .1f};
  capacity_keep(kExpert, gate2, 4, 2, 3, 1, CapacityPolicy::probs, keep, ws);
  // e0: t2 (.9); e1: t0 (all .1, lowest token); e2: t1; t3 loses both
  CHECK(keep == Keep{0, 1, 0, 1, 1, 0, 0, 0});
  CHECK(ws.order.data() == order);
  CHECK(ws.offset.data() == offset);
}

TEST_CASE("capacity_keep rejects mismatched sizes and bad expert ids", "[drop][capacity]") {
  CapacityWorkspace ws;
  Keep keep(8);
  CHECK_THROWS_AS(capacity_keep(kExpert, kGate, 4, 2, 2, 2, CapacityPolicy::probs, keep, ws),
                  std::invalid_argument);  // expert 2 not in [0, 2)
  Keep short_keep(7);
  CHECK_THROWS_AS(
      capacity_keep(kExpert, kGate, 4, 2, 3, 2, CapacityPolicy::position, short_keep, ws),
      std::invalid_argument);
}

}  // namespace moesim
