// Synthetic stream (MODEL.md §1): Zipf popularity, coherent sequences, drift, determinism.
#include <catch2/catch.hpp>
#include <cmath>
#include <utility>
#include <vector>

#include "../testing/fixtures.hpp"
#include "moesim/components.hpp"
#include "popularity.hpp"

using namespace moesim;

namespace {
std::unique_ptr<TokenSource> make_source(const Scenario& sc) {
  auto src = SourceRegistry::instance().find(sc.stream.type)->make(sc.stream.params, sc.shape);
  src->seed(sc.seed);
  return src;
}
}  // namespace

TEST_CASE("Zipf popularity, rotation, schedule and bursts", "[source]") {
  Scenario sc = testing::tiny_scenario(R"({"stream":{"domains":3,"zipf":1.0}})");
  Popularity pop(sc.stream.params, 3);
  // π ∝ (1, 1/2, 1/3) → (6, 3, 2)/11.
  auto w = pop.weights(0);
  CHECK(w[0] == Approx(6.0 / 11));
  CHECK(w[2] == Approx(2.0 / 11));
  Scenario rot = testing::tiny_scenario(R"({"stream":{"domains":3,"zipf":1.0,"rotate_every":10}})");
  Popularity rp(rot.stream.params, 3);
  CHECK(rp.weights(9)[0] == Approx(6.0 / 11));
  CHECK(rp.weights(10)[1] == Approx(6.0 / 11));  // domain 1 takes domain 0's popularity
  CHECK(rp.weights(20)[2] == Approx(6.0 / 11));
  Scenario sch = testing::tiny_scenario(R"({"stream":{"domains":2,"schedule":[[1,0],[1,3]],"schedule_every":5}})");
  Popularity sp(sch.stream.params, 2);
  CHECK(sp.weights(4)[1] == 0.0);
  CHECK(sp.weights(5)[1] == Approx(0.75));
  CHECK(sp.weights(500)[1] == Approx(0.75));  // the last entry persists
  Scenario burst = testing::tiny_scenario(
      R"({"stream":{"domains":2,"zipf":0,"burst_every":10,"burst_length":2,"burst_factor":3,"burst_domain":1}})");
  Popularity bp(burst.stream.params, 2);
  CHECK(bp.weights(11)[1] == Approx(0.75));
  CHECK(bp.weights(12)[1] == Approx(0.5));
}

TEST_CASE("sequences are coherent with mix = 0 and domains follow the popularity", "[source]") {
  Scenario sc = testing::tiny_scenario(R"({"batch":{"sequences":400,"seq_len":8},"stream":{"domains":3,"zipf":1.0}})");
  auto src = make_source(sc);
  StepData data;
  data.resize(sc.shape);
  src->next(0, 0, data);
  std::vector<double> count(3, 0.0);
  for (int n = 0; n < 400; ++n) {
    for (int j = 1; j < 8; ++j) CHECK(data.domain[n * 8 + j] == data.domain[n * 8]);
    count[data.domain[n * 8]] += 1;
  }
  // 400 draws from (6,3,2)/11: expect 218 ± 3σ (σ ≈ 10).
  CHECK(count[0] == Approx(400 * 6.0 / 11).margin(30));
  CHECK(count[2] == Approx(400 * 2.0 / 11).margin(25));
}

TEST_CASE("mix = 1 makes tokens independent of their sequence", "[source]") {
  Scenario sc = testing::tiny_scenario(R"({"batch":{"sequences":50,"seq_len":20},"stream":{"domains":4,"zipf":0,"mix":1}})");
  auto src = make_source(sc);
  StepData data;
  data.resize(sc.shape);
  src->next(3, 0, data);
  int same = 0;
  for (int t = 0; t < 1000; ++t) same += data.domain[t] == data.domain[(t / 20) * 20];
  // Each non-first token matches the first with prob. 1/4: ≈ 50 + 950/4 = 287.
  CHECK(same == Approx(287).margin(60));
}

TEST_CASE("tokens scatter around their domain centre with the configured noise", "[source]") {
  Scenario sc = testing::tiny_scenario(R"({"model":{"hidden":64},"batch":{"sequences":64,"seq_len":64},"stream":{"domains":1,"noise":0.5,"spread":1.0}})");
  auto src = make_source(sc);
  StepData data;
  data.resize(sc.shape);
  src->next(0, 0, data);
  // With one domain, the per-dimension mean is μ and the variance σ² = 0.25.
  double var = 0.0;
  const int T = sc.shape.tokens(), d = 64;
  for (int i = 0; i < d; ++i) {
    double mean = 0.0, sq = 0.0;
    for (int t = 0; t < T; ++t) mean += data.x[t * d + i];
    mean /= T;
    for (int t = 0; t < T; ++t) sq += (data.x[t * d + i] - mean) * (data.x[t * d + i] - mean);
    var += sq / T / d;
  }
  CHECK(var == Approx(0.25).epsilon(0.03));
}

TEST_CASE("the stream depends only on the seed and the step", "[source]") {
  Scenario sc = testing::tiny_scenario();
  auto a = make_source(sc), b = make_source(sc);
  StepData da, db;
  da.resize(sc.shape);
  db.resize(sc.shape);
  a->next(0, 0, da);
  a->next(1, 0, da);
  b->next(1, 0, db);  // skipping step 0 changes nothing
  CHECK(da.x == db.x);
  CHECK(da.domain == db.domain);
  Scenario other = testing::tiny_scenario(R"({"seed":8})");
  auto c = make_source(other);
  c->next(1, 0, db);
  CHECK(da.x != db.x);
}

TEST_CASE("next_sequence hands out next()'s tokens, each sequence in order and in chunks", "[source]") {
  // Two layers (layer 1 evolves layer 0's hidden state); 300 tokens a
  // sequence is several chunks, the last one partial.
  Scenario sc = testing::tiny_scenario(R"({"model":{"layers":2},"batch":{"sequences":3,"seq_len":300},
                                          "stream":{"mix":0.3}})");
  auto a = make_source(sc), b = make_source(sc);
  REQUIRE(b->by_sequence());
  StepData whole, by_sequence;
  whole.resize(sc.shape);
  by_sequence.resize(sc.shape);
  struct Chunks final : TokenSink {
    std::vector<std::pair<int, int>> seen;
    void tokens(int t0, int t1) override { seen.emplace_back(t0, t1); }
  } chunks;
  const int L = sc.shape.seq_len;
  for (int layer = 0; layer < 2; ++layer) {
    a->next(4, layer, whole);
    b->prepare(4);
    for (int n = sc.shape.sequences - 1; n >= 0; --n) {  // any order
      chunks.seen.clear();
      b->next_sequence(4, layer, n, by_sequence, chunks);
      REQUIRE(chunks.seen.size() > 1);
      CHECK(chunks.seen.front().first == n * L);
      CHECK(chunks.seen.back().second == (n + 1) * L);
      for (std::size_t c = 1; c < chunks.seen.size(); ++c) CHECK(chunks.seen[c].first == chunks.seen[c - 1].second);
    }
    CHECK(by_sequence.x == whole.x);
    CHECK(by_sequence.domain == whole.domain);
  }
}
