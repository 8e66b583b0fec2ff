// The moesim program end to end: exit codes, messages, files written or not.
#include <catch2/catch.hpp>
#include <filesystem>

#include "../testing/fixtures.hpp"

using namespace moesim::testing;
namespace fs = std::filesystem;

TEST_CASE("run writes one result per strategy; compare tabulates them", "[cli]") {
  TempDir dir;
  write_text(dir.file("s.json"), tiny_scenario_text(R"({"strategies":[{"name":"a"},{"name":"b"}]})"));
  auto r = run_moesim("run " + dir.file("s.json") + " -o " + dir.file("out"));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(fs::exists(dir.file("out/tiny/a.json")));
  CHECK(fs::exists(dir.file("out/tiny/b.json")));
  auto c = run_moesim("compare " + dir.file("out/tiny/a.json") + " " + dir.file("out/tiny/b.json"));
  CHECK(c.exit_code == 0);
  CHECK(c.out.find("maxvio_batch") != std::string::npos);
  CHECK(c.out.find("\na ") != std::string::npos);
  auto j = run_moesim("compare --json --metrics drop_rate " + dir.file("out/tiny/a.json"));
  CHECK(j.out.find("\"drop_rate\": 0.0") != std::string::npos);
  auto bad = run_moesim("compare --metrics nope " + dir.file("out/tiny/a.json"));
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("unknown metric 'nope'; valid values are: tokens, maxvio_batch") != std::string::npos);
}

TEST_CASE("a malformed scenario exits 2 naming the pointer and leaves no file", "[cli]") {
  TempDir dir;
  write_text(dir.file("s.json"), tiny_scenario_text(R"({"model":{"top_k":99}})"));
  auto r = run_moesim("run " + dir.file("s.json") + " -o " + dir.file("out"));
  CHECK(r.exit_code == 2);
  CHECK(r.err == "moesim: error: " + dir.file("s.json") + ": /model/top_k: expected an integer in [1, 8], got 99\n");
  CHECK_FALSE(fs::exists(dir.file("out")));
  auto v = run_moesim("validate " + dir.file("s.json"));
  CHECK(v.exit_code == 2);
}

TEST_CASE("flags and commands are checked", "[cli]") {
  CHECK(run_moesim("frobnicate").exit_code == 2);
  CHECK(run_moesim("run").exit_code == 2);
  CHECK(run_moesim("run --bogus x.json").exit_code == 2);
  auto t = run_moesim("run x.json --threads 0");
  CHECK(t.exit_code == 2);
  auto missing = run_moesim("run /nonexistent/s.json");
  CHECK(missing.exit_code == 2);
  CHECK(missing.err.find("/nonexistent/s.json: cannot open the scenario file") != std::string::npos);
  auto v = run_moesim("--version");
  CHECK(v.exit_code == 0);
  CHECK(v.out == "moesim 0.1.0\n");
  CHECK(run_moesim("help run").out.find("--strategy") != std::string::npos);
  CHECK(run_moesim("list").out.find("synthetic") != std::string::npos);
}

TEST_CASE("validate accepts every shipped scenario", "[cli]") {
  for (const auto& entry : fs::directory_iterator(fs::path(MOESIM_SOURCE_DIR) / "scenarios")) {
    if (entry.path().extension() != ".json") continue;
    auto r = run_moesim("validate " + entry.path().string());
    INFO(entry.path().string() << "\n" << r.err);
    CHECK(r.exit_code == 0);
    // tools/demo finds results by the file name.
    CHECK(r.out.find("ok (" + entry.path().stem().string() + ",") != std::string::npos);
  }
}
