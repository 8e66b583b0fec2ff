// The qualitative results of MODEL.md §8 that a correct model reproduces,
// on small seeded runs of the shipped scenarios.
#include <catch2/catch.hpp>
#include <map>

#include "../testing/fixtures.hpp"
#include "moesim/simulation.hpp"

using namespace moesim;

namespace {

using Summaries = std::map<std::string, std::map<std::string, double>>;

Summaries run_all(const Scenario& sc) {
  Summaries out;
  for (const auto& st : sc.strategies) {
    Result r = simulate(sc, st);
    for (const auto& [name, v] : r.summary.columns()) out[st.name][name] = v;
  }
  return out;
}

Summaries run_file(const std::string& name, const std::vector<std::string>& overrides) {
  return run_all(load_scenario(std::string(MOESIM_SOURCE_DIR) + "/scenarios/" + name, overrides));
}

}  // namespace

TEST_CASE("no balancing collapses; bias beats aux loss on balance and quality; alpha trades one for the other",
          "[paper][slow]") {
  // Loss-Free Balancing (arXiv 2408.15664) Table 2 and Shazeer et al. 2017 Table 6, qualitatively.
  auto m = run_file("collapse.json", {"/steps=150", "/batch/sequences=8"});
  INFO("none " << m["none"]["max_over_mean"] << " bias " << m["bias"]["max_over_mean"]);
  CHECK(m["none"]["max_over_mean"] > 3.0);                          // collapse onto few experts
  CHECK(m["none"]["max_over_mean"] > 2.0 * m["bias"]["max_over_mean"]);
  CHECK(m["none"]["entropy_norm"] < 0.95);  // 0.84 after the full 300 steps
  CHECK(m["bias"]["maxvio_global"] < m["aux-0.01"]["maxvio_global"]);
  CHECK(m["aux-0.01"]["maxvio_global"] < m["none"]["maxvio_global"]);
  CHECK(m["bias"]["quality_loss"] <= m["aux-0.01"]["quality_loss"]);
  // Raising α lowers MaxVio and raises the quality loss.
  CHECK(m["aux-0.001"]["maxvio_global"] > m["aux-0.01"]["maxvio_global"]);
  CHECK(m["aux-0.01"]["maxvio_global"] > m["aux-0.1"]["maxvio_global"]);
  CHECK(m["aux-0.001"]["quality_loss"] < m["aux-0.01"]["quality_loss"]);
  CHECK(m["aux-0.01"]["quality_loss"] < m["aux-0.1"]["quality_loss"]);
}

TEST_CASE("sequence-wise aux loss cuts MaxVio per sequence only when sequences are coherent", "[paper][slow]") {
  const std::string text = testing::tiny_scenario_text(R"({"name":"seq","steps":150,
      "model":{"experts":32,"top_k":4,"hidden":64,"score":"sigmoid"},
      "batch":{"sequences":16,"seq_len":64},"stream":{"domains":32,"zipf":1.0,"mix":0.0},
      "cluster":{"devices_per_node":8},
      "strategies":[{"name":"batch","balancers":[{"type":"aux_loss","alpha":0.03,"scope":"batch"}]},
                    {"name":"sequence","balancers":[{"type":"aux_loss","alpha":0.03,"scope":"sequence"}]}]})");
  auto coherent = run_all(parse_scenario(text, "seq.json"));
  CHECK(coherent["sequence"]["maxvio_seq"] < 0.8 * coherent["batch"]["maxvio_seq"]);
  auto mixed = run_all(parse_scenario(text, "seq.json", {"/stream/mix=1"}));
  CHECK(mixed["sequence"]["maxvio_seq"] == Approx(mixed["batch"]["maxvio_seq"]).epsilon(0.05));
}

TEST_CASE("capacity drops fall as cf rises, and cf < 1 drops at least 1 − cf", "[paper][slow]") {
  // ST-MoE (Zoph et al. 2022) Table: the shape of drop rate against capacity factor, frozen router.
  const std::string text = testing::tiny_scenario_text(R"({"name":"cf","steps":20,"mode":"inference",
      "model":{"experts":16,"top_k":2,"hidden":8,"score":"softmax"},"batch":{"sequences":8,"seq_len":64},
      "stream":{"source":"static","domains":null,"skew":0.6},
      "strategies":[{"name":"cf0.75","dropper":{"type":"capacity","cf":0.75}},
                    {"name":"cf1.0","dropper":{"type":"capacity","cf":1.0}},
                    {"name":"cf1.25","dropper":{"type":"capacity","cf":1.25}},
                    {"name":"cf2.0","dropper":{"type":"capacity","cf":2.0}}]})");
  auto m = run_all(parse_scenario(text, "cf.json"));
  CHECK(m["cf0.75"]["drop_rate"] >= 0.25);
  CHECK(m["cf0.75"]["drop_rate"] > m["cf1.0"]["drop_rate"]);
  CHECK(m["cf1.0"]["drop_rate"] > m["cf1.25"]["drop_rate"]);
  CHECK(m["cf1.25"]["drop_rate"] >= m["cf2.0"]["drop_rate"]);
}

TEST_CASE("balancing lowers the capacity drop rate while training", "[paper][slow]") {
  auto m = run_file("switch.json", {"/steps=100", "/batch/sequences=8"});
  CHECK(m["aux-cf1.25"]["drop_rate"] < m["no-aux-cf1.25"]["drop_rate"]);
  CHECK(m["aux-cf1.0"]["drop_rate"] > m["aux-cf1.25"]["drop_rate"]);
  CHECK(m["aux-dropless"]["drop_rate"] == 0.0);
}

TEST_CASE("DeepSeek-V2 device-level dropping never drops from protected sequences", "[paper][slow]") {
  auto m = run_file("deepseek-v2-mini.json", {"/steps=20", "/strategies/0/dropper/cf=0.8"});
  CHECK(m["v2"]["drop_rate"] > 0.0);  // drops happen...
  CHECK(m["v2"]["protected_drops"] == 0.0);  // ...but never in the protected ~10%
  CHECK(m["v2"]["sequences_without_drops"] >= 0.1 - 1e-12);  // at least the protected ones
  CHECK(m["v2-no-drop"]["drop_rate"] == 0.0);
}
