// Serving (MODEL.md §10): hand-worked continuous batching, disaggregation
// and the M/D/1 queue that one device, one expert and one running request
// make of it.
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <cmath>

#include "latency_summary.hpp"
#include "moesim/error.hpp"
#include "moesim/result.hpp"
#include "moesim/simulation.hpp"
#include "requests.hpp"
#include "testing/fixtures.hpp"

namespace moesim {
namespace {

using testing::TempDir;

// One device, one expert, k = 1: an iteration of n tokens takes exactly
// n ms (1e9 FLOPs per token at 1e12 FLOP/s, no weight floor, no links).
std::string one_device(const std::string& serve, const std::string& cluster_extra = "") {
  return fmt::format(R"({{
    "name": "serve-test", "seed": 3, "mode": "serve",
    "model": {{"experts": 1, "top_k": 1, "hidden": 4}},
    "batch": {{"sequences": 4, "seq_len": 8}},
    "cluster": {{"nodes": 1, "devices_per_node": 1, "flops_per_token": 1e9, "peak_flops": 1e12,
                "efficiency": 1, "expert_bytes": 0{}}},
    "serve": {},
    "strategies": [{{"name": "plain"}}]
  }})", cluster_extra, serve);
}

Result run(const std::string& text) {
  const Scenario sc = parse_scenario(text, "s.json");
  return simulate(sc, sc.strategies[0]);
}

const std::vector<double>& column(const Result& r, const char* name) {
  const auto* c = r.requests.find(name);
  REQUIRE(c);
  return *c;
}

std::string arrivals(TempDir& dir, const std::string& lines) {
  const std::string path = dir.file("arrivals.jsonl");
  testing::write_text(path, lines);
  return path;
}

TEST_CASE("continuous batching: decode tokens first, then FCFS admission within max_batch_tokens", "[serve]") {
  TempDir dir;
  // A (t = 0, prompt 4, output 3) and B (t = 1 ms, prompt 2, output 2).
  const std::string trace = arrivals(dir, "{\"time\": 0, \"prompt\": 4, \"output\": 3}\n"
                                          "{\"time\": 0.001, \"prompt\": 2, \"output\": 2}\n");
  SECTION("budget 4: A prefills alone (4 ms); A's decode + B's prefill (3 ms); both decode (2 ms)") {
    const Result r = run(one_device(fmt::format(R"({{"arrivals": {{"trace": "{}"}}, "max_batch_tokens": 4}})", trace)));
    CHECK_THAT(column(r, "first_token")[0], Catch::Matchers::WithinAbs(0.004, 1e-12));
    CHECK_THAT(column(r, "first_token")[1], Catch::Matchers::WithinAbs(0.007, 1e-12));
    CHECK_THAT(column(r, "finish")[0], Catch::Matchers::WithinAbs(0.009, 1e-12));
    CHECK_THAT(column(r, "finish")[1], Catch::Matchers::WithinAbs(0.009, 1e-12));
    CHECK_THAT(column(r, "ttft")[1], Catch::Matchers::WithinAbs(0.006, 1e-12));
    CHECK_THAT(column(r, "tpot")[0], Catch::Matchers::WithinAbs(0.0025, 1e-12));  // (9 − 4)/2 ms
    CHECK_THAT(column(r, "tpot")[1], Catch::Matchers::WithinAbs(0.002, 1e-12));
    CHECK(r.summary.find("iterations") != nullptr);
    CHECK(*r.summary.find("iterations") == 3);
    CHECK_THAT(*r.summary.find("throughput"), Catch::Matchers::WithinRel(5 / 0.009, 1e-12));
    CHECK(*r.series.find("tokens") == std::vector<double>{4, 3, 2});
    CHECK(*r.series.find("prefill_tokens") == std::vector<double>{4, 2, 0});
  }
  SECTION("budget 3, chunked: A's prompt splits 3 + 1 and B joins the second iteration") {
    const Result r = run(one_device(fmt::format(R"({{"arrivals": {{"trace": "{}"}}, "max_batch_tokens": 3}})", trace)));
    CHECK(*r.series.find("tokens") == std::vector<double>{3, 3, 2, 1});
    CHECK_THAT(column(r, "first_token")[0], Catch::Matchers::WithinAbs(0.006, 1e-12));
    CHECK_THAT(column(r, "first_token")[1], Catch::Matchers::WithinAbs(0.006, 1e-12));
    CHECK_THAT(column(r, "finish")[1], Catch::Matchers::WithinAbs(0.008, 1e-12));
    CHECK_THAT(column(r, "finish")[0], Catch::Matchers::WithinAbs(0.009, 1e-12));
  }
  SECTION("budget 3, not chunked: a prompt over the whole budget runs alone rather than never") {
    const Result r = run(one_device(fmt::format(
        R"({{"arrivals": {{"trace": "{}"}}, "max_batch_tokens": 3, "chunked_prefill": false}})", trace)));
    CHECK(*r.series.find("tokens") == std::vector<double>{4, 3, 2});
  }
  SECTION("max_running 1: B waits for A to leave") {
    const Result r = run(one_device(fmt::format(R"({{"arrivals": {{"trace": "{}"}}, "max_running": 1}})", trace)));
    // A: 4 + 1 + 1 ms (finish 6 ms); B: 2 + 1 ms.
    CHECK(*r.series.find("tokens") == std::vector<double>{4, 1, 1, 2, 1});
    CHECK(*r.series.find("queue") == std::vector<double>{0, 1, 1, 0, 0});
    CHECK_THAT(column(r, "finish")[1], Catch::Matchers::WithinAbs(0.009, 1e-12));
  }
}

