// Router: logits, top-k tie-breaks, scores and gates (MODEL.md §2) on hand-worked numbers.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "../testing/fixtures.hpp"
#include "moesim/components.hpp"
#include "moesim/placement.hpp"
#include "moesim/rng.hpp"
#include "moesim/routing_rules.hpp"
#include "router.hpp"

using namespace moesim;

TEST_CASE("top-k selects in rank order and lower index wins ties", "[router]") {
  const float v[6] = {0.1f, 0.5f, 0.5f, 0.2f, 0.5f, 0.0f};
  std::int32_t out[3];
  select_topk(v, nullptr, 6, 3, out);
  CHECK(out[0] == 1);
  CHECK(out[1] == 2);
  CHECK(out[2] == 4);
  select_topk(v, nullptr, 6, 1, out);
  CHECK(out[0] == 1);
  const std::uint8_t allowed[6] = {1, 0, 0, 1, 1, 1};
  select_topk(v, allowed, 6, 3, out);
  CHECK(out[0] == 4);
  CHECK(out[1] == 3);
  CHECK(out[2] == 0);
}

TEST_CASE("top-k never repeats an expert, even when all values tie", "[router]") {
  const float v[5] = {1, 1, 1, 1, 1};
  std::int32_t out[5];
  select_topk(v, nullptr, 5, 5, out);
  for (int i = 0; i < 5; ++i) CHECK(out[i] == i);
}

namespace {
// One token, 4 experts, logits given by hand.
struct OneToken {
  Scenario sc;
  StepData data;
  explicit OneToken(const std::string& model) {
    sc = testing::tiny_scenario(R"({"mode":"inference","model":{"experts":4,"top_k":2,"hidden":4,)" + model +
                                R"(},"batch":{"sequences":1,"seq_len":1},"cluster":{"devices_per_node":1}})");
    data.resize(sc.shape);
    const float z[4] = {0.0f, std::log(3.0f), std::log(2.0f), 0.0f};
    std::copy(z, z + 4, data.z.begin());
  }
  void route(std::vector<float> bias = {0, 0, 0, 0}) {
    Router router(sc, 1);
    router.scores(data);
    auto none = ConstraintRegistry::instance().find("none")->make({}, sc.shape);
    router.select(data, bias, *none, ReplicaIndex(contiguous(4, 1)));
  }
};
}  // namespace

TEST_CASE("softmax gates are the scores, or normalised over the selection", "[router]") {
  // softmax(0, ln3, ln2, 0) = (1, 3, 2, 1)/7; top-2 = experts 1, 2.
  OneToken t(R"("score":"softmax","route_scale":2.0)");
  t.route();
  CHECK(t.data.s[1] == Approx(3.0 / 7));
  CHECK(t.data.expert[0] == 1);
  CHECK(t.data.expert[1] == 2);
  CHECK(t.data.gate[0] == Approx(2.0 * 3 / 7));  // route_scale 2
  CHECK(t.data.gate[1] == Approx(2.0 * 2 / 7));
  OneToken n(R"("score":"softmax","normalize_gates":true)");
  n.route();
  CHECK(n.data.gate[0] == Approx(0.6));
  CHECK(n.data.gate[1] == Approx(0.4));
}

TEST_CASE("sigmoid gates are normalised; the bias changes selection, never gate values", "[router]") {
  OneToken t(R"("score":"sigmoid")");
  // sigmoid(ln3) = 3/4, sigmoid(ln2) = 2/3, sigmoid(0) = 1/2.
  t.route({0.0f, 0.0f, 0.0f, 0.3f});  // expert 3: 0.5 + 0.3 = 0.8 beats 0.75 and 0.667
  CHECK(t.data.s[1] == Approx(0.75));
  CHECK(t.data.expert[0] == 3);
  CHECK(t.data.expert[1] == 1);
  CHECK(t.data.affinity[0] == Approx(0.5));
  CHECK(t.data.gate[0] == Approx(0.5 / 1.25));
  CHECK(t.data.gate[1] == Approx(0.75 / 1.25));
}

