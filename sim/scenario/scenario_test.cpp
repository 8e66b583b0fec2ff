// Scenario reading: defaults, strictness, JSON pointers in errors, --set.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "../testing/fixtures.hpp"
#include "moesim/error.hpp"

using namespace moesim;
using testing::tiny_scenario;

namespace {
std::string error_of(const std::string& text, const std::vector<std::string>& sets = {}) {
  try {
    parse_scenario(text, "s.json", sets);
  } catch (const InputError& e) {
    return e.what();
  }
  return "no error";
}
}  // namespace

TEST_CASE("only name and strategies are required; defaults are filled in and echoed", "[scenario]") {
  Scenario sc = parse_scenario(R"({"name":"x", "strategies":[{"name":"a"}]})", "s.json");
  CHECK(sc.steps == 100);
  CHECK(sc.seed == 1);
  CHECK(sc.train);
  CHECK(sc.shape.experts == 64);
  CHECK(sc.shape.top_k == 8);
  CHECK(sc.model.score == ScoreFunction::sigmoid);
  CHECK(sc.model.lr == 25.0);  // MODEL.md §3: 25 for sigmoid
  CHECK(sc.record.window == 20);  // last fifth of 100 steps
  CHECK(sc.stream.type == "synthetic");
  CHECK(sc.strategies.at(0).dropper.type == "none");
  auto echoed = nlohmann::json::parse(sc.normalized);
  CHECK(echoed["model"]["top_k"] == 8);
  CHECK(echoed["stream"]["zipf"] == 1.0);
  CHECK(echoed["strategies"][0]["routing"]["type"] == "none");
  Scenario soft = parse_scenario(R"({"name":"x","model":{"score":"softmax"},"strategies":[{"name":"a"}]})", "s.json");
  CHECK(soft.model.lr == 15.0);  // 15 for softmax
}

TEST_CASE("comments are allowed", "[scenario]") {
  CHECK_NOTHROW(parse_scenario("// a scenario\n{\"name\":\"x\", /* inline */ \"strategies\":[{\"name\":\"a\"}]}", "s.json"));
}

TEST_CASE("errors name the file, the JSON pointer, what was expected and the valid values", "[scenario]") {
  const std::string ok = testing::tiny_scenario_text();
  CHECK(error_of(R"({"name":"x"})") == "s.json: /strategies: is required: a non-empty array of objects");
  CHECK(error_of(R"({"name":"x","strategies":[]})") == "s.json: /strategies: expected a non-empty array of objects, got []");
  CHECK(error_of(ok, {"/model/top_k=0"}) == "s.json: /model/top_k: expected an integer in [1, 8], got 0");
  CHECK(error_of(ok, {"/model/topk=3"}).rfind("s.json: /model/topk: unknown key 'topk'; valid keys here are: layers, experts, top_k", 0) == 0);
  CHECK(error_of(ok, {"/mode=training"}) == "s.json: /mode: expected one of: train, inference, serve; got \"training\"");
  CHECK(error_of(ok, {"/strategies/0/dropper/type=capacityy"}).find("/strategies/0/dropper/type: expected one of: none") != std::string::npos);
  CHECK(error_of(ok, {"/strategies/0/name=a b"}).find("/strategies/0/name: expected a name") != std::string::npos);
  CHECK(error_of(ok, {"/strategies/1={\"name\":\"plain\"}"}) ==
        "s.json: /strategies/1/name: duplicate strategy name 'plain' (also /strategies/0); names must be unique");
  CHECK(error_of(ok, {"/cluster/devices_per_node=3"}) ==
        "s.json: /cluster/placement/type: this placement needs the 8 experts to divide evenly over the 3 devices "
              "(nodes × devices_per_node); use \"eplb\" with redundant_experts so that experts + redundant_experts "
              "fills every device with the same number of slots");
  CHECK(error_of(ok, {"/steps=1.5"}) == "s.json: /steps: expected an integer in [1, 10000000], got 1.5");
  CHECK(error_of(ok, {"/stream/noise=-1"}) == "s.json: /stream/noise: expected a number in [0, 1000000], got -1");
  CHECK(error_of("{\"name\": \"x\",\n \"steps\": }") .rfind("s.json: line 2, column", 0) == 0);
  CHECK(error_of(ok, {"steps=3"}).find("expected POINTER=VALUE") != std::string::npos);
  CHECK(error_of(ok, {"/strategies/5/name=z"}).find("index 5 is past the end") != std::string::npos);
  // Below a missing field only objects may be created: nlohmann would grow
  // a new array up to the index (fuzz finding: 5555555555 asked for 88 GB).
  CHECK(error_of(ok, {"/nothing/5555555555/x=1"}) ==
        "s.json: /nothing/5555555555/x: --set: '5555555555' indexes an array that does not exist; "
        "set the whole array instead");
  CHECK(error_of(ok, {"/nothing/-=1"}).find("indexes an array that does not exist") != std::string::npos);
  CHECK(error_of(ok, {"/strategies/99999999999999999999999/name=z"}).find("cannot set this JSON pointer") !=
        std::string::npos);
}

