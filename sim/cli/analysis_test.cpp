// The analysis around runs: seeds, intervals in compare, refusal of mixed
// scenarios, sweep columns, search, and the command-line details.
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "../testing/fixtures.hpp"

using namespace moesim::testing;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string two_strategies(const TempDir& dir, const std::string& extra = "{}") {
  json patch = json::parse(R"({"steps":8,"strategies":[{"name":"a"},
      {"name":"b","balancers":[{"type":"bias","u":0.01}]}]})");
  patch.merge_patch(json::parse(extra));
  write_text(dir.file("s.json"), tiny_scenario_text(patch.dump()));
  return dir.file("s.json");
}

double summary(const std::string& path, const std::string& metric) {
  return json::parse(read_text(path))["summary"][metric].get<double>();
}

}  // namespace

TEST_CASE("run --seeds writes a folder per seed; compare gives mean ± t interval over them", "[cli][seeds]") {
  TempDir dir;
  auto r = run_moesim("run " + two_strategies(dir) + " --seeds 1-3 -q -o " + dir.file("out"));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  for (int seed = 1; seed <= 3; ++seed) {
    const std::string a = dir.file(fmt::format("out/tiny/seed-{}/a.json", seed));
    REQUIRE(fs::exists(a));
    CHECK(json::parse(read_text(a))["seed"] == seed);
  }
  // Independently: mean and s over the three files, times t_{0.975,2} = 4.3027 / √3.
  std::vector<double> v;
  for (int seed = 1; seed <= 3; ++seed) v.push_back(summary(dir.file(fmt::format("out/tiny/seed-{}/b.json", seed)), "maxvio_batch"));
  const double mean = (v[0] + v[1] + v[2]) / 3;
  const double sd = std::sqrt(((v[0] - mean) * (v[0] - mean) + (v[1] - mean) * (v[1] - mean) + (v[2] - mean) * (v[2] - mean)) / 2);
  const std::string files = dir.file("out/tiny/seed-1/*.json") + " " + dir.file("out/tiny/seed-2/*.json") + " " +
                            dir.file("out/tiny/seed-3/*.json");
  auto j = run_moesim("compare --json --metrics maxvio_batch " + files);
  INFO(j.err);
  REQUIRE(j.exit_code == 0);
  const auto rows = json::parse(j.out);
  REQUIRE(rows.size() == 2);
  CHECK(rows[1]["strategy"] == "b");
  CHECK(rows[1]["n"] == 3);
  CHECK(rows[1]["seeds"] == json::array({1, 2, 3}));
  CHECK(rows[1]["maxvio_batch"].get<double>() == Approx(mean).epsilon(1e-12));
  CHECK(rows[1]["maxvio_batch_ci95"].get<double>() == Approx(4.302653 * sd / std::sqrt(3.0)).epsilon(1e-6));
  auto table = run_moesim("compare --metrics maxvio_batch " + files);
  CHECK(table.out.find("strategy  seeds") == 0);
  CHECK(table.out.find(" ± ") != std::string::npos);
  CHECK(table.out.find("95% confidence") != std::string::npos);
  // One row per file on request, with its seed and path.
  auto per = json::parse(run_moesim("compare --json --per-seed --metrics maxvio_batch " + files).out);
  CHECK(per.size() == 6);
  CHECK(per[0]["seed"] == 1);
  // The same file twice is counted once, with a warning.
  auto dup = run_moesim("compare --json " + dir.file("out/tiny/seed-1/a.json") + " " + dir.file("out/tiny/seed-1/a.json"));
  CHECK(json::parse(dup.out)[0]["n"] == 1);
  CHECK(dup.err.find("counted once") != std::string::npos);
  CHECK(run_moesim("run " + dir.file("s.json") + " --seeds 3-1").exit_code == 2);
}