TEST_CASE("logits are x·W for every tile shape, bit-identical across thread counts", "[router]") {
  // E = 256 fills whole expert chunks; E = 72 leaves a partial one. T = 7·17
  // leaves partial token tiles and blocks; d = 13 is odd.
  for (int E : {256, 72}) {
    const Scenario sc = testing::tiny_scenario(
        R"({"model":{"experts":)" + std::to_string(E) +
        R"(,"top_k":2,"hidden":13},"batch":{"sequences":7,"seq_len":17},"cluster":{"nodes":1,"devices_per_node":8}})");
    const int T = sc.shape.tokens(), d = 13;
    Router router(sc, 5);
    StepData data;
    data.resize(sc.shape);
    Rng rng(3);
    for (float& v : data.x) v = float(rng.normal());
    auto logits = [&](int threads) {
      const testing::ThreadCount team(threads);
      router.logits(data);
      return data.z;
    };
    const std::vector<float> one = logits(1);
    CHECK(logits(2) == one);
    const std::vector<float>& W = router.weights();
    for (int t = 0; t < T; ++t)
      for (int e = 0; e < E; ++e) {
        double z = 0.0;
        for (int i = 0; i < d; ++i) z += double(data.x[t * d + i]) * W[i * E + e];
        REQUIRE(data.z[std::size_t(t) * E + e] == Approx(z).epsilon(1e-5).margin(1e-6));
      }
  }
}

TEST_CASE("route_tokens gives the bits of logits, scores and select, storing only the rows asked for", "[router]") {
  // Unrestricted and node-limited routing; chunks of uneven sizes; the first
  // 20 rows of logits and scores stored (a block straddles the boundary).
  const Scenario sc = testing::tiny_scenario(
      R"({"model":{"experts":64,"top_k":6,"hidden":16,"score":"sigmoid"},"batch":{"sequences":3,"seq_len":50},
          "cluster":{"nodes":4,"devices_per_node":2},
          "strategies":[{"name":"free"},{"name":"limited","routing":{"type":"node_limited","m":2}}]})");
  for (const StrategySpec& strategy : sc.strategies) {
    const Shape& shape = sc.shape;
    const int T = shape.tokens(), E = shape.experts, k = shape.top_k;
    auto constraint = ConstraintRegistry::instance().find(strategy.routing.type)->make(strategy.routing.params, shape);
    const ReplicaIndex map(contiguous(E, shape.devices()));
    Router router(sc, 5);
    std::vector<float> bias(E);
    for (int e = 0; e < E; ++e) bias[e] = 0.01f * float(e % 7);
    StepData whole, chunked;
    whole.resize(shape);
    chunked.resize(shape, 20);
    Rng rng(3);
    for (float& v : whole.x) v = float(rng.normal());
    chunked.x = whole.x;
    router.logits(whole);
    router.scores(whole);
    router.select(whole, bias, *constraint, map);
    if (constraint->restricts()) chunked.allowed.resize(std::size_t(T) * E);
    Router::Scratch scratch;
    bool complete = true;
    for (int t0 = 0, n = 1; t0 < T; t0 += n, n = n % 61 + 7)
      complete = router.route_tokens(chunked, t0, std::min(T, t0 + n), bias, *constraint, map, scratch) && complete;
    CHECK(complete);
    CHECK(chunked.expert == whole.expert);
    CHECK(chunked.gate == whole.gate);
    CHECK(chunked.affinity == whole.affinity);
    CHECK(chunked.allowed == whole.allowed);
    REQUIRE(chunked.z.size() == std::size_t(20) * E);
    CHECK(std::equal(chunked.z.begin(), chunked.z.end(), whole.z.begin()));
    CHECK(std::equal(chunked.s.begin(), chunked.s.end(), whole.s.begin()));
    CHECK(constraint->restricts() == (strategy.name == "limited"));
    CHECK(std::count(whole.expert.begin(), whole.expert.end(), -1) == 0);
    CHECK(int(whole.expert.size()) == T * k);
  }
}

