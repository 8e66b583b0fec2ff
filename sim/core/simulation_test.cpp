// Whole-run properties: determinism (also across thread counts), conservation
// of assignments, and one run of every registered component.
#include <omp.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <numeric>

#include "../testing/fixtures.hpp"
#include "moesim/components.hpp"
#include "moesim/simulation.hpp"

using namespace moesim;

namespace {
std::string run_text(const Scenario& sc, int threads) {
  omp_set_num_threads(threads);
  std::string text = result_text(sc, sc.strategies[0], simulate(sc, sc.strategies[0]));
  omp_set_num_threads(omp_get_num_procs());
  return text;
}
}  // namespace

TEST_CASE("same scenario and seed give byte-identical results, whatever the thread count", "[simulation]") {
  Scenario sc = testing::tiny_scenario(R"({"steps":12,"batch":{"sequences":8,"seq_len":32}})");
  const std::string one = run_text(sc, 1);
  CHECK(run_text(sc, 1) == one);
  CHECK(run_text(sc, 2) == one);
  CHECK(run_text(sc, 3) == one);
  Scenario other = testing::tiny_scenario(R"({"seed":99,"steps":12,"batch":{"sequences":8,"seq_len":32}})");
  CHECK(run_text(other, 1) != one);
  // Sigmoid with E ≥ 16: the pruned top-k and the sparse weight gradient.
  Scenario wide = testing::tiny_scenario(R"({"steps":8,"mode":"train","batch":{"sequences":8,"seq_len":32},
      "model":{"experts":32,"top_k":4,"hidden":16,"score":"sigmoid"},"strategies":[{"name":"bias",
      "balancers":[{"type":"bias"}]}]})");
  const std::string wide_one = run_text(wide, 1);
  CHECK(run_text(wide, 2) == wide_one);
  CHECK(run_text(wide, 3) == wide_one);
}

TEST_CASE("loads are conserved and the summary agrees with the per-step record", "[simulation]") {
  Scenario sc = testing::tiny_scenario(R"({"steps":10})");
  Result r = simulate(sc, sc.strategies[0]);
  const auto& routed = *r.per_step_by_layer.find("expert_load");  // [step][layer][expert]
  const auto& device = *r.per_step_by_layer.find("device_load");
  REQUIRE(routed.size() == 10);
  for (std::size_t step = 0; step < routed.size(); ++step) {
    const auto& e = routed[step][0];
    const auto& d = device[step][0];
    // T·k = 64·2 assignments every step, each on exactly one device.
    CHECK(std::accumulate(e.begin(), e.end(), 0.0) == 128.0);
    CHECK(std::accumulate(d.begin(), d.end(), 0.0) == 128.0);
    // Contiguous placement: experts 0-3 on device 0.
    CHECK(d[0] == e[0] + e[1] + e[2] + e[3]);
  }
  const auto& vio = *r.series.find("maxvio_batch");
  CHECK(*r.summary.find("maxvio_batch") == Approx(std::accumulate(vio.begin(), vio.end(), 0.0) / 10));
  CHECK(*r.summary.find("tokens") == 640.0);
  CHECK(*r.summary.find("drop_rate") == 0.0);
  CHECK(*r.summary.find("sequences_without_drops") == 1.0);
  const auto& total = r.final.find("expert_load_total")->at(0);
  CHECK(std::accumulate(total.begin(), total.end(), 0.0) == 1280.0);
}

TEST_CASE("device-limited routing on an EPLB placement still routes k experts per token", "[simulation]") {
  // EPLB with 8 replicas leaves some devices fewer than E/D = 4 first
  // replicas, so m = 2 devices can hold fewer than k = 8 experts.
  Scenario sc = testing::tiny_scenario(R"({"steps":30,"mode":"train","stream":{"zipf":2.0},
      "model":{"experts":16,"top_k":8,"hidden":8,"score":"sigmoid"},"cluster":{"nodes":1,"devices_per_node":4},
      "strategies":[{"name":"x","routing":{"type":"device_limited","m":2},
                     "placement":{"type":"eplb","redundant_experts":8,"rebalance_every":2,"window":2}}]})");
  Result r = simulate(sc, sc.strategies[0]);
  const auto& routed = *r.per_step_by_layer.find("expert_load");
  REQUIRE(routed.size() == 30);
  for (const auto& step : routed) CHECK(std::accumulate(step[0].begin(), step[0].end(), 0.0) == 64.0 * 8);
}

