// Many MoE layers (MODEL.md §9): replay of hand-made multi-layer traces,
// --trace-out round trips, the synthetic hidden state across layers, and the
// whole-model summary over per-layer metrics.
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <numeric>

#include "../testing/fixtures.hpp"
#include "moesim/components.hpp"
#include "moesim/error.hpp"
#include "moesim/simulation.hpp"

using namespace moesim;
using testing::TempDir;

namespace {

// E = 4, k = 2, one sequence of 2 tokens per step, 2 steps; the stream is given.
std::string replay_scenario(const std::string& stream, const std::string& model = "{}") {
  nlohmann::json sc = nlohmann::json::parse(R"({"name":"layers","steps":2,"mode":"inference",
    "batch":{"sequences":1,"seq_len":2},"cluster":{"devices_per_node":2},"strategies":[{"name":"replay"}]})");
  sc["stream"] = nlohmann::json::parse(stream);
  sc["model"] = nlohmann::json::parse(model);
  return sc.dump();
}

}  // namespace

TEST_CASE("a hand-made two-layer pairs trace replays with exact per-layer loads", "[layers][trace]") {
  TempDir dir;
  // Layers 5 and 2 (ids need not start at 0; layer 3 is dense), k = 2, experts 0..3.
  testing::write_text(dir.file("t.jsonl"),
                      "[[2, 0], [2, 1], [5, 3], [5, 2]]\n"   // step 0, token 0
                      "[[2, 1], [2, 3], [5, 3], [5, 0]]\n"   // step 0, token 1
                      "[[5, 1], [5, 0], [2, 2], [2, 3]]\n"   // step 1, token 0 (layers listed out of order)
                      "[[2, 2], [2, 0], [5, 1], [5, 2]]\n"); // step 1, token 1
  testing::write_text(dir.file("s.json"), replay_scenario(R"({"source":"trace","format":"pairs","path":"t.jsonl"})"));
  const Scenario sc = load_scenario(dir.file("s.json"));
  // Layers, experts and k come from the trace.
  CHECK(sc.shape.layers == 2);
  CHECK(sc.shape.experts == 4);
  CHECK(sc.shape.top_k == 2);
  CHECK(sc.layer_ids == std::vector<int>{2, 5});
  const Result r = simulate(sc, sc.strategies[0]);
  CHECK(r.layer_ids == std::vector<int>{2, 5});
  const auto& load = *r.per_step_by_layer.find("expert_load");  // [step][layer][expert]
  REQUIRE(load.size() == 2);
  CHECK(load[0][0] == std::vector<double>{1, 2, 0, 1});  // layer 2, step 0: {0,1} + {1,3}
  CHECK(load[0][1] == std::vector<double>{1, 0, 1, 2});  // layer 5, step 0: {3,2} + {3,0}
  CHECK(load[1][0] == std::vector<double>{1, 0, 2, 1});  // layer 2, step 1: {2,3} + {2,0}
  CHECK(load[1][1] == std::vector<double>{1, 2, 1, 0});  // layer 5, step 1: {1,0} + {1,2}
  // The whole-model summary is the mean over layers (MODEL.md §9); c̄ = 2·2/4 = 1.
  // MaxVio_batch per layer: (max − 1)/1 = 1 in each of the 4 layer-steps.
  CHECK(r.summary_by_layer.find("maxvio_batch")->at(0) == 1.0);
  CHECK(*r.summary.find("maxvio_batch") == 1.0);
  // Cumulative loads: layer 2 {2,2,2,2} → MaxVio_global 0; layer 5 {2,2,2,2} → 0.
  CHECK(r.summary_by_layer.find("maxvio_global")->at(1) == 0.0);
  CHECK(*r.summary.find("worst_layer") == 2.0);  // equal MaxVio: the first layer
  const auto& total = *r.final.find("expert_load_total");
  CHECK(total[0] == std::vector<double>{2, 2, 2, 2});
  CHECK(total[1] == std::vector<double>{2, 2, 2, 2});
}