TEST_CASE("disaggregation: the KV cache crosses to the decode instance, which then decodes alone", "[serve]") {
  TempDir dir;
  const std::string trace = arrivals(dir, "{\"time\": 0, \"prompt\": 4, \"output\": 3}\n");
  // KV: 4 tokens × 1e6 B at 1e9 B/s = 4 ms after the 4 ms prefill; then two 1 ms decode iterations.
  const Result r = run(one_device(
      fmt::format(R"({{"arrivals": {{"trace": "{}"}}, "kv_bytes_per_token": 1e6,
                      "prefill": {{"nodes": 1, "devices_per_node": 1}}, "decode": {{"nodes": 1, "devices_per_node": 1}}}})",
                  trace),
      ", \"inter_bandwidth\": 1e9"));
  CHECK_THAT(column(r, "ttft")[0], Catch::Matchers::WithinAbs(0.004, 1e-12));
  CHECK_THAT(column(r, "finish")[0], Catch::Matchers::WithinAbs(0.010, 1e-12));
  CHECK_THAT(column(r, "tpot")[0], Catch::Matchers::WithinAbs(0.003, 1e-12));
  CHECK(*r.series.find("instance") == std::vector<double>{0, 1, 1});
  const std::vector<double> starts{0, 0.008, 0.009};
  for (std::size_t i = 0; i < starts.size(); ++i)
    CHECK_THAT((*r.series.find("time"))[i], Catch::Matchers::WithinAbs(starts[i], 1e-12));
}

TEST_CASE("M/D/1: one device, one running request, fixed service time S", "[serve]") {
  // Prompt 100 tokens = S = 0.1 s; Poisson at λ = ρ/S, ρ = 0.5: mean TTFT =
  // S + ρS/(2(1 − ρ)) = 0.15 s (Pollaczek–Khinchine with deterministic service).
  const Result r = run(one_device(R"({"arrivals": {"process": "poisson", "rate": 5}, "prompt": 100, "output": 1,
                                      "requests": 40000, "max_running": 1})"));
  const double S = 0.1, rho = 0.5;
  CHECK_THAT(*r.summary.find("ttft_mean"), Catch::Matchers::WithinRel(S + rho * S / (2 * (1 - rho)), 0.03));
  // Half the requests find the device idle (P(wait = 0) = 1 − ρ): the median is S, the tail queues.
  CHECK_THAT(*r.summary.find("ttft_p50"), Catch::Matchers::WithinRel(S, 0.05));
  CHECK(*r.summary.find("ttft_p90") > 2 * S);
  CHECK(*r.summary.find("requests_completed") == 40000);
  CHECK_THAT(*r.summary.find("throughput"), Catch::Matchers::WithinRel(5.0, 0.02));  // λ: 1 output token each
  CHECK(*r.summary.find("tpot_mean") == 0);  // no request has a second token
}