TEST_CASE("record.every thins the series and per-step rows", "[simulation]") {
  Scenario sc = testing::tiny_scenario(R"({"steps":10,"record":{"every":4}})");
  Result r = simulate(sc, sc.strategies[0]);
  CHECK(*r.series.find("step") == std::vector<double>{0, 4, 8});
  CHECK(r.per_step_by_layer.find("expert_load")->size() == 3);
  Scenario quiet = testing::tiny_scenario(R"({"steps":10,"record":{"per_step_loads":false}})");
  const Result q = simulate(quiet, quiet.strategies[0]);
  CHECK(q.per_step.columns().empty());
  CHECK(q.per_step_by_layer.columns().empty());
}

TEST_CASE("inference mode leaves the router untouched", "[simulation]") {
  // Frozen router and an unchanging stream popularity: per-step loads differ
  // only through token noise, and two strategies see identical loads.
  Scenario sc = testing::tiny_scenario(R"({"mode":"inference","strategies":[{"name":"a"},{"name":"b"}]})");
  Result a = simulate(sc, sc.strategies[0]), b = simulate(sc, sc.strategies[1]);
  CHECK(*a.per_step_by_layer.find("expert_load") == *b.per_step_by_layer.find("expert_load"));
}

// Every registered component, built with its defaults, runs a short
// simulation (as ns-3 runs one test over every scheduler).
TEST_CASE("every registered component runs", "[simulation][registry]") {
  auto check_run = [](const std::string& extra, const std::string& what) {
    INFO(what);
    Scenario sc = testing::tiny_scenario(extra);
    Result r = simulate(sc, sc.strategies[0]);
    CHECK(*r.summary.find("tokens") == Approx(double(sc.steps) * sc.shape.tokens()));
    const auto& total = r.final.find("expert_load_total")->at(0);
    CHECK(std::accumulate(total.begin(), total.end(), 0.0) == Approx(double(sc.steps) * sc.shape.tokens() * sc.shape.top_k));
    CHECK(*r.summary.find("drop_rate") >= 0.0);
    CHECK(*r.summary.find("drop_rate") <= 1.0);
  };
  for (const auto* e : SourceRegistry::instance().entries()) {
    if (e->name == "trace") continue;  // needs a file: covered by its own tests
    nlohmann::json stream{{"source", e->name}};
    stream["domains"] = e->name == "synthetic" ? nlohmann::json(4) : nlohmann::json(nullptr);  // null removes it
    nlohmann::json patch{{"mode", e->name == "synthetic" ? "train" : "inference"}, {"stream", stream}};
    check_run(patch.dump(), "source " + e->name);
  }
  // A component with its defaults; required integers at their smallest valid value.
  auto component = [](const auto* e) {
    nlohmann::json c{{"type", e->name}};
    for (const auto& p : e->params)
      if (!p.default_value && p.kind == ParamKind::integer && p.derived.empty()) c[p.name] = std::int64_t(p.min);
    return c;
  };
  auto strategy = [](const std::string& key, const nlohmann::json& component) {
    nlohmann::json st{{"name", "x"}};
    st[key] = component;
    return nlohmann::json{{"strategies", nlohmann::json::array({st})}}.dump();
  };
  for (const auto* e : ConstraintRegistry::instance().entries())
    check_run(strategy("routing", component(e)), "routing " + e->name);
  for (const auto* e : DropperRegistry::instance().entries())
    check_run(strategy("dropper", component(e)), "dropper " + e->name);
  for (const auto* e : BalancerRegistry::instance().entries())
    check_run(strategy("balancers", nlohmann::json::array({component(e)})), "balancer " + e->name);
}