TEST_CASE("NPY logits [T, L, E] route every layer through the router", "[layers][trace][npy]") {
  TempDir dir;
  // 4 tokens × 2 layers × 4 experts, softmax top-2 of each row (ties: lower index).
  const std::vector<float> z{
      0.9f, 0.1f, 0.5f, 0.0f,  /* | */ 0.0f, 0.0f, 1.0f, 2.0f,   // token 0: layer 0 {0,2}, layer 1 {3,2}
      0.0f, 0.3f, 0.3f, 0.1f,  /* | */ 1.0f, 1.0f, 1.0f, 0.0f,   // token 1: {1,2} (tie), {0,1} (ties)
      2.0f, 1.0f, 0.0f, 0.0f,  /* | */ 0.0f, 3.0f, 0.0f, 2.0f,   // token 2: {0,1}, {1,3}
      0.0f, 0.0f, 0.0f, 0.0f,  /* | */ 0.5f, 0.0f, 0.5f, 0.0f};  // token 3: {0,1} (all tied), {0,2}
  // NPY 1.0: magic, version, header length 118, the header padded to 128 bytes, then the data.
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 2, 4), }";
  header.append(117 - header.size(), ' ');
  header.push_back('\n');
  std::string bytes("\x93NUMPY\x01\x00\x76\x00", 10);
  bytes += header;
  bytes.append(reinterpret_cast<const char*>(z.data()), z.size() * sizeof(float));
  testing::write_text(dir.file("z.npy"), bytes);
  testing::write_text(dir.file("s.json"), replay_scenario(R"({"source":"trace","path":"z.npy"})",
                                                          R"({"top_k":2,"score":"softmax"})"));
  const Scenario sc = load_scenario(dir.file("s.json"));
  CHECK(sc.shape.layers == 2);
  CHECK(sc.shape.experts == 4);
  const Result r = simulate(sc, sc.strategies[0]);
  const auto& load = *r.per_step_by_layer.find("expert_load");
  CHECK(load[0][0] == std::vector<double>{1, 1, 2, 0});
  CHECK(load[0][1] == std::vector<double>{1, 1, 1, 1});
  CHECK(load[1][0] == std::vector<double>{2, 2, 0, 0});
  CHECK(load[1][1] == std::vector<double>{1, 1, 1, 1});
}