TEST_CASE("quantile interpolates between closest ranks, as numpy does", "[serve]") {
  const std::vector<double> v{4, 1, 3, 2};  // sorted 1 2 3 4
  CHECK(quantile(v, 0.5) == 2.5);
  CHECK(quantile(v, 0.0) == 1);
  CHECK(quantile(v, 1.0) == 4);
  CHECK_THAT(quantile(v, 0.9), Catch::Matchers::WithinAbs(3.7, 1e-12));  // 0.9·3 = 2.7 → 3 + 0.7
  CHECK(quantile(std::vector<double>{}, 0.5) == 0);
}

TEST_CASE("request lengths: fixed, uniform within bounds, lognormal with the given mean", "[serve]") {
  ServeSpec spec;
  spec.rate = 10;
  spec.requests = 20000;
  spec.prompt.kind = LengthDist::Kind::uniform;
  spec.prompt.min = 10;
  spec.prompt.max = 20;
  spec.output.kind = LengthDist::Kind::lognormal;
  spec.output.mean = 200;
  spec.output.sigma = 0.5;
  spec.output.max = 100000;
  const auto reqs = make_requests(spec, 7);
  REQUIRE(reqs.size() == 20000);
  double prompt = 0, output = 0;
  std::int64_t lo = 99, hi = 0;
  for (const auto& r : reqs) {
    prompt += double(r.prompt), output += double(r.output);
    lo = std::min(lo, r.prompt), hi = std::max(hi, r.prompt);
  }
  CHECK(lo == 10);
  CHECK(hi == 20);
  CHECK_THAT(prompt / 20000, Catch::Matchers::WithinAbs(15.0, 0.1));
  CHECK_THAT(output / 20000, Catch::Matchers::WithinRel(200.0, 0.02));
  // Exponential gaps at rate 10: the last of 20000 arrivals near t = 2000 s.
  CHECK_THAT(reqs.back().arrival, Catch::Matchers::WithinRel(2000.0, 0.03));
  // A duration keeps the arrivals before it.
  spec.duration = 5;
  const auto timed = make_requests(spec, 7);
  CHECK(!timed.empty());
  CHECK(timed.back().arrival < 5);
  CHECK(timed.size() < 100);
}

TEST_CASE("online EPLB: moved weights delay the next iteration (blocking) or share its link (async)", "[serve]") {
  const std::string text = R"({
    "name": "eplb-serve", "seed": 1, "mode": "serve",
    "model": {"experts": 16, "top_k": 2, "layers": 2, "hidden": 16, "init_std": 0.5},
    "batch": {"sequences": 8, "seq_len": 32},
    "stream": {"domains": 4, "zipf": 1.2, "spread": 2.0},
    "cluster": {"nodes": 2, "devices_per_node": 2},
    "serve": {"arrivals": {"process": "poisson", "rate": 2000}, "prompt": 64, "output": 8, "requests": 200,
              "max_running": 16, "migration": "MODE"},
    "strategies": [{"name": "static"},
                   {"name": "online", "placement": {"type": "eplb", "redundant_experts": 4, "rebalance_every": 5, "window": 5}}]
  })";
  auto with = [&](const std::string& mode) {
    std::string t = text;
    t.replace(t.find("MODE"), 4, mode);
    return parse_scenario(t, "s.json");
  };
  const Scenario blocking = with("blocking"), async = with("async");
  const Result none = simulate(blocking, blocking.strategies[0]);
  const Result b = simulate(blocking, blocking.strategies[1]);
  const Result a = simulate(async, async.strategies[1]);
  CHECK(*none.summary.find("migrations") == 0);
  CHECK(*none.summary.find("migration_time") == 0);
  REQUIRE(*b.summary.find("migrations") > 0);
  // Blocking: every delay is a whole number of expert loads (44,040,192 B at 50 GB/s) on the busiest device.
  const double one = 3.0 * 7168 * 2048 / 50e9;
  for (double d : *b.series.find("migration_delay")) {
    CHECK(d >= 0);
    CHECK_THAT(d / one, Catch::Matchers::WithinAbs(std::round(d / one), 1e-9));
  }
  CHECK(*b.summary.find("migration_time") > 0);
  CHECK(*a.summary.find("migration_time") < *b.summary.find("migration_time"));
  CHECK(*b.summary.find("rank_imbalance") < *none.summary.find("rank_imbalance"));
}