TEST_CASE("compare refuses results of different scenarios, naming the difference", "[cli][seeds]") {
  TempDir dir;
  const std::string s = two_strategies(dir);
  REQUIRE(run_moesim("run " + s + " -q -o " + dir.file("x")).exit_code == 0);
  REQUIRE(run_moesim("run " + s + " -q --set /steps=9 --set /stream/zipf=1.5 -o " + dir.file("y")).exit_code == 0);
  REQUIRE(run_moesim("run " + s + " -q --set /strategies/1/balancers/0/u=0.02 -o " + dir.file("z")).exit_code == 0);
  const std::string x = dir.file("x/tiny/a.json"), y = dir.file("y/tiny/a.json");
  auto r = run_moesim("compare " + x + " " + y);
  CHECK(r.exit_code == 2);
  CHECK(r.err == "moesim: error: " + y + ": /scenario/steps: is 9 here but 8 in " + x +
                     ": results of different scenarios (compare them anyway with --mixed); also different: "
                     "/scenario/stream/zipf\n");
  // A strategy of the same name configured differently is refused too.
  auto st = run_moesim("compare " + dir.file("x/tiny/b.json") + " " + dir.file("z/tiny/b.json"));
  CHECK(st.exit_code == 2);
  CHECK(st.err.find("/strategy/balancers/0/u: is 0.02 here but 0.01 in") != std::string::npos);
  // Different strategies of one scenario are what compare is for, in either result schema.
  CHECK(run_moesim("compare " + x + " " + dir.file("x/tiny/b.json")).exit_code == 0);
  std::string text = read_text(dir.file("x/tiny/b.json"));
  text.replace(text.find("moesim.result/2"), 15, "moesim.result/1");  // what an older moesim wrote
  write_text(dir.file("b2.json"), text);
  auto two = run_moesim("compare --json --metrics tokens " + x + " " + dir.file("b2.json"));
  INFO(two.err);
  CHECK(two.exit_code == 0);
  CHECK(json::parse(two.out)[1]["tokens"] == 512);
  text.replace(text.find("moesim.result/1"), 15, "moesim.result/9");
  write_text(dir.file("b9.json"), text);
  CHECK(run_moesim("compare " + dir.file("b9.json")).exit_code == 2);
  // --mixed compares anyway, warns, and names rows by what differs.
  auto m = run_moesim("compare --mixed --metrics tokens " + x + " " + y);
  CHECK(m.exit_code == 0);
  CHECK(m.err.find("warning: " + y + ": /scenario/steps") != std::string::npos);
  CHECK(m.out.find("a steps=8") != std::string::npos);
  CHECK(m.out.find("a steps=9") != std::string::npos);
}

namespace {

// A serving result (mode: serve) as the engine writes it, reduced to what compare reads.
json serve_result(const std::string& strategy, double ttft_p99, double throughput) {
  return json{{"schema", "moesim.result/2"},
              {"scenario", {{"name", "serving"}, {"seed", 1}, {"mode", "serve"},
                            {"serve", {{"arrivals", {{"process", "poisson"}, {"rate", 4}}}, {"requests", 100}}}}},
              {"strategy", {{"name", strategy}}},
              {"summary", {{"ttft_mean", ttft_p99 / 4}, {"ttft_p50", ttft_p99 / 5}, {"ttft_p90", ttft_p99 / 2},
                           {"ttft_p99", ttft_p99}, {"tpot_mean", 0.02}, {"tpot_p99", 0.05}, {"e2e_mean", 1.5},
                           {"e2e_p99", 4.0}, {"throughput", throughput}, {"goodput", 3.5},
                           {"requests_completed", 100}, {"rank_imbalance", 0.25}}},
              {"series", {{"iteration", {0, 1}}, {"time", {0.0, 0.03}}}},
              {"requests", {{"ttft", {0.1, 0.2}}, {"e2e", {1.0, 2.0}}}}};
}

}  // namespace