TEST_CASE("node-limited routing under replicas sees each token's own replica devices", "[router]") {
  // 64 experts on 4 nodes × 2 devices of 10 slots: 16 experts have a second
  // replica, often on another node, so a token's nodes depend on the token
  // (MODEL.md §6). Groups that are the nodes read the devices; 8 contiguous
  // groups do not, and see the same mask whatever the devices.
  const Scenario sc = testing::tiny_scenario(
      R"({"model":{"experts":64,"top_k":6,"hidden":16,"score":"sigmoid"},"batch":{"sequences":3,"seq_len":40},
          "cluster":{"nodes":4,"devices_per_node":2},
          "strategies":[{"name":"nodes","routing":{"type":"node_limited","m":2}},
                        {"name":"groups","routing":{"type":"node_limited","m":2,"groups":8}}]})");
  const Shape& shape = sc.shape;
  const int T = shape.tokens(), E = shape.experts;
  std::vector<int> phy2log(80);
  for (int j = 0; j < 80; ++j) phy2log[std::size_t(j)] = (j * 13) % 64;
  const PlacementMap map = placement_from_phy2log(phy2log, E, shape.devices());
  const ReplicaIndex replicas(map);
  REQUIRE(replicas.replicated());
  for (const StrategySpec& strategy : sc.strategies) {
    auto constraint = ConstraintRegistry::instance().find(strategy.routing.type)->make(strategy.routing.params, shape);
    CHECK(constraint->reads_devices() == (strategy.name == "nodes"));
    Router router(sc, 5);
    std::vector<float> bias(std::size_t(E), 0.0f);
    StepData data;
    data.resize(shape);
    for (int e = 0; e < E; ++e) data.expert_device[std::size_t(e)] = map.device_for(e, 0);
    Rng rng(8);
    for (float& v : data.x) v = float(rng.normal());
    router.logits(data);
    router.scores(data);
    router.select(data, bias, *constraint, replicas);
    int differs = 0;  // tokens whose mask differs from the first-replica row's
    for (int t = 0; t < T; ++t) {
      std::vector<float> biased(data.s.begin() + std::ptrdiff_t(t) * E, data.s.begin() + std::ptrdiff_t(t + 1) * E);
      std::vector<std::int32_t> own(static_cast<std::size_t>(E));
      for (int e = 0; e < E; ++e) own[std::size_t(e)] = map.device_for(e, t);
      std::vector<std::uint8_t> expected(static_cast<std::size_t>(E)), first(static_cast<std::size_t>(E));
      constraint->allow(biased, biased, own, expected);
      constraint->allow(biased, biased, data.expert_device, first);
      INFO(strategy.name << ", token " << t);
      REQUIRE(std::equal(expected.begin(), expected.end(), data.allowed.begin() + std::ptrdiff_t(t) * E));
      differs += expected != first;
    }
    // The test has teeth only if the replicas change some token's nodes.
    if (strategy.name == "nodes") CHECK(differs > 0);
    else CHECK(differs == 0);
  }
}

TEST_CASE("node-limited routing on the nodes takes each device's node as device / devices_per_node", "[router]") {
  // nodes_of's vector path computes it in double: against the integer
  // division, for several node sizes, every device, about 50 experts (never a
  // multiple of 16: a ragged last vector); a device out of range is refused.
  for (int G : {1, 3, 5, 7, 8}) {
    const int N = 3, D = N * G, E = D * ((50 + D - 1) / D);
    const Scenario sc = testing::tiny_scenario(fmt::format(
        R"({{"model":{{"experts":{},"top_k":4,"hidden":8}},"batch":{{"sequences":{},"seq_len":4}},
            "cluster":{{"nodes":{},"devices_per_node":{}}},
            "strategies":[{{"name":"nodes","routing":{{"type":"node_limited","m":2}}}}]}})",
        E, D, N, G));
    const ComponentSpec& routing = sc.strategies[0].routing;
    auto constraint = ConstraintRegistry::instance().find(routing.type)->make(routing.params, sc.shape);
    Rng rng(static_cast<std::uint64_t>(G));
    const auto size = static_cast<std::size_t>(E);
    for (int round = 0; round < 50; ++round) {
      std::vector<float> biased(size);
      std::vector<std::int32_t> device(size), node(size);
      for (std::size_t e = 0; e < size; ++e) {
        biased[e] = float(rng.uniform());
        device[e] = round == 0 ? int(e) % D : int(rng.next() % std::uint64_t(D));
        node[e] = device[e] / G;
      }
      std::vector<std::uint8_t> allowed(size), expected(size);
      constraint->allow(biased, biased, device, allowed);
      LimitedRoutingScratch scratch;
      group_limited_allowed(biased, node, N, 2, 4, scratch, expected);
      INFO("devices per node " << G << ", round " << round);
      REQUIRE(allowed == expected);
    }
    std::vector<float> biased(size, 0.5f);
    std::vector<std::int32_t> device(size, 0);
    std::vector<std::uint8_t> allowed(size);
    device[20] = D;
    CHECK_THROWS(constraint->allow(biased, biased, device, allowed));
  }
}
