// Acceptance of the fit on the shared real data (issue #19): the OLMoE trace
// and a DeepSeek-V3 loads file, with the tolerances docs/calibration.md states.
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "../testing/fixtures.hpp"
#include "calibrate/fit.hpp"
#include "moesim/error.hpp"

using namespace moesim;

namespace {

const std::string kData = MOESIM_SOURCE_DIR "/../shared/data/";

const StatComparison& stat(const FitResult& r, const std::string& name) {
  for (const auto& s : r.stats)
    if (s.name == name) return s;
  FAIL("no statistic " << name);
  return r.stats.front();
}

}  // namespace

TEST_CASE("the fitted stream reproduces the OLMoE trace's four statistics", "[calibrate][fit]") {
  const RoutingTrace trace = read_pairs_trace(kData + "traces/olmoe-all.tokens.jsonl");
  const FitResult r = fit_trace(trace, FitOptions{});
  REQUIRE(r.sample_tokens == 897);  // measured on samples of the trace's size
  const auto& mm = stat(r, "max/mean");
  const auto& imb = stat(r, "batch imbalance");
  const auto& loc = stat(r, "locality");
  const auto& nmi = stat(r, "cross-layer NMI");
  INFO(fmt::format("max/mean {} vs {}, imbalance {} vs {}, locality {} vs {}, NMI {} vs {}", mm.mean, mm.data,
                   imb.mean, imb.data, loc.mean, loc.data, nmi.mean, nmi.data));
  CHECK(imb.data == Approx(6.18).margin(0.01));  // the trace itself (README of the data)
  CHECK(loc.data == Approx(0.415).margin(0.001));
  CHECK(std::abs(mm.mean / mm.data - 1) < 0.15);
  CHECK(std::abs(imb.mean / imb.data - 1) < 0.15);
  CHECK(std::abs(loc.mean - loc.data) < 0.05);
  CHECK(std::abs(nmi.mean - nmi.data) < 0.06);
  for (double tv : r.total_variation) CHECK(tv < 0.08);
}

TEST_CASE("the fitted stream reproduces a DeepSeek-V3 loads file layer by layer", "[calibrate][fit]") {
  const std::string path = kData + "loads/deepseek-v3/prefill_in1024.json";
  const FitResult r = fit_loads(read_layer_loads(path), path, FitOptions{});
  REQUIRE(r.model.layers() == 58);  // 61 layers, the first 3 dense
  CHECK(r.model.layer_ids.front() == 3);
  for (int l = 0; l < r.model.layers(); ++l) {
    INFO("layer " << r.model.layer_ids[l]);
    CHECK(r.total_variation[l] < 0.03);
    CHECK(std::abs(r.max_over_mean[l] / r.data.max_over_mean[l] - 1) < 0.10);
  }
}

TEST_CASE("the fit is deterministic in its seed", "[calibrate][fit]") {
  const RoutingTrace trace = read_pairs_trace(kData + "traces/olmoe-smoke.jsonl");
  FitOptions o;
  o.max_evaluations = 6;
  o.samples = 2;
  const FitResult a = fit_trace(trace, o), b = fit_trace(trace, o);
  CHECK(a.model.weight == b.model.weight);
  CHECK(a.model.type_weight == b.model.type_weight);
  o.seed = 2;
  CHECK(fit_trace(trace, o).model.weight != a.model.weight);
}

TEST_CASE("loads that cannot be top-k counts are input errors naming the layer", "[calibrate]") {
  LayerLoads loads;
  loads.layer_ids = {0, 4};
  loads.load = {std::vector<double>(16, 1.0), std::vector<double>(16, 1.0)};
  loads.load[1][3] = 100.0;  // 100 of 115 > 1/8 of them
  CHECK_THROWS_WITH(check_loads(loads, 8, "f.json"), Catch::Contains("f.json: layer 4: expert load 100"));
  loads.load[1] = std::vector<double>(16, 0.0);
  loads.load[1][0] = 1.0;
  CHECK_THROWS_WITH(check_loads(loads, 8, "f.json"), Catch::Contains("layer 4: expected at least"));
}

TEST_CASE("moesim fit writes a runnable scenario; stats reads traces; bad files exit 2", "[calibrate][cli]") {
  testing::TempDir dir;
  const auto fit = testing::run_moesim("fit " + kData + "traces/olmoe-smoke.jsonl -o " + dir.file("s.json") +
                                       " --max-evaluations 4 --samples 2 --quiet --sequences 2 --seq-len 16 --steps 2");
  INFO(fit.err);
  REQUIRE(fit.exit_code == 0);
  CHECK(fit.out.find("cross-layer NMI") != std::string::npos);
  const auto run = testing::run_moesim("run " + dir.file("s.json") + " -o " + dir.file("out") + " --quiet");
  INFO(run.err);
  CHECK(run.exit_code == 0);
  const auto st = testing::run_moesim("stats " + kData + "traces/olmoe-all.tokens.jsonl");
  CHECK(st.exit_code == 0);
  CHECK(st.out.find("batch imbalance (64 tokens) 6.182, locality 0.415, cross-layer NMI 0.511") != std::string::npos);
  testing::write_text(dir.file("bad.json"), "{\"logical_count\": [[1, 2], [3]]}");
  const auto bad = testing::run_moesim("fit " + dir.file("bad.json") + " -o " + dir.file("t.json"));
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("bad.json") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir.file("t.json")));
}