TEST_CASE("compare shows serving metrics for serving results, refuses them beside step results", "[cli][serve]") {
  TempDir dir;
  write_text(dir.file("no-eplb.json"), serve_result("no-eplb", 0.8, 180).dump());
  write_text(dir.file("eplb.json"), serve_result("eplb", 0.5, 210).dump());
  const std::string both = dir.file("no-eplb.json") + " " + dir.file("eplb.json");
  auto csv = run_moesim("compare --csv " + both);
  INFO(csv.err);
  REQUIRE(csv.exit_code == 0);
  std::istringstream lines(csv.out);
  std::string header, first;
  std::getline(lines, header);
  std::getline(lines, first);
  CHECK(header == "scenario,strategy,id,n,seeds,ttft_mean,ttft_mean_ci95,ttft_p99,ttft_p99_ci95,tpot_mean,"
                  "tpot_mean_ci95,tpot_p99,tpot_p99_ci95,e2e_p99,e2e_p99_ci95,throughput,throughput_ci95,goodput,"
                  "goodput_ci95,rank_imbalance,rank_imbalance_ci95");
  CHECK(first == "serving,no-eplb,,1,1,0.2,,0.8,,0.02,,0.05,,4.0,,180.0,,3.5,,0.25,");
  // The table stars the lower TTFT but the higher throughput (catalogue: throughput is better high).
  auto table = run_moesim("compare " + both);
  CHECK(table.out.rfind("strategy  ttft_mean  ttft_p99  tpot_mean  tpot_p99  e2e_p99  throughput  goodput  "
                        "rank_imbalance\n", 0) == 0);
  CHECK(table.out.find("eplb        0.1250*   0.5000*") != std::string::npos);
  CHECK(table.out.find("210*") != std::string::npos);
  CHECK(table.out.find("180*") == std::string::npos);
  // --metrics still chooses.
  CHECK(run_moesim("compare --csv --metrics throughput " + both).out.rfind("scenario,strategy,id,n,seeds,throughput,", 0) == 0);
  // Beside a step-based result: refused, naming the mode rather than the first differing field.
  json step{{"schema", "moesim.result/2"},
            {"scenario", {{"name", "serving"}, {"seed", 1}, {"mode", "inference"}, {"batch", {{"sequences", 4}}}}},
            {"strategy", {{"name", "eplb"}}},
            {"summary", {{"maxvio_batch", 0.4}, {"rank_imbalance", 0.3}}}};
  write_text(dir.file("step.json"), step.dump());
  auto mixed = run_moesim("compare " + dir.file("eplb.json") + " " + dir.file("step.json"));
  CHECK(mixed.exit_code == 2);
  CHECK(mixed.err == "moesim: error: " + dir.file("step.json") + ": /scenario/mode: is \"inference\" here but \"serve\" in " +
                         dir.file("eplb.json") + ": results of different scenarios, a serving result (latencies per "
                         "request) and a step-based one (loads per step) (compare them anyway with --mixed); also "
                         "different: /scenario/batch/sequences, /scenario/serve/arrivals/process, "
                         "/scenario/serve/arrivals/rate, /scenario/serve/requests\n");
  // With --mixed the step metrics are the default again.
  auto anyway = run_moesim("compare --mixed --csv " + dir.file("eplb.json") + " " + dir.file("step.json"));
  CHECK(anyway.exit_code == 0);
  CHECK(anyway.out.find(",maxvio_batch,") != std::string::npos);
}

TEST_CASE("compare reads a sweep: values and id as columns, seeds grouped", "[cli][seeds][sweep]") {
  TempDir dir;
  const std::string s = two_strategies(dir, R"({"strategies":[{"name":"a","dropper":{"type":"capacity"}}]})");
  REQUIRE(run_moesim("sweep " + s + " -q -o " + dir.file("out") +
                     " --vary '/strategies/*/dropper/cf=0.5,1.0' --vary /seed=1,2")
              .exit_code == 0);
  const std::string sweep = dir.file("out/tiny/sweep");
  auto c = run_moesim(fmt::format("compare --csv --metrics drop_rate {0}/000-cf=0.5-seed=1/a.json "
                                  "{0}/001-cf=0.5-seed=2/a.json {0}/002-cf=1.0-seed=1/a.json {0}/003-cf=1.0-seed=2/a.json",
                                  sweep));
  INFO(c.err);
  REQUIRE(c.exit_code == 0);
  std::istringstream lines(c.out);
  std::string header, first, second;
  std::getline(lines, header);
  std::getline(lines, first);
  std::getline(lines, second);
  CHECK(header == "scenario,strategy,id,/strategies/*/dropper/cf,n,seeds,drop_rate,drop_rate_ci95");
  CHECK(first.rfind("tiny,a,cf=0.5,0.5,2,1;2,", 0) == 0);
  CHECK(second.rfind("tiny,a,cf=1.0,1.0,2,1;2,", 0) == 0);
  auto per = json::parse(run_moesim(fmt::format("compare --json --per-seed {}/001-cf=0.5-seed=2/a.json", sweep)).out);
  CHECK(per[0]["id"] == "001-cf=0.5-seed=2");
  CHECK(per[0]["/strategies/*/dropper/cf"] == 0.5);
  auto table = run_moesim(fmt::format("compare --metrics drop_rate {0}/000-cf=0.5-seed=1/a.json {0}/002-cf=1.0-seed=1/a.json", sweep));
  CHECK(table.out.find("a cf=0.5") != std::string::npos);
}

TEST_CASE("search finds the smallest capacity factor meeting a drop-rate bound", "[cli][search]") {
  TempDir dir;
  const std::string s = two_strategies(dir, R"({"strategies":[{"name":"a","dropper":{"type":"capacity"}}]})");
  auto r = run_moesim("search " + s + " --param /strategies/0/dropper/cf --low 0.25 --high 4 --metric drop_rate "
                      "--below 0.05 --tolerance 0.01 --json -q");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const auto answer = json::parse(r.out)[0];
  const double cf = answer["value"].get<double>();
  CHECK(answer["strategy"] == "a");
  CHECK(answer["metric_value"].get<double>() < 0.05);
  // Monotone: the bound holds at the answer and fails a tolerance below it.
  auto at = [&](double x) {
    auto run = run_moesim(fmt::format("run {} -q --set /strategies/0/dropper/cf={} -o {}", s, x, dir.file("check")));
    REQUIRE(run.exit_code == 0);
    return summary(dir.file("check/tiny/a.json"), "drop_rate");
  };
  CHECK(at(cf) < 0.05);
  CHECK(at(cf - 0.01) >= 0.05);
  CHECK(cf > 0.25);
  auto never = run_moesim("search " + s + " --param /strategies/0/dropper/cf --low 0.1 --high 0.2 --metric drop_rate "
                          "--below 0.0001 -q");
  CHECK(never.exit_code == 2);
  CHECK(never.err.find("raise --high") != std::string::npos);
  CHECK(run_moesim("search " + s + " --param /x --low 1 --high 2 --metric drop_rate").exit_code == 2);
}

