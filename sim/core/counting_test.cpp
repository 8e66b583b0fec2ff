// Per-step counts on a hand-worked routing (MODEL.md §7).
#include <catch2/catch.hpp>

#include "../testing/fixtures.hpp"
#include "counting.hpp"

using namespace moesim;

TEST_CASE("routed, processed, per-sequence MaxVio and drop tallies", "[metrics][counting]") {
  // 2 sequences × 2 tokens, E = 4, k = 2. Sequence 0: tokens (0,1) and (0,2);
  // sequence 1: tokens (3,2) with expert 2 dropped, and (1,0) fully dropped.
  Scenario sc = testing::tiny_scenario(
      R"({"model":{"experts":4,"top_k":2,"hidden":4},"batch":{"sequences":2,"seq_len":2}})");
  StepData d;
  d.resize(sc.shape);
  d.expert = {0, 1, 0, 2, 3, 2, 1, 0};
  d.keep = {1, 1, 1, 1, 1, 0, 0, 0};
  const std::vector<std::uint8_t> protected_seq{0, 1};
  count_loads(d, sc.shape, protected_seq);
  CHECK(d.routed == std::vector<double>{3, 2, 2, 1});
  CHECK(d.processed == std::vector<double>{2, 1, 1, 1});
  CHECK(d.dropped == 3);
  CHECK(d.tokens_fully_dropped == 1);
  CHECK(d.sequences_with_drops == 1);
  CHECK(d.protected_drops == 3);  // all of sequence 1's drops
  // Per sequence c̄ = L·k/E = 1. Sequence 0 loads (2,1,1,0): MaxVio 1;
  // sequence 1 loads (1,1,1,1): MaxVio 0.
  CHECK(d.seq_max_vio == std::vector<double>{1.0, 0.0});
}