TEST_CASE("serving results are byte-identical for the same seed and differ for another", "[serve]") {
  const std::string text = one_device(R"({"arrivals": {"process": "poisson", "rate": 50}, "prompt": {"dist": "uniform", "min": 5, "max": 30},
                                          "output": {"dist": "lognormal", "mean": 10, "sigma": 0.5}, "requests": 300})");
  const Scenario sc = parse_scenario(text, "s.json");
  const std::string once = result_text(sc, sc.strategies[0], simulate(sc, sc.strategies[0]));
  CHECK(once == result_text(sc, sc.strategies[0], simulate(sc, sc.strategies[0])));
  const Scenario other = parse_scenario(text, "s.json", {"/seed=4"});
  CHECK(once != result_text(other, other.strategies[0], simulate(other, other.strategies[0])));
}

// The result file's text of the scenario's first strategy, run on `threads` threads.
std::string result_with_threads(const Scenario& sc, int threads) {
  const testing::ThreadCount team(threads);
  return result_text(sc, sc.strategies[0], simulate(sc, sc.strategies[0]));
}

TEST_CASE("serving results are byte-identical whatever the thread count", "[serve]") {
  // 16 experts, top-2, on 4 devices: each step's routes set its devices'
  // loads, so the iteration times and the latencies depend on which of the
  // stream's steps (about 150 of 64 tokens) a request's routes come from.
  // Each step is routed by the whole team, its sequences handed out to
  // threads as they come free.
  const std::string text = R"({
    "name": "serve-threads", "seed": 5, "mode": "serve",
    "model": {"experts": 16, "top_k": 2, "hidden": 8},
    "batch": {"sequences": 4, "seq_len": 16},
    "stream": {"source": "synthetic", "domains": 4, "spread": 3},
    "cluster": {"nodes": 1, "devices_per_node": 4, "expert_bytes": 0},
    "serve": {"arrivals": {"process": "poisson", "rate": 200}, "prompt": {"dist": "uniform", "min": 5, "max": 40},
              "output": {"dist": "uniform", "min": 2, "max": 12}, "requests": 200},
    "strategies": [{"name": "plain"}]
  })";
  const Scenario sc = parse_scenario(text, "s.json");
  const std::string one = result_with_threads(sc, 1);
  CHECK(result_with_threads(sc, 2) == one);
  CHECK(result_with_threads(sc, 3) == one);
}

