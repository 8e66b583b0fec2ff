// Trace replay reproduces the selections computed by hand (MODEL.md §1).
#include <catch2/catch.hpp>

#include "../testing/fixtures.hpp"
#include "moesim/error.hpp"
#include "moesim/simulation.hpp"
#include "moesim/trace_io.hpp"

using namespace moesim;
using testing::TempDir;

namespace {
std::string trace_scenario(const std::string& stream) {
  return R"({"name":"replay","steps":2,"mode":"inference",
    "model":{"experts":4,"top_k":2,"hidden":4,"score":"softmax"},
    "batch":{"sequences":1,"seq_len":2},"cluster":{"devices_per_node":2},
    "stream":)" + stream + R"(,"strategies":[{"name":"replay"}]})";
}
}  // namespace

TEST_CASE("NPY logit replay selects exactly the hand-computed top-k", "[trace]") {
  TempDir dir;
  // Step 0: token 0 prefers experts 2, 0; token 1 prefers 3, 2.
  // Step 1: token 0 ties 1 and 3 above the rest (lower index first: 1, 3);
  //         token 1 prefers 0, 1.
  const std::vector<float> logits{0.5f, 0.1f, 0.9f, 0.2f,  0.0f, 0.1f, 0.3f, 0.8f,
                                  0.0f, 0.7f, 0.1f, 0.7f,  2.0f, 1.0f, 0.0f, -1.0f};
  write_npy_f32(dir.file("logits.npy"), 4, 4, logits);
  testing::write_text(dir.file("s.json"), trace_scenario(R"({"source":"trace","path":"logits.npy"})"));
  Scenario sc = load_scenario(dir.file("s.json"));
  Result r = simulate(sc, sc.strategies[0]);
  const auto& load = *r.per_step_by_layer.find("expert_load");
  CHECK(load[0][0] == std::vector<double>{1, 0, 2, 1});
  CHECK(load[1][0] == std::vector<double>{1, 2, 0, 1});
}

TEST_CASE("JSONL top-k replay reproduces the trace's choices", "[trace]") {
  TempDir dir;
  testing::write_text(dir.file("t.jsonl"),
                      R"({"step":0,"seq":0,"topk_experts":[3,1],"topk_weights":[0.6,0.4]})" "\n"
                      R"({"step":0,"seq":0,"topk_experts":[3,0],"topk_weights":[0.5,0.5]})" "\n"
                      R"({"step":1,"seq":0,"topk_experts":[2,1],"topk_weights":[0.7,0.3]})" "\n"
                      R"({"step":1,"seq":0,"topk_experts":[2,3],"topk_weights":[0.9,0.1]})" "\n");
  testing::write_text(dir.file("s.json"), trace_scenario(R"({"source":"trace","path":"t.jsonl","format":"jsonl"})"));
  Scenario sc = load_scenario(dir.file("s.json"));
  Result r = simulate(sc, sc.strategies[0]);
  const auto& load = *r.per_step_by_layer.find("expert_load");
  CHECK(load[0][0] == std::vector<double>{1, 1, 0, 2});
  CHECK(load[1][0] == std::vector<double>{0, 1, 2, 1});
}

TEST_CASE("a trace too short for the scenario is an error naming the file", "[trace]") {
  TempDir dir;
  write_npy_f32(dir.file("short.npy"), 3, 4, std::vector<float>(12, 0.0f));
  testing::write_text(dir.file("s.json"), trace_scenario(R"({"source":"trace","path":"short.npy"})"));
  CHECK_THROWS_WITH(load_scenario(dir.file("s.json")),
                    Catch::Contains("short.npy: expected at least steps × tokens = 2 × 2 = 4 tokens, the trace holds 3"));
  write_npy_f32(dir.file("wide.npy"), 4, 5, std::vector<float>(20, 0.0f));
  testing::write_text(dir.file("s.json"), trace_scenario(R"({"source":"trace","path":"wide.npy"})"));
  CHECK_THROWS_WITH(load_scenario(dir.file("s.json")), Catch::Contains("expected 4 logits per token and layer (one per expert), got 5"));
  testing::write_text(dir.file("s.json"), trace_scenario(R"({"source":"trace","path":"missing.npy"})"));
  CHECK_THROWS_AS(load_scenario(dir.file("s.json")), InputError);
}
