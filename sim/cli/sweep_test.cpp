// moesim sweep: index, shards, resume, parallel determinism, bad flags.
#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "../testing/fixtures.hpp"

using namespace moesim::testing;
namespace fs = std::filesystem;

namespace {
const char* kVary = "--vary '/strategies/*/dropper/cf=0.5,1.0' --vary /seed=1,2,3";

std::string scenario(const TempDir& dir) {
  write_text(dir.file("s.json"), tiny_scenario_text(R"({"steps":3,"strategies":[
      {"name":"a","dropper":{"type":"capacity"}},{"name":"b","dropper":{"type":"capacity"}}]})"));
  return dir.file("s.json");
}

// Every result file under a sweep folder, by relative path, with its bytes.
std::map<std::string, std::string> files(const std::string& root) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file()) out[fs::relative(e.path(), root).string()] = read_text(e.path().string());
  return out;
}
}  // namespace

TEST_CASE("sweep writes one result per configuration and strategy, and an index", "[sweep]") {
  TempDir dir;
  auto r = run_moesim("sweep " + scenario(dir) + " -q -o " + dir.file("out") + " " + kVary);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const auto index = nlohmann::json::parse(read_text(dir.file("out/tiny/sweep/index.json")));
  CHECK(index["schema"] == "moesim.sweep/1");
  CHECK(index["vary"][0]["path"] == "/strategies/*/dropper/cf");
  CHECK(index["vary"][1]["values"] == nlohmann::json::array({1, 2, 3}));
  REQUIRE(index["runs"].size() == 6);
  // The first --vary varies slowest.
  CHECK(index["runs"][1]["id"] == "001-cf=0.5-seed=2");
  CHECK(index["runs"][3]["values"]["/strategies/*/dropper/cf"] == 1.0);
  CHECK(index["runs"][3]["results"]["b"] == "003-cf=1.0-seed=1/b.json");
  const auto result = nlohmann::json::parse(read_text(dir.file("out/tiny/sweep/003-cf=1.0-seed=1/b.json")));
  CHECK(result["strategy"]["dropper"]["cf"] == 1.0);
  CHECK(result["seed"] == 1);
}

TEST_CASE("three shards produce exactly the unsplit sweep; threads change nothing", "[sweep]") {
  TempDir dir;
  const std::string s = scenario(dir);
  REQUIRE(run_moesim("sweep " + s + " -q --threads 1 -o " + dir.file("whole") + " " + kVary).exit_code == 0);
  for (int i = 0; i < 3; ++i)
    REQUIRE(run_moesim("sweep " + s + " -q --threads 2 --shard " + std::to_string(i) + "/3 -o " + dir.file("split") +
                       " " + kVary)
                .exit_code == 0);
  REQUIRE(run_moesim("sweep " + s + " -q --threads 4 -o " + dir.file("parallel") + " " + kVary).exit_code == 0);
  const auto whole = files(dir.file("whole")), split = files(dir.file("split"));
  CHECK(whole.size() == 13);  // 6 configurations × 2 strategies + the index
  CHECK(whole == split);
  CHECK(whole == files(dir.file("parallel")));
}

TEST_CASE("an interrupted sweep resumes without redoing finished configurations", "[sweep]") {
  TempDir dir;
  const std::string s = scenario(dir);
  REQUIRE(run_moesim("sweep " + s + " -q --shard 0/2 -o " + dir.file("out") + " " + kVary).exit_code == 0);
  const std::string first = dir.file("out/tiny/sweep/000-cf=0.5-seed=1/a.json");
  const auto stamp = fs::last_write_time(first);
  fs::remove(dir.file("out/tiny/sweep/002-cf=0.5-seed=3/b.json"));  // as if killed mid-configuration
  auto r = run_moesim("sweep " + s + " -o " + dir.file("out") + " " + kVary);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.find("skipping 000-cf=0.5-seed=1: done") != std::string::npos);
  CHECK(r.err.find("skipping 004-cf=1.0-seed=2: done") != std::string::npos);
  CHECK(r.err.find("002-cf=0.5-seed=3 done") != std::string::npos);  // incomplete: redone
  CHECK(fs::last_write_time(first) == stamp);
  CHECK(files(dir.file("out")).size() == 13);
}

TEST_CASE("a resumed sweep re-runs configurations whose scenario changed since", "[sweep]") {
  TempDir dir;
  const std::string s = scenario(dir);
  REQUIRE(run_moesim("sweep " + s + " -q -o " + dir.file("out") + " " + kVary).exit_code == 0);
  const std::string a = dir.file("out/tiny/sweep/000-cf=0.5-seed=1/a.json");
  CHECK(nlohmann::json::parse(read_text(a))["scenario"]["steps"] == 3);
  // The same value spelt differently is the same scenario; a new value is not.
  auto same = run_moesim("sweep " + s + " --set /steps=3.0 -o " + dir.file("out") + " " + kVary);
  CHECK(same.err.find("skipping 000-cf=0.5-seed=1: done") != std::string::npos);
  auto changed = run_moesim("sweep " + s + " --set /steps=4 -o " + dir.file("out") + " " + kVary);
  INFO(changed.err);
  REQUIRE(changed.exit_code == 0);
  CHECK(changed.err.find("re-running 000-cf=0.5-seed=1: its saved results are from a different scenario") !=
        std::string::npos);
  CHECK(changed.err.find("skipping") == std::string::npos);
  CHECK(nlohmann::json::parse(read_text(a))["scenario"]["steps"] == 4);
}

TEST_CASE("bad sweep flags and values exit 2 before anything runs", "[sweep]") {
  TempDir dir;
  const std::string s = scenario(dir);
  auto vary = run_moesim("sweep " + s + " -o " + dir.file("out") + " --vary steps=1,2");
  CHECK(vary.exit_code == 2);
  CHECK(vary.err.find("expected PATH=v1,v2,...") != std::string::npos);
  CHECK(run_moesim("sweep " + s + " -o " + dir.file("out") + " --vary /steps=1,2 --shard 2/2").exit_code == 2);
  CHECK(run_moesim("sweep " + s + " -o " + dir.file("out") + " --vary /steps=1,2 --shard x").exit_code == 2);
  for (const char* shard : {"' 1/2'", "+1/2", "-1/2", "1/0", "1/2/3"})
    CHECK(run_moesim("sweep " + s + " -o " + dir.file("out") + " --vary /steps=1,2 --shard " + shard).exit_code == 2);
  auto twice = run_moesim("sweep " + s + " -o " + dir.file("out") + " --vary /steps=1,2 --vary /steps=3");
  CHECK(twice.exit_code == 2);
  CHECK(twice.err.find("--vary /steps: this path is already varied") != std::string::npos);
  // The bad value is in the 5th configuration; nothing runs, and the message names it.
  auto value = run_moesim("sweep " + s + " -o " + dir.file("out") + " --vary /steps=2,3,-1 --vary /seed=1,2");
  CHECK(value.exit_code == 2);
  CHECK(value.err.find("/steps: expected an integer in [1, 10000000], got -1 (sweep configuration "
                       "004-steps=-1-seed=1: --vary /steps=-1, --vary /seed=1)") != std::string::npos);
  CHECK_FALSE(fs::exists(dir.file("out")));
}