std::string error_of(const std::string& text) {
  try {
    (void)parse_scenario(text, "s.json");
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST_CASE("serve input errors name the field and what is expected", "[serve]") {
  const std::string ok_serve = R"({"arrivals": {"process": "poisson", "rate": 5}})";
  CHECK(error_of(one_device(ok_serve)).empty());
  CHECK(error_of(one_device(R"({"arrivals": {"process": "poisson"}})")) ==
        "s.json: /serve/arrivals/rate: is required: requests per second of the Poisson process");
  CHECK(error_of(one_device(R"({"arrivals": {"process": "poisson", "rate": 5}, "promt": 3})")).find("/serve/promt") !=
        std::string::npos);
  CHECK(error_of(one_device(R"({"arrivals": {"process": "poisson", "rate": 5}, "prompt": 0})")).find(
            "s.json: /serve/prompt: expected a length in tokens, an integer in [1, 1048576]") == 0);
  CHECK(error_of(one_device(R"({"arrivals": {"process": "poisson", "rate": 5}, "requests": 5, "duration": 1})")) ==
        "s.json: /serve/duration: give either requests (a number of arrivals) or duration (seconds of arrivals), not both");
  CHECK(error_of(one_device(R"({"arrivals": {"process": "poisson", "rate": 5}, "prefill": {"nodes": 1}})")).find(
            "s.json: /serve/decode: is required with the other") == 0);
  std::string with_steps = one_device(ok_serve);
  with_steps.insert(with_steps.find("\"mode\""), "\"steps\": 5, ");
  CHECK(error_of(with_steps) == "s.json: /steps: mode serve runs requests, not steps: set /serve/requests or /serve/duration instead");
  std::string dropper = one_device(ok_serve);
  dropper.replace(dropper.find("{\"name\": \"plain\"}"), 17, R"({"name": "plain", "dropper": {"type": "capacity"}})");
  CHECK(error_of(dropper).find("s.json: /strategies/0/dropper/type: mode serve keeps every token") == 0);
  // A placement that fits the scenario's cluster but not the decode instance.
  const std::string decode_misfit = R"({
    "name": "x", "mode": "serve", "model": {"experts": 8, "top_k": 2, "hidden": 4},
    "cluster": {"nodes": 1, "devices_per_node": 4},
    "serve": {"arrivals": {"process": "poisson", "rate": 5}, "prefill": {"nodes": 1, "devices_per_node": 4},
              "decode": {"nodes": 1, "devices_per_node": 5}},
    "strategies": [{"name": "e", "placement": {"type": "eplb", "redundant_experts": 4}}]})";
  CHECK(error_of(decode_misfit).find("s.json: /strategies/0/placement/redundant_experts: on the decode instance (1 × 5 "
                                     "devices)") == 0);
  TempDir dir;
  const std::string bad = arrivals(dir, "{\"time\": 1, \"prompt\": 4, \"output\": 3}\n{\"time\": 0.5, \"prompt\": 4, \"output\": 3}\n");
  CHECK(error_of(one_device(fmt::format(R"({{"arrivals": {{"trace": "{}"}}}})", bad))) ==
        fmt::format("{}: line 2: time 0.5 is before the previous line's 1: arrival times must not decrease", bad));
  const std::string missing = arrivals(dir, "{\"time\": 1, \"prompt\": 4}\n");
  CHECK(error_of(one_device(fmt::format(R"({{"arrivals": {{"trace": "{}"}}}})", missing))).find("line 1") !=
        std::string::npos);
}

}  // namespace
}  // namespace moesim