TEST_CASE("command-line details: help help, missing arguments, list, integer steps, log progress", "[cli]") {
  auto h = run_moesim("help help");
  CHECK(h.exit_code == 0);
  CHECK(h.out.rfind("usage: moesim help [COMMAND]", 0) == 0);
  auto run = run_moesim("run");
  CHECK(run.exit_code == 2);
  CHECK(run.err.find("moesim run: missing the SCENARIO argument; usage: moesim run SCENARIO") != std::string::npos);
  CHECK(run_moesim("validate").err.find("missing the SCENARIO argument") != std::string::npos);
  CHECK(run_moesim("compare").err.find("missing the RESULT argument") != std::string::npos);
  const std::string list = run_moesim("list").out;
  const auto quality = list.substr(list.find("  quality_loss"));
  CHECK(quality.substr(0, quality.find('\n')).find("better (lower is better)") == std::string::npos);
  CHECK(quality.substr(0, quality.find('\n')).find("lower is better") != std::string::npos);

  TempDir dir;
  write_text(dir.file("s.json"), tiny_scenario_text(R"({"steps":40})"));
  auto r = run_moesim("run " + dir.file("s.json") + " -o " + dir.file("out"));
  REQUIRE(r.exit_code == 0);
  // stderr is not a terminal here: plain lines every 5%, no carriage returns.
  CHECK(r.err.find("[1/1] plain:  50% (20/40 steps") != std::string::npos);
  CHECK(r.err.find("100% (40/40 steps") != std::string::npos);
  CHECK(r.err.find('\r') == std::string::npos);
  const auto doc = json::parse(read_text(dir.file("out/tiny/plain.json")));
  CHECK(doc["series"]["step"][39].is_number_integer());
  CHECK(doc["series"]["step"][39] == 39);
}

TEST_CASE("record.bias_trajectory and record.placement_history add per-step rows", "[cli][record]") {
  TempDir dir;
  write_text(dir.file("s.json"), tiny_scenario_text(R"({"steps":12,
      "cluster":{"placement":{"type":"eplb","redundant_experts":2,"rebalance_every":4,"window":4}},
      "record":{"every":2,"bias_trajectory":true,"placement_history":true},
      "strategies":[{"name":"b","balancers":[{"type":"bias","u":0.01}]}]})"));
  auto r = run_moesim("run " + dir.file("s.json") + " -q -o " + dir.file("out"));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const auto doc = json::parse(read_text(dir.file("out/tiny/b.json")));
  const auto& bias = doc["per_step"]["bias"];  // [step][layer][expert]: layer 0 of the only layer
  const auto& replicas = doc["per_step"]["replicas"];
  REQUIRE(bias.size() == 6);  // steps 0, 2, ..., 10
  REQUIRE(replicas.size() == 6);
  REQUIRE(bias[0].size() == 1);
  CHECK(bias[0][0].size() == 8);
  // The bias series summarise these rows.
  double lowest = bias[5][0][0].get<double>();
  for (const auto& b : bias[5][0]) lowest = std::min(lowest, b.get<double>());
  CHECK(lowest == doc["series"]["bias_min"][5].get<double>());
  // 8 experts on 10 slots: every expert has a replica, two have a second one.
  for (const auto& step : replicas) {
    const auto& row = step.at(0);
    double slots = 0;
    for (const auto& n : row) {
      CHECK(n.get<double>() >= 1);
      slots += n.get<double>();
    }
    CHECK(slots == 10);
  }
  CHECK(std::count(replicas[5][0].begin(), replicas[5][0].end(), 2) == 2);
  // Off by default: no such rows.
  write_text(dir.file("plain.json"), tiny_scenario_text());
  REQUIRE(run_moesim("run " + dir.file("plain.json") + " -q -o " + dir.file("p")).exit_code == 0);
  const auto plain = json::parse(read_text(dir.file("p/tiny/plain.json")));
  CHECK_FALSE(plain["per_step"].contains("bias"));
  CHECK_FALSE(plain["per_step"].contains("replicas"));
}