TEST_CASE("overrides (--set) set values by JSON pointer, parsed as JSON or else as a string", "[scenario]") {
  Scenario sc = parse_scenario(testing::tiny_scenario_text(), "s.json",
                               {"/steps=50", "/mode=inference", "/strategies/0/name=renamed", "/stream/zipf=0"});
  CHECK(sc.steps == 50);
  CHECK_FALSE(sc.train);
  CHECK(sc.strategies[0].name == "renamed");
}

TEST_CASE("strategies can be selected by name", "[scenario]") {
  Scenario sc = tiny_scenario(R"({"strategies":[{"name":"a"},{"name":"b"},{"name":"c"}]})");
  select_strategies(sc, {"c", "a"});
  REQUIRE(sc.strategies.size() == 2);
  CHECK(sc.strategies[0].name == "c");
  CHECK_THROWS_WITH(select_strategies(sc, {"zz"}), Catch::Contains("valid values are: c, a"));
}

TEST_CASE("sources other than synthetic need inference mode", "[scenario]") {
  CHECK(error_of(testing::tiny_scenario_text(R"({"stream":{"source":"static","domains":null}})")) ==
        "s.json: /mode: must be \"inference\" with source \"static\": only the synthetic source has hidden vectors to "
        "train the router on");
}

TEST_CASE("a * in an override's pointer sets the field in every array entry", "[scenario]") {
  Scenario sc = parse_scenario(
      testing::tiny_scenario_text(R"({"strategies":[{"name":"a","dropper":{"type":"capacity"}},
                                                  {"name":"b","dropper":{"type":"capacity","cf":2}}]})"),
      "s.json", {"/strategies/*/dropper/cf=1.25"});
  CHECK(sc.strategies[0].dropper.params.real("cf") == 1.25);
  CHECK(sc.strategies[1].dropper.params.real("cf") == 1.25);
  CHECK(error_of(testing::tiny_scenario_text(), {"/strategies/0/balancers/*/alpha=1"}) ==
        "s.json: /strategies/0/balancers/*/alpha: --set: the wildcard '*' matches nothing in this scenario");
}

TEST_CASE("fuzzer regressions: inputs that once escaped as other exceptions", "[scenario][fuzz]") {
  // A number too large for a double is an out_of_range in nlohmann, not a parse_error.
  CHECK(error_of("9e999999999999999") == "s.json: /: a number is out of range (beyond ±1.8e308)");
  CHECK(error_of(R"({"name":"x","steps":1e400,"strategies":[{"name":"a"}]})").rfind("s.json: /steps: a number is out of range", 0) == 0);
  CHECK(error_of(testing::tiny_scenario_text(), {"/steps=9e999"}) ==
        "s.json: /steps: expected an integer in [1, 10000000], got \"9e999\"");
}

TEST_CASE("a strategy's device_limited m becomes its comm-level loss's M", "[scenario]") {
  Scenario sc = tiny_scenario(R"({"strategies":[{"name":"v2","routing":{"type":"device_limited","m":1},
      "balancers":[{"type":"aux_loss","level":"comm"},{"type":"aux_loss","level":"comm","m":2}]}]})");
  CHECK(sc.strategies[0].balancers[0].params.integer("m") == 1);
  CHECK(sc.strategies[0].balancers[1].params.integer("m") == 2);
  CHECK(nlohmann::json::parse(sc.strategies[0].normalized)["balancers"][0]["m"] == 1);
}

TEST_CASE("a --set that is not valid UTF-8 is an input error (fuzz finding)", "[scenario]") {
  const std::string ok = R"({"name":"x","strategies":[{"name":"a"}]})";
  const std::string expected = "--set: the assignment is not valid UTF-8: expected POINTER=VALUE in UTF-8 text";
  CHECK(error_of(ok, {"/steps=\xff"}) == expected);                 // a raw string value
  CHECK(error_of(ok, {"/model/\xc3=1"}) == expected);               // a key
  CHECK(error_of(ok, {"/steps=\"caf\xc3\xa9\""}).find("/steps") != std::string::npos);  // valid UTF-8: the usual error
}
