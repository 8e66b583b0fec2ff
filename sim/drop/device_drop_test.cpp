// Hand-worked checks of the DeepSeek-V2 device-level drop (MODEL.md §5).
#include <catch2/catch.hpp>

#include <cstdint>
#include <stdexcept>
#include <vector>

#include "moesim/drop_rules.hpp"

namespace moesim {
namespace {

using Keep = std::vector<std::uint8_t>;

Keep run_device(const std::vector<std::int32_t>& expert, const std::vector<float>& affinity,
                const std::vector<std::int32_t>& device_of_expert, int T, int k, int L, int D,
                std::int64_t cap, double p) {
  Keep keep(expert.size(), 7);  // garbage: every entry must be overwritten
  DeviceDropWorkspace ws;
  device_keep(expert, affinity, device_of_expert, T, k, L, D, cap, p, keep, ws);
  return keep;
}

}  // namespace

TEST_CASE("device_capacity is ceil(cf*T*k/D)", "[drop][device]") {
  CHECK(device_capacity(1.0, 8, 2, 4) == 4);
  CHECK(device_capacity(1.0, 10, 3, 4) == 8);   // 7.5 -> 8
  CHECK(device_capacity(1.1, 100, 1, 1) == 111);  // plain double: 110.00000000000001
  CHECK(device_capacity(0.0, 8, 2, 4) == 0);
  CHECK_THROWS_AS(device_capacity(1.0, 8, 2, 0), std::invalid_argument);
}

TEST_CASE("is_protected spreads floor(N*p) protected sequences evenly", "[drop][device]") {
  // p = 0.1: sequences 9, 19, 29, ... (floor((n+1)/10) steps up at n = 9).
  for (int n = 0; n < 40; ++n) CHECK(is_protected(n, 0.1) == (n % 10 == 9));
  CHECK(is_protected(1, 0.5));
  CHECK_FALSE(is_protected(0, 0.5));
  CHECK_FALSE(is_protected(5, 0.0));
  CHECK(is_protected(0, 1.0));
  CHECK(is_protected(7, 1.0));
  // The formula is evaluated plainly in double (FORMATS.md): 100·0.29 is
  // 28.999999999999996, so n = 99 is not protected and 28 of the first 100
  // sequences are (n = 100 catches up: floor(101·0.29) = 29).
  CHECK_FALSE(is_protected(99, 0.29));
  CHECK(is_protected(100, 0.29));
  int count = 0;
  for (int n = 0; n < 100; ++n) count += is_protected(n, 0.29) ? 1 : 0;
  CHECK(count == 28);
}

TEST_CASE("device drop keeps protected sequences and the highest unprotected affinities",
          "[drop][device]") {
  // E=4 on D=2 devices: e0,e1 -> d0; e2,e3 -> d1. k=2, L=2, B=2, p=0.5:
  // sequence 1 (tokens 2, 3) is protected.
  //   t0: e0 .5  e1 .4   (both on d0: two assignments)
  //   t1: e1 .5  e2 .3
  //   t2: e0 .2  e3 .6   protected
  //   t3: e1 .1  e0 .1   protected
  // d0: protected t2e0, t3e1, t3e0 (3); unprotected t0e0 .5, t0e1 .4, t1e1 .5.
  // capacity 4 -> room 1: t0e0 wins the .5 tie with t1e1 (lower token).
  const std::vector<std::int32_t> expert{0, 1, 1, 2, 0, 3, 1, 0};
  const std::vector<float> s{.5f, .4f, .5f, .3f, .2f, .6f, .1f, .1f};
  const std::vector<std::int32_t> dev{0, 0, 1, 1};
  CHECK(run_device(expert, s, dev, 4, 2, 2, 2, 4, 0.5) == Keep{1, 0, 0, 1, 1, 1, 1, 1});
  // capacity 2 < protected 3 on d0: protected all kept, every unprotected on d0 dropped.
  CHECK(run_device(expert, s, dev, 4, 2, 2, 2, 2, 0.5) == Keep{0, 0, 0, 1, 1, 1, 1, 1});
  // capacity 0: only protected assignments survive, on both devices.
  CHECK(run_device(expert, s, dev, 4, 2, 2, 2, 0, 0.5) == Keep{0, 0, 0, 0, 1, 1, 1, 1});
  // no protection, capacity 3: d0 has t0e0 .5, t0e1 .4, t1e1 .5, t2e0 .2, t3e1 .1, t3e0 .1
  // -> keep t0e0, t1e1, t0e1; d1 has t1e2, t2e3 -> keep both.
  CHECK(run_device(expert, s, dev, 4, 2, 2, 2, 3, 0.0) == Keep{1, 1, 1, 1, 0, 1, 0, 0});
  // no protection, capacity 5 on d0: the .1 tie between t3e1 and t3e0 (same
  // token) goes to the lower expert index, e0, which is t3's second choice.
  CHECK(run_device(expert, s, dev, 4, 2, 2, 2, 5, 0.0) == Keep{1, 1, 1, 1, 1, 1, 0, 1});
}

TEST_CASE("device drop ties: lower token, then lower expert, not rank", "[drop][device]") {
  // One device, k=2, L=1. Token 0 ranked e1 before e0 (say a bias), same s.
  const std::vector<std::int32_t> dev{0, 0, 0};
  CHECK(run_device({1, 0}, {.5f, .5f}, dev, 1, 2, 1, 1, 1, 0.0) == Keep{0, 1});
  // Equal s across tokens: the lower token index is kept.
  CHECK(run_device({2, 0, 1}, {.3f, .3f, .3f}, dev, 3, 1, 1, 1, 2, 0.0) == Keep{1, 1, 0});
  // Affinity dominates token order.
  CHECK(run_device({2, 0, 1}, {.1f, .2f, .3f}, dev, 3, 1, 1, 1, 2, 0.0) == Keep{0, 1, 1});
}

TEST_CASE("device drop keeps protected sequences even when they alone exceed capacity",
          "[drop][device]") {
  const std::vector<std::int32_t> dev{0, 0};
  // Everything protected (p = 1), capacity 1, four assignments on d0.
  CHECK(run_device({0, 1, 0, 1}, {.1f, .2f, .3f, .4f}, dev, 2, 2, 1, 1, 1, 1.0) == Keep(4, 1));
  // An under-loaded device drops nothing.
  CHECK(run_device({0, 1, 0, 1}, {.1f, .2f, .3f, .4f}, dev, 2, 2, 1, 1, 4, 0.0) == Keep(4, 1));
}

TEST_CASE("device_keep rejects bad shapes and ids", "[drop][device]") {
  DeviceDropWorkspace ws;
  Keep keep(4);
  const std::vector<std::int32_t> expert{0, 1, 0, 1};
  const std::vector<float> s{.1f, .2f, .3f, .4f};
  CHECK_THROWS_AS(device_keep(expert, s, std::vector<std::int32_t>{0, 2}, 2, 2, 1, 2, 1, 0.0,
                              keep, ws),
                  std::invalid_argument);  // device 2 not in [0, 2)
  CHECK_THROWS_AS(device_keep(expert, s, std::vector<std::int32_t>{0}, 2, 2, 1, 1, 1, 0.0, keep,
                              ws),
                  std::invalid_argument);  // expert 1 has no device
  CHECK_THROWS_AS(device_keep(expert, s, std::vector<std::int32_t>{0, 0}, 3, 2, 2, 1, 1, 0.0,
                              keep, ws),
                  std::invalid_argument);  // T*k != 4 and T % L != 0
}

}  // namespace moesim