namespace moesim {
namespace {

TEST_CASE("a served trace is replayed from its start when the requests need more tokens", "[serve]") {
  // OLMoE's real routing (16 layers × 64 experts, top-8): 897 tokens, one
  // step of 4 × 200; 40 requests take 4 sequences each (3 for a 500-token
  // prompt, 1 for decoding), 40 steps' worth.
  const std::string text = fmt::format(R"({{
    "name": "olmoe-served", "mode": "serve",
    "model": {{"experts": 64}},
    "batch": {{"sequences": 4, "seq_len": 200}},
    "stream": {{"source": "trace", "format": "pairs", "path": "{}/scenarios/data/olmoe-all.tokens.jsonl"}},
    "cluster": {{"nodes": 1, "devices_per_node": 8}},
    "serve": {{"arrivals": {{"process": "poisson", "rate": 100}}, "prompt": 500, "output": 101, "requests": 40}},
    "strategies": [{{"name": "contiguous"}}]
  }})", MOESIM_SOURCE_DIR);
  const Scenario sc = parse_scenario(text, "s.json");
  CHECK(sc.shape.steps == 1);  // the trace's whole steps
  CHECK(sc.shape.layers == 16);
  const Result r = simulate(sc, sc.strategies[0]);
  CHECK(*r.summary.find("requests_completed") == 40);
  CHECK(*r.summary.find("rank_imbalance") > 0);
  CHECK(result_with_threads(sc, 1) == result_with_threads(sc, 2));  // the same on one thread as on two
  try {
    (void)parse_scenario(text, "s.json", {"/batch/sequences=8"});
    FAIL("a trace shorter than one step was accepted");
  } catch (const InputError& e) {
    CHECK(std::string(e.what()).find("s.json: /batch/sequences: the trace") == 0);
    CHECK(std::string(e.what()).find("holds less than one step of sequences × seq_len = 1600 tokens") !=
          std::string::npos);
  }
}

}  // namespace
}  // namespace moesim

namespace moesim {
namespace {

TEST_CASE("conservation: every request completes, every token runs once, TTFT ≤ end-to-end", "[serve]") {
  // Below saturation on 2 × 2 devices, with disaggregation and without.
  const std::string base = R"({
    "name": "conserve", "seed": 5, "mode": "serve",
    "model": {"experts": 8, "top_k": 2, "layers": 2, "hidden": 8},
    "batch": {"sequences": 8, "seq_len": 16},
    "cluster": {"nodes": 2, "devices_per_node": 2},
    "serve": {"arrivals": {"process": "poisson", "rate": 200},
              "prompt": {"dist": "lognormal", "mean": 40, "sigma": 0.8, "max": 400},
              "output": {"dist": "uniform", "min": 1, "max": 30}, "requests": 2000,
              "max_running": 16, "max_batch_tokens": 64, "kv_bytes_per_token": 1000 EXTRA},
    "strategies": [{"name": "plain"}]
  })";
  for (const std::string extra : {"", R"(, "prefill": {"nodes": 1, "devices_per_node": 2}, "decode": {"nodes": 2, "devices_per_node": 2})"}) {
    std::string text = base;
    text.replace(text.find("EXTRA"), 5, extra);
    const Scenario sc = parse_scenario(text, "s.json");
    const Result r = simulate(sc, sc.strategies[0]);
    const auto& prompt = column(r, "prompt");
    const auto& output = column(r, "output");
    REQUIRE(prompt.size() == 2000);
    CHECK(*r.summary.find("requests_completed") == 2000);
    // Tokens run: each prompt token once in a prefill, each output token after the first once in a decode.
    double expected = 0, prefill_expected = 0, ran = 0, prefill_ran = 0, out_tokens = 0;
    for (std::size_t i = 0; i < prompt.size(); ++i) {
      expected += prompt[i] + output[i] - 1;
      prefill_expected += prompt[i];
      out_tokens += output[i];
    }
    for (double x : *r.series.find("tokens")) ran += x;
    for (double x : *r.series.find("prefill_tokens")) prefill_ran += x;
    CHECK(ran == expected);
    CHECK(prefill_ran == prefill_expected);
    for (std::size_t i = 0; i < prompt.size(); ++i) {
      CHECK(column(r, "ttft")[i] > 0);
      CHECK(column(r, "ttft")[i] <= column(r, "e2e")[i]);
      CHECK(column(r, "first_token")[i] <= column(r, "finish")[i]);
    }
    // Below saturation the system keeps up: requests leave as fast as they arrive.
    const double last_arrival = column(r, "arrival").back();
    CHECK_THAT(2000 / last_arrival, Catch::Matchers::WithinRel(200.0, 0.05));
    CHECK_THAT(*r.summary.find("throughput"), Catch::Matchers::WithinRel(out_tokens / last_arrival, 0.05));
  }
}

}  // namespace
}  // namespace moesim
