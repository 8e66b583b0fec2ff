// The memory estimate names the buffer that sizes a run and counts it exactly.
#include "memory_estimate.hpp"

#include <catch2/catch.hpp>

#include "../testing/fixtures.hpp"

using namespace moesim;

TEST_CASE("memory estimate: a global loss's window, at most the run's steps", "[scenario][memory]") {
  Scenario sc = testing::tiny_scenario(
      R"({"record": {"per_step_loads": false}, "strategies": [{"name": "g", "balancers": [{"type": "aux_loss", "scope": "global", "window": 50}]}]})");
  sc.steps = 100000;
  sc.record.every = 1000;
  sc.shape.experts = 4096;
  sc.strategies[0].balancers[0].params.set("window", std::int64_t(100000));
  MemoryEstimate m = estimate_memory(sc);
  CHECK(m.largest_pointer == "/strategies/0/balancers/0/window");
  CHECK(m.largest == std::int64_t(8) * 100000 * (4096 + 2 + 1));  // window × (experts + devices + 1) doubles
  CHECK(m.bytes > m.largest);
  sc.steps = 16;  // a longer window than the run is never filled: it costs what a 16-step window does
  const std::int64_t capped = estimate_memory(sc).bytes;
  sc.strategies[0].balancers[0].params.set("window", std::int64_t(16));
  CHECK(estimate_memory(sc).bytes == capped);
}

TEST_CASE("memory estimate: hidden vectors and per-step loads", "[scenario][memory]") {
  Scenario sc = testing::tiny_scenario();
  sc.shape.hidden = 8192;
  sc.shape.sequences = 4096;
  sc.shape.seq_len = 1024;
  MemoryEstimate m = estimate_memory(sc);
  CHECK(m.largest_pointer == "/model/hidden");
  CHECK(m.largest == std::int64_t(4) * 4096 * 1024 * 8192);  // 128 GiB of float hidden vectors
  Scenario loads = testing::tiny_scenario();
  loads.steps = 10'000'000;
  loads.shape.experts = 64;  // 2·64 + 3·2 numbers a step, more than the ~32 series
  const MemoryEstimate l = estimate_memory(loads);
  CHECK(l.largest_pointer == "/record/per_step_loads");
  CHECK(l.bytes > memory_limit_bytes() / 1000);  // sanity: the limit is physical memory at most
  CHECK(memory_limit_bytes() > (std::int64_t(1) << 28));
}