TEST_CASE("a trace that does not fit the scenario is an input error naming it", "[layers][trace]") {
  TempDir dir;
  testing::write_text(dir.file("t.jsonl"), "[[0, 0], [0, 1], [1, 3], [1, 2]]\n[[0, 1], [0, 3], [1, 3], [1, 0]]\n"
                                           "[[0, 1], [0, 3], [1, 3], [1, 0]]\n[[0, 1], [0, 3], [1, 3], [1, 0]]\n");
  auto error = [&](const std::string& model, const std::string& extra_stream = "") {
    testing::write_text(dir.file("s.json"),
                        replay_scenario(R"({"source":"trace","format":"pairs","path":"t.jsonl")" + extra_stream + "}",
                                        model));
    try {
      load_scenario(dir.file("s.json"));
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(error(R"({"layers":3})"), Catch::Contains("t.jsonl: the trace holds 2 MoE layers, the scenario's model.layers is 3"));
  CHECK_THAT(error(R"({"top_k":3})"), Catch::Contains("t.jsonl: the trace chooses 2 experts per token and layer, the scenario's model.top_k is 3"));
  CHECK_THAT(error(R"({"experts":3})"), Catch::Contains("t.jsonl: the trace names expert 3, outside the scenario's 3 experts"));
  // What a trace implies meets the same limits as what a scenario writes (1 024 layers).
  std::string wide = "[";
  for (int l = 0; l < 1100; ++l) wide += fmt::format("{}[{}, 0]", l ? ", " : "", l);
  testing::write_text(dir.file("wide.jsonl"), wide + "]\n" + wide + "]\n");
  testing::write_text(dir.file("wide.json"), replay_scenario(R"({"source":"trace","format":"pairs","path":"wide.jsonl"})"));
  CHECK_THROWS_WITH(load_scenario(dir.file("wide.json")),
                    Catch::Contains("/model/layers: the replayed trace implies layers = 1100, more than the 1024 allowed"));
  testing::write_text(dir.file("aux.json"), replay_scenario(R"({"source":"trace","format":"pairs","path":"t.jsonl"})"));
  auto aux = nlohmann::json::parse(testing::read_text(dir.file("aux.json")));
  aux["strategies"][0]["balancers"] = nlohmann::json::parse(R"([{"type":"aux_loss"}])");
  testing::write_text(dir.file("aux.json"), aux.dump());
  CHECK_THROWS_WITH(load_scenario(dir.file("aux.json")),
                    Catch::Contains("/strategies/0/balancers/0/type: needs the router's scores"));
}

TEST_CASE("a run's --trace-out replayed reproduces the run's per-layer loads byte for byte", "[layers][trace][cli]") {
  TempDir dir;
  testing::write_text(dir.file("s.json"), testing::tiny_scenario_text(R"({"name":"synth","mode":"inference",
      "model":{"layers":3},"stream":{"layer_correlation":0.3},"strategies":[{"name":"a"}]})"));
  auto run = testing::run_moesim(fmt::format("run {} -q -o {} --trace-out {}", dir.file("s.json"), dir.file("out"),
                                             dir.file("trace/routing.jsonl")));
  REQUIRE(run.exit_code == 0);
  const std::string trace = testing::read_text(dir.file("trace/routing.jsonl"));
  CHECK(std::count(trace.begin(), trace.end(), '\n') == 6 * 64);  // steps × tokens
  testing::write_text(dir.file("r.json"), testing::tiny_scenario_text(R"({"name":"replayed","mode":"inference",
      "model":{"layers":null,"top_k":null,"hidden":null,"score":null},
      "stream":{"source":"trace","format":"pairs","path":"trace/routing.jsonl","domains":null},
      "strategies":[{"name":"a"}]})"));
  auto replay = testing::run_moesim(fmt::format("run {} -q -o {}", dir.file("r.json"), dir.file("out")));
  REQUIRE(replay.exit_code == 0);
  auto a = nlohmann::json::parse(testing::read_text(dir.file("out/synth/a.json")));
  auto b = nlohmann::json::parse(testing::read_text(dir.file("out/replayed/a.json")));
  CHECK(b["layer_ids"] == nlohmann::json::parse("[0, 1, 2]"));
  CHECK(a["per_step"]["expert_load"].dump() == b["per_step"]["expert_load"].dump());
  CHECK(a["final"]["expert_load_total"].dump() == b["final"]["expert_load_total"].dump());
  CHECK(a["summary"]["maxvio_batch"] == b["summary"]["maxvio_batch"]);
}

TEST_CASE("synthetic layers: x⁽ˡ⁾ = ρ·x⁽ˡ⁻¹⁾ + sqrt(1−ρ²)·(μ⁽ˡ⁾_c + σ·ε⁽ˡ⁾)", "[layers][source]") {
  // With σ = 0 every token of a domain has the same fresh part, so
  // x⁽¹⁾ − ρ·x⁽⁰⁾ is equal for all tokens of one domain and 0.8·μ⁽¹⁾_c for ρ = 0.6.
  auto layer1_minus = [](double rho) {
    Scenario sc = testing::tiny_scenario(fmt::format(R"({{"model":{{"layers":2}},"stream":{{"noise":0,
        "layer_correlation":{}}}}})", rho));
    auto src = SourceRegistry::instance().find("synthetic")->make(sc.stream.params, sc.shape);
    src->seed(sc.seed);
    StepData data;
    data.resize(sc.shape);
    src->next(0, 0, data);
    const std::vector<float> x0 = data.x;
    src->next(0, 1, data);
    std::vector<std::vector<float>> fresh_by_domain(4);
    const int d = sc.shape.hidden;
    bool consistent = true;
    for (int t = 0; t < sc.shape.tokens(); ++t) {
      std::vector<float> f(d);
      for (int i = 0; i < d; ++i) f[i] = data.x[t * d + i] - float(rho) * x0[t * d + i];
      auto& seen = fresh_by_domain[data.domain[t]];
      if (seen.empty()) seen = f;
      for (int i = 0; i < d; ++i) consistent = consistent && std::abs(seen[i] - f[i]) < 1e-5f;
    }
    return std::make_pair(consistent, fresh_by_domain);
  };
  CHECK(layer1_minus(0.6).first);
  CHECK(layer1_minus(0.0).first);
  // ρ = 1: the hidden state carries over unchanged (the fresh part is 0).
  const auto same = layer1_minus(1.0);
  for (const auto& f : same.second)
    for (float v : f) CHECK(v == 0.0f);
  // ρ = 0.6 vs ρ = 0: the fresh parts are 0.8·μ vs μ (same centres: same seed).
  const auto a = layer1_minus(0.6).second, b = layer1_minus(0.0).second;
  for (std::size_t c = 0; c < a.size(); ++c)
    for (std::size_t i = 0; i < a[c].size(); ++i) CHECK(a[c][i] == Approx(0.8 * b[c][i]).margin(1e-5));
}

