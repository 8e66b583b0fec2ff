// The calibrated stream's sampler against exact Plackett-Luce probabilities,
// its structure, and its determinism.
#include <catch2/catch.hpp>

#include <set>

#include "../testing/fixtures.hpp"
#include "calibrate/alias_table.hpp"
#include "calibrate/routing_stats.hpp"
#include "calibrate/stream_model.hpp"

using namespace moesim;

namespace {

StreamModel one_layer(std::vector<double> w, int k, double type_weight, double topic_weight) {
  StreamModel m;
  m.experts = int(w.size());
  m.top_k = k;
  m.layer_ids = {0};
  m.popularity = {w};
  m.weight = {w};
  m.type_weight = type_weight;
  m.topic_weight = topic_weight;
  m.hot_experts = 1;
  return m;
}

}  // namespace

TEST_CASE("alias table draws in proportion to the weights, never a zero weight", "[calibrate]") {
  const std::vector<double> w{4, 0, 3, 1};
  AliasTable table(w);
  Rng rng(7);
  std::vector<double> n(4, 0.0);
  const int draws = 200000;
  for (int i = 0; i < draws; ++i) n[table.draw(rng)] += 1.0;
  CHECK(n[1] == 0.0);
  CHECK(n[0] / draws == Approx(0.5).margin(0.005));
  CHECK(n[2] / draws == Approx(0.375).margin(0.005));
  CHECK(n[3] / draws == Approx(0.125).margin(0.005));
}

TEST_CASE("without boosts a token's experts are a Plackett-Luce draw from the weights", "[calibrate]") {
  // w = (4, 2, 1, 1), k = 2: P(first = i) = w_i/8; P(i chosen) = w_i/8 + Σ_{j≠i} (w_j/8)·w_i/(8 − w_j).
  const std::vector<double> w{4, 2, 1, 1};
  const StreamGenerator gen(one_layer(w, 2, 0.0, 0.0));
  Rng rng(3);
  std::vector<double> first(4, 0.0), chosen(4, 0.0);
  const int draws = 200000;
  std::int32_t e[2];
  float g[2];
  for (int i = 0; i < draws; ++i) {
    gen.route(0, {0, 0}, rng, e, g);
    REQUIRE(e[0] != e[1]);
    CHECK(g[0] + g[1] == Approx(1.0f));
    first[e[0]] += 1.0;
    chosen[e[0]] += 1.0;
    chosen[e[1]] += 1.0;
  }
  for (int i = 0; i < 4; ++i) {
    double p = w[i] / 8;
    for (int j = 0; j < 4; ++j)
      if (j != i) p += w[j] / 8 * w[i] / (8 - w[j]);
    CHECK(first[i] / draws == Approx(w[i] / 8).margin(0.004));
    CHECK(chosen[i] / draws == Approx(p).margin(0.004));
  }
}

TEST_CASE("a type's expert gets the weight type_weight × the layer's total", "[calibrate]") {
  // One type (vocabulary 1) whose expert is dealt first (the most popular, 0):
  // weights (4+16·8, 2, 1, 1) → P(first = 0) = 132/136.
  StreamModel m = one_layer({4, 2, 1, 1}, 1, 16.0, 0.0);
  m.vocabulary = 1;
  const StreamGenerator gen(m);
  Rng rng(5);
  int zero = 0;
  std::int32_t e[1];
  float g[1];
  for (int i = 0; i < 100000; ++i) {
    gen.route(0, {0, 0}, rng, e, g);
    zero += e[0] == 0;
  }
  CHECK(zero / 100000.0 == Approx(132.0 / 136.0).margin(0.003));
}

TEST_CASE("an expert of zero popularity is never chosen; samples are deterministic in their seed", "[calibrate]") {
  StreamModel m;
  m.experts = 16;
  m.top_k = 4;
  m.layer_ids = {0, 1};
  m.popularity = {std::vector<double>(16, 1.0 / 16), std::vector<double>(16, 1.0 / 16)};
  m.popularity[1][0] = 0.0;  // never chosen: never dealt
  m.weight = m.popularity;
  m.vocabulary = 64;
  m.vocabulary_zipf = 0.0;
  m.topics = 8;
  m.hot_experts = 2;
  const StreamGenerator gen(m);
  const RoutingTrace a = gen.sample(11, 500, 100), b = gen.sample(11, 500, 100), c = gen.sample(12, 500, 100);
  CHECK(a.expert == b.expert);
  CHECK(a.expert != c.expert);
  for (std::int64_t t = 0; t < a.tokens(); ++t) {
    const std::int32_t* x = a.at(t, 1);
    CHECK(std::set<std::int32_t>(x, x + 4).size() == 4);
    CHECK(std::find(x, x + 4, 0) == x + 4);
  }
}

TEST_CASE("a sampled stream written as a pairs trace reads back with the same statistics", "[calibrate]") {
  StreamModel m;
  m.experts = 16;
  m.top_k = 2;
  m.layer_ids = {1, 4, 7};
  m.popularity = RealMatrix(3, std::vector<double>(16, 1.0));
  m.weight = m.popularity;
  m.topics = 4;
  m.hot_experts = 2;
  const RoutingTrace t = StreamGenerator(m).sample(3, 200);
  std::string text;
  for (std::int64_t i = 0; i < t.tokens(); ++i) append_pairs_line(text, t.layer_ids, t.at(i, 0), t.top_k);
  testing::TempDir dir;
  testing::write_text(dir.file("t.jsonl"), text);
  const RoutingTrace back = read_pairs_trace(dir.file("t.jsonl"));
  CHECK(back.layer_ids == t.layer_ids);
  CHECK(back.expert == t.expert);
  CHECK(measure(back).mean_locality() == measure(t).mean_locality());
}