TEST_CASE("per-layer stream overrides: allowed parameters only", "[layers][scenario]") {
  Scenario sc = testing::tiny_scenario(R"({"model":{"layers":3},"stream":{"layers":[{},{"noise":2.0}]}})");
  REQUIRE(sc.stream_layers.size() == 3);
  CHECK(sc.stream_layers[0].real("noise") == 0.5);
  CHECK(sc.stream_layers[1].real("noise") == 2.0);
  CHECK(sc.stream_layers[2].real("noise") == 0.5);
  CHECK_THROWS_WITH(testing::tiny_scenario(R"({"model":{"layers":2},"stream":{"layers":[{"zipf":2}]}})"),
                    Catch::Contains("tiny.json: /stream/layers: 'zipf' cannot differ between layers"));
  CHECK_THROWS_WITH(testing::tiny_scenario(R"({"model":{"layers":2},"stream":{"layers":[{"nosie":2}]}})"),
                    Catch::Contains("/stream/layers/0/nosie: unknown key 'nosie'"));
  CHECK_THROWS_WITH(testing::tiny_scenario(R"({"model":{"layers":1},"stream":{"layers":[{},{}]}})"),
                    Catch::Contains("/stream/layers: expected an array of at most model.layers = 1 objects"));
}

TEST_CASE("layers differ and each trains its own router", "[layers][simulation]") {
  Scenario sc = testing::tiny_scenario(R"({"steps":10,"mode":"train","model":{"layers":3}})");
  const Result r = simulate(sc, sc.strategies[0]);
  const auto& vio = *r.summary_by_layer.find("maxvio_batch");
  REQUIRE(vio.size() == 3);
  CHECK(vio[0] != vio[1]);
  CHECK(vio[1] != vio[2]);
  CHECK(*r.summary.find("maxvio_batch") == Approx((vio[0] + vio[1] + vio[2]) / 3));
  // Every layer routes T·k assignments every step.
  for (const auto& step : *r.per_step_by_layer.find("expert_load"))
    for (const auto& layer : step) CHECK(std::accumulate(layer.begin(), layer.end(), 0.0) == 128.0);
  // The first layer is the single-layer model: same seed sub-streams, same numbers.
  Scenario one = testing::tiny_scenario(R"({"steps":10,"mode":"train"})");
  const Result r1 = simulate(one, one.strategies[0]);
  CHECK(r1.summary_by_layer.find("maxvio_batch")->at(0) == vio[0]);
  CHECK(r1.final.find("expert_load_total")->at(0) == r.final.find("expert_load_total")->at(0));
}

TEST_CASE("a one-layer scenario gives the numbers of the single-layer engine", "[layers][simulation]") {
  // Values written by the single-layer engine (commit ba978a9, before layers
  // existed) for this scenario, in the native release build: layer 0 keeps
  // every seed sub-stream, so the multi-layer engine reproduces them to the
  // bit there. The portable build (sanitizer suite) sums floats in another
  // order, hence the 1e-9 relative margin rather than equality.
  Scenario sc = parse_scenario(R"({"name":"eq","seed":3,"steps":40,"mode":"train",
      "model":{"experts":16,"top_k":4,"hidden":16,"score":"sigmoid"},"batch":{"sequences":8,"seq_len":32},
      "cluster":{"nodes":2,"devices_per_node":2},"stream":{"domains":8,"zipf":1.2,"mix":0.1},
      "strategies":[{"name":"aux","balancers":[{"type":"aux_loss","alpha":0.01}]},
                    {"name":"cap","dropper":{"type":"capacity","cf":1.0}},
                    {"name":"dev","routing":{"type":"device_limited","m":2},"dropper":{"type":"device","cf":1.0}},
                    {"name":"eplb","placement":{"type":"eplb","redundant_experts":4,"rebalance_every":5,"window":5}}]})",
                               "eq.json");
  struct Expected {
    double maxvio_batch, maxvio_global, quality_loss, drop_rate, entropy_norm;
  };
  const Expected expected[] = {{0.82421875, 0.77109375, 0.5966922150171815, 0.0, 0.9803370720514625},
                               {0.73046875, 0.573828125, 0.7123876421720508, 0.1781005859375, 0.9619873781519205},
                               {1.181640625, 1.169140625, 0.682386393637882, 0.141015625, 0.9234403931029824},
                               {1.3265625, 1.310546875, 0.5560633701660734, 0.0, 0.9095947403217198}};
  for (std::size_t i = 0; i < sc.strategies.size(); ++i) {
    INFO(sc.strategies[i].name);
    const Result r = simulate(sc, sc.strategies[i]);
    CHECK(*r.summary.find("maxvio_batch") == Approx(expected[i].maxvio_batch).epsilon(1e-9).margin(1e-12));
    CHECK(*r.summary.find("maxvio_global") == Approx(expected[i].maxvio_global).epsilon(1e-9).margin(1e-12));
    CHECK(*r.summary.find("quality_loss") == Approx(expected[i].quality_loss).epsilon(1e-9).margin(1e-12));
    CHECK(*r.summary.find("drop_rate") == Approx(expected[i].drop_rate).epsilon(1e-9).margin(1e-12));
    CHECK(*r.summary.find("entropy_norm") == Approx(expected[i].entropy_norm).epsilon(1e-9).margin(1e-12));
  }
}

TEST_CASE("a 320-GPU decode layout runs: 256 + 64 redundant experts, one per GPU", "[layers][simulation]") {
  // DeepSeek-V3 decode (MODEL.md §8): experts do not divide the devices; the
  // redundant replicas fill one slot per GPU. Node-limited routing on the
  // 40 nodes follows the placement, and device-level dropping counts each
  // assignment on the replica that serves it.
  Scenario sc = testing::tiny_scenario(R"({"steps":3,"mode":"inference","model":{"layers":2,"experts":256,"top_k":8,
      "hidden":16,"score":"sigmoid"},"batch":{"sequences":8,"seq_len":16},
      "cluster":{"nodes":40,"devices_per_node":8,
                 "placement":{"type":"eplb","redundant_experts":64,"groups":8,"rebalance_every":1,"window":1}},
      "strategies":[{"name":"v3","routing":{"type":"node_limited","m":4},"dropper":{"type":"device","cf":2.0}}]})");
  REQUIRE(sc.shape.devices() == 320);
  const Result r = simulate(sc, sc.strategies[0]);
  const auto& routed = *r.per_step_by_layer.find("expert_load");
  const auto& device = *r.per_step_by_layer.find("device_load");
  const auto& processed = *r.per_step_by_layer.find("expert_processed");
  for (std::size_t s = 0; s < routed.size(); ++s)
    for (int l = 0; l < 2; ++l) {
      CHECK(std::accumulate(routed[s][l].begin(), routed[s][l].end(), 0.0) == 128.0 * 8);
      CHECK(device[s][l].size() == 320);
      // Every processed assignment lands on exactly one device.
      CHECK(std::accumulate(device[s][l].begin(), device[s][l].end(), 0.0) ==
            std::accumulate(processed[s][l].begin(), processed[s][l].end(), 0.0));
    }
  CHECK(*r.summary.find("rank_imbalance") > 0.0);
}
