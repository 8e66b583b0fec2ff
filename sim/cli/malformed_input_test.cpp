// Table-driven: each malformed input exits 2 with one message naming the file,
// the JSON pointer and what was expected, and leaves no output behind.
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <cmath>
#include <filesystem>

#include "../testing/fixtures.hpp"

using namespace moesim::testing;
namespace fs = std::filesystem;

namespace {
struct Malformed {
  std::string scenario;  // full file text, or "" for the tiny scenario
  std::string flags;     // extra command-line flags (e.g. --set ...)
  std::string message;   // expected after "moesim: error: <file>: "
  std::string input = "";  // if not empty: written to a file that @in in flags names
  bool raw = false;        // flags are the whole command line (@sc: the scenario, @out: the output dir)
};

// Inputs for the reliability cases (issue #17).
std::string nested(int depth) { return std::string(std::size_t(depth), '[') + std::string(std::size_t(depth), ']'); }

// An NPY float32 array of the tiny scenario's 6 steps × 64 tokens × 8 experts,
// with `value` at (row, column).
std::string npy_with(int row, int column, float value) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (384, 8), }";
  header.resize(117, ' ');  // numpy pads so the data starts at byte 128
  header += '\n';
  std::string out = std::string("\x93NUMPY\x01\x00", 8) + char(header.size() & 0xff) + char(header.size() >> 8) + header;
  std::vector<float> data(384 * 8, 0.5f);
  data[std::size_t(row) * 8 + std::size_t(column)] = value;
  out.append(reinterpret_cast<const char*>(data.data()), data.size() * sizeof(float));
  return out;
}

// A JSONL top-k trace for the tiny scenario (6 steps of 4 × 16 tokens, k = 2)
// whose first line is `first` (if given).
std::string jsonl_with(const std::string& first = "") {
  std::string out;
  for (int step = 0; step < 6; ++step)
    for (int t = 0; t < 64; ++t)
      out += fmt::format(R"({{"step":{},"seq":{},"topk_experts":[{},{}],"topk_weights":[0.5,0.5]}})", step, t / 16,
                         t % 8, (t + 1) % 8) + "\n";
  if (!first.empty()) out = first + "\n" + out.substr(out.find('\n') + 1);
  return out;
}

const std::string kNpy = " --set /mode=inference --set '/stream={\"source\":\"trace\",\"path\":\"@in\"}'";
const std::string kJsonl =
    " --set /mode=inference --set '/stream={\"source\":\"trace\",\"format\":\"jsonl\",\"path\":\"@in\"}'";
const std::string kPlace = "place --loads @in --replicas 8 --groups 1 --nodes 1 --devices 1";
const std::string kResultHead = R"({"schema": "moesim.result/1", "scenario": {"name": "s"}, "strategy": {"name": "a"}, )";
std::string zeros(int n) {
  std::string p;
  for (int i = 0; i < n; ++i) p += "/0";
  return p;
}
std::string many_tokens(int n) {
  std::string p;
  for (int i = 0; i < n; ++i) p += "/a";
  return p;
}

// `@` in a message stands for the scenario file's path.
const Malformed kCases[] = {
    {"", "--set /model/top_k=0", "/model/top_k: expected an integer in [1, 8], got 0"},
    {"", "--set /model/top_k=9", "/model/top_k: expected an integer in [1, 8], got 9"},
    {"", "--set /model/experts=0", "/model/experts: expected an integer in [1, 4096], got 0"},
    {"", "--set /model/experts=1e9", "/model/experts: expected an integer in [1, 4096], got 1000000000.0"},
    {"", "--set '/model/experts=\"8\"'", "/model/experts: expected an integer in [1, 4096], got \"8\""},
    {"", "--set /model/hidden=-3", "/model/hidden: expected an integer in [1, 8192], got -3"},
    {"", "--set /model/score=relu", "/model/score: expected one of: sigmoid, softmax; got \"relu\""},
    {"", "--set /model/lr=-1", "/model/lr: expected a number in [0, 1000000000], got -1"},
    {"", "--set /model/route_scale=0", "/model/route_scale: expected a number in [1e-06, 1000000], got 0"},
    {"", "--set /model/init_std=null", "/model/init_std: expected a number in [0, 100], got null"},
    {"", "--set /model/normalize_gates=1", "/model/normalize_gates: expected true or false, got 1"},
    {"", "--set /model/score=sigmoid --set /model/normalize_gates=false",
     "/model/normalize_gates: must be true for sigmoid scores (DeepSeek-V3 always normalises sigmoid gates)"},
    {"", "--set /model/lr_rate=3", "/model/lr_rate: unknown key 'lr_rate'; valid keys here are: layers, experts, top_k"},
    {"", "--set /model=3", "/model: expected an object, got an integer"},
    {"", "--set /batch/sequences=0", "/batch/sequences: expected an integer in [1, 4194304], got 0"},
    {"", "--set /batch/seq_len=4194304", "/batch/seq_len: sequences × seq_len must be at most 4194304 tokens per step, got 4 × 4194304"},
    {"", "--set /batch/tokens=3", "/batch/tokens: unknown key 'tokens'; valid keys here are: sequences, seq_len"},
    {"", "--set /cluster/nodes=0", "/cluster/nodes: expected an integer in [1, 4096], got 0"},
    {"", "--set /cluster/devices_per_node=3", "/cluster/placement/type: this placement needs the 8 experts to divide evenly over the 3 devices"},
    {"", "--set /cluster/placement=random", "/cluster/placement/type: expected one of: contiguous, eplb, round_robin; got \"random\""},
    {"", "--set /cluster/placement=3", "/cluster/placement: expected a placement name (contiguous, eplb, round_robin) or an object"},
    {"", "--set '/cluster/placement={\"type\":\"eplb\",\"redundant_experts\":1}'",
     "/cluster/placement/redundant_experts: experts + redundant_experts = 9 must be divisible by the 2 devices"},
    {"", "--set /cluster/efficiency=0", "/cluster/efficiency: expected a number in [1e-06, 1], got 0"},
    {"", "--set /steps=0", "/steps: expected an integer in [1, 10000000], got 0"},
    {"", "--set /steps=ten", "/steps: expected an integer in [1, 10000000], got \"ten\""},
    {"", "--set /seed=-1", "/seed: expected an integer in [0, 9223372036854775807], got -1"},
    {"", "--set /mode=eval", "/mode: expected one of: train, inference, serve; got \"eval\""},
    {"", "--set /name=a/b", "/name: expected a name of 1 to 100 letters, digits, '.', '_' or '-'"},
    {"", "--set /name=..", "/name: expected a name of 1 to 100 letters, digits, '.', '_' or '-'"},
    {"", "--set /stepz=3", "/stepz: unknown key 'stepz'; valid keys here are: name, seed, steps, mode"},
    {"", "--set /stream/source=file", "/stream/source: expected one of: synthetic, calibrated, static"},
    {"", "--set /stream/zipf=-0.5", "/stream/zipf: expected a number in [0, 100], got -0.5"},
    {"", "--set /stream/mix=1.5", "/stream/mix: expected a number in [0, 1], got 1.5"},
    {"", "--set /stream/domains=0", "/stream/domains: expected an integer in [1, 100000], got 0"},
    {"", "--set /stream/weights=[1,2]", "/stream/weights: expected 4 weights (one per domain), got 2"},
    {"", "--set /stream/weights=[1,2,-1,0]", "/stream/weights/2: expected a number in [0, 1e+300], got -1"},
    {"", "--set /stream/weights=[0,0,0,0]", "/stream/weights: at least one weight must be positive"},
    {"", "--set /stream/schedule=[[1,1,1,1]]", "/stream/schedule_every: must be at least 1 when a schedule is given"},
    {"", "--set /stream/burst_domain=4", "/stream/burst_domain: expected a domain index in [0, 3], got 4"},
    {"", "--set /strategies=[]", "/strategies: expected a non-empty array of objects, got []"},
    {"", "--set /strategies/0=3", "/strategies/0: expected an object, got an integer"},
    {"", "--set /strategies/0/name=", "/strategies/0/name: expected a name of 1 to 100"},
    {"", "--set /strategies/0/balancers=[{}]", "/strategies/0/balancers/0/type: is required: one of"},
    {"", "--set '/strategies/0/balancers=[{\"type\":\"magic\"}]'", "/strategies/0/balancers/0/type: expected one of:"},
    {"", "--set /strategies/0/routing/type=dice", "/strategies/0/routing/type: expected one of: none"},
    {"", "--set /strategies/0/dropper/kind=none", "/strategies/0/dropper/kind: unknown key 'kind'; valid keys here are: type"},
    {"", "--set /record/every=0", "/record/every: expected an integer in [1, 6], got 0"},
    {"", "--set /record/window=7", "/record/window: expected an integer in [1, 6], got 7"},
    {"", "--set /record/per_step_loads=yes", "/record/per_step_loads: expected true or false, got \"yes\""},
    {"{\"name\": \"x\", }", "", "line 1, column 15: invalid JSON"},
    {"[1, 2]", "", "/: expected an object, got an array"},
    {"{\"strategies\": [{\"name\": \"a\"}]}", "", "/name: is required: a name"},
    {"", "--set steps=3", "expected POINTER=VALUE"},
    {"", "--set /strategies/3/name=x", "/strategies/3/name: --set: index 3 is past the end of an array of 1 entries"},
    {"", "--set /steps/x=3", "/steps/x: --set: cannot set a field inside an integer"},
    // Issue #17. Nesting depth: scenario fields, --set values and pointers, --vary, traces, loads, results.
    {"{\"name\": \"a\", \"model\": {\"experts\": " + nested(200000) + "}}", "",
     "/model/experts" + zeros(62) + ": nesting deeper than 64 levels of arrays and objects"},
    {"", "--set '/model/hidden=" + nested(65) + "'", "nesting deeper than 64 levels"},
    {"", "--set '/strategies/*" + many_tokens(30000) + "=1'", "the pointer has more than 64 tokens (the JSON nesting limit)"},
    {"", "--set '" + many_tokens(65) + "=1'", "the pointer has more than 64 tokens"},
    {"", "sweep @sc -o @out --vary '/strategies/*" + many_tokens(30000) + "=1,2'", "the pointer has more than 64 tokens", "", true},
    {"", kJsonl, "line 1, at /topk_experts" + zeros(63) + ": nesting deeper than 64",
     jsonl_with(R"({"step":0,"seq":0,"topk_experts":)" + nested(100000) + "}")},
    {"", kPlace, "nesting deeper than 64 levels", nested(200000), true},
    {"", "compare @in", "/summary/x" + zeros(62) + ": nesting deeper than 64", kResultHead + R"("summary": {"x": )" + nested(100) + "}}", true},
    {"", "compare @in", "/scenario" + zeros(63) + ": nesting deeper", R"({"scenario": )" + std::string(100000, '['), true},
    // Duplicate keys are errors, never the last value.
    {"{\"name\": \"a\", \"name\": \"b\", \"strategies\": [{\"name\": \"x\"}]}", "",
     "/name: duplicate key 'name': each key may appear once in an object"},
    {"{\"name\": \"a\", \"model\": {\"experts\": 8, \"experts\": 16}, \"strategies\": [{\"name\": \"x\"}]}", "",
     "/model/experts: duplicate key 'experts'"},
    {"", "--set '/stream={\"domains\":4,\"domains\":5}'", "/domains: duplicate key 'domains'"},
    {"", kJsonl, "line 1, at /step: duplicate key 'step'",
     jsonl_with(R"({"step":0,"step":0,"seq":0,"topk_experts":[0,1],"topk_weights":[0.5,0.5]})")},
    {"", kPlace, "/0/a: duplicate key 'a'", R"([{"a": 1, "a": 2}])", true},
    {"", "compare @in", "/summary/x: duplicate key 'x'", kResultHead + R"("summary": {"x": 1, "x": 2}})", true},
    // Numbers beyond double, non-finite and out-of-range values.
    {"{\"name\": \"a\", \"steps\": 1e999, \"strategies\": [{\"name\": \"x\"}]}", "",
     "/steps: a number is out of range (beyond ±1.8e308)"},
    {"", "--set /model/lr=1e999", "/model/lr: expected a number in [0, 1000000000], got \"1e999\""},  // not JSON: a string
    {"", kNpy, "row 100, column 3: expected a finite logit with |z| ≤ 1e+06, got nan", npy_with(100, 3, std::nanf(""))},
    {"", kNpy, "row 0, column 0: expected a finite logit with |z| ≤ 1e+06, got inf", npy_with(0, 0, INFINITY)},
    {"", kNpy, "row 383, column 7: expected a finite logit with |z| ≤ 1e+06, got -inf", npy_with(383, 7, -INFINITY)},
    {"", kNpy, "row 5, column 1: expected a finite logit with |z| ≤ 1e+06, got 1e+30", npy_with(5, 1, 1e30f)},
    {"", kJsonl, "line 1: \"topk_weights\"/0: expected a finite number in [0, 1e+06], got -0.5",
     jsonl_with(R"({"step":0,"seq":0,"topk_experts":[0,1],"topk_weights":[-0.5,0.5]})")},
    {"", kJsonl, "line 1: \"topk_weights\"/1: expected a finite number in [0, 1e+06], got 1e+300",
     jsonl_with(R"({"step":0,"seq":0,"topk_experts":[0,1],"topk_weights":[0.5,1e300]})")},
    {"", kJsonl, "line 1, at /topk_weights/0: a number is out of range",
     jsonl_with(R"({"step":0,"seq":0,"topk_experts":[0,1],"topk_weights":[1e999,0.5]})")},
    {"", kPlace, "/0/1: load: expected a finite number in [0, 1e+30], got 1e+305", "[[1, 1e305, 1e305, 1e305, 1, 1, 1, 1]]", true},
    {"", kPlace, "/1/0: load: expected a finite number in [0, 1e+30], got -1", "[[1, 2], [-1, 2]]", true},
    {"", "compare @in", "/summary/x: a number is out of range", kResultHead + R"("summary": {"x": 1e999}})", true},
    // A top-k trace has no scores and fixes the choices.
    {"", kJsonl + " --set '/strategies/0/balancers=[{\"type\":\"aux_loss\"}]'",
     "/strategies/0/balancers/0/type: needs the router's scores, which a trace of expert choices (stream format jsonl, pairs or NPY ids) does not have",
     jsonl_with()},
    {"", kJsonl + " --set '/strategies/0/balancers=[{\"type\":\"z_loss\"}]'",
     "/strategies/0/balancers/0/type: needs the router's scores", jsonl_with()},
    {"", kJsonl + " --set '/strategies/0/routing={\"type\":\"device_limited\",\"m\":1}'",
     "/strategies/0/routing/type: cannot restrict replayed top-k choices", jsonl_with()},
    // Sizes and counts: files, lines, threads, replicas, memory.
    {"", "run /dev/zero -o @out", "/dev/zero: the scenario file is larger than the limit of 64 MiB", "", true},
    {"", kJsonl, "line 1: line longer than the limit of 1048576 bytes", std::string(2 << 20, ' ') + "x\n", false},
    {"", "--threads 100000", "--threads: expected an integer in [1, 1024], got 100000"},
    {"", "--threads 2147483647", "--threads: expected an integer in [1, 1024], got 2147483647"},
    {"", "--threads 0", "--threads: expected an integer in [1, 1024], got 0"},
    {"", "sweep @sc -o @out --vary /seed=1,2 --threads 100000", "--threads: expected an integer in [1, 1024]", "", true},
    {"", "place --loads @in --replicas 2147483647 --groups 1 --nodes 1 --devices 1",
     "--replicas: expected an integer in [4, 1048576], got 2147483647", "[[1, 2, 3, 4]]", true},
    {"", "place --loads @in --replicas 8 --groups 1 --nodes 1 --devices 9",
     "--devices: expected an integer in [1, 8], got 9", "[[1, 2, 3, 4]]", true},
    {"", "fit @in -o @out/f.json --devices-per-node 100000",
     "--devices-per-node: expected an integer in [1, 4096], got 100000", "[[1, 2, 3, 4]]", true},
    {"", "fit @in -o @out/f.json --nodes 2147483647",
     "--nodes: expected an integer in [0, 4096], got 2147483647", "[[1, 2, 3, 4]]", true},
    {"", "fit @in -o @out/f.json --samples 1", "--samples: expected an integer ≥ 2, got 1", "[[1, 2, 3, 4]]", true},
    {"", "stats @in --window 0", "--window: expected an integer ≥ 1, got 0", "[[1, 2, 3, 4]]", true},
    {"", "stats @in --seq-len -1", "--seq-len: expected an integer ≥ 0, got -1", "[[1, 2, 3, 4]]", true},
    {"", "--set /model/hidden=8192 --set /batch/sequences=4096 --set /batch/seq_len=1024",
     "/model/hidden: the run needs an estimated"},
    {"", "--set /model/experts=4096 --set /steps=10000000",
     "/record/per_step_loads: the run needs an estimated"},
    // Messages: one line, whatever the input holds.
    {"{\"name\": \"a\", \"bad\\nmoesim: error: forged\": 1, \"strategies\": [{\"name\": \"x\"}]}", "",
     "unknown key 'bad\\nmoesim: error: forged'"},
    {"{\"name\": \"a\", \"\\u001b[2J\": 1, \"strategies\": [{\"name\": \"x\"}]}", "", "unknown key '\\x1b[2J'"},
    {"", kJsonl, "line 1: unknown key \"a\\nmoesim: error: b\": valid keys are",
     jsonl_with(R"({"a\nmoesim: error: b":1,"step":0,"seq":0,"topk_experts":[0,1],"topk_weights":[0.5,0.5]})")},
    {"", kNpy, "malformed NPY header",
     std::string("\x93NUMPY\x01\x00\x30\x00", 10) + "{'descr': '<f4',\n'moesim: error: forged': 1}        \n"},
    {"", kNpy, "NPY header of 4294967295 bytes: expected at most 65536",
     std::string("\x93NUMPY\x02\x00\xff\xff\xff\xff", 12) + std::string(64, ' ')},
};
}  // namespace

TEST_CASE("malformed inputs exit 2 with one precise message and leave no output", "[cli][malformed]") {
  TempDir dir;
  int index = 0;
  for (const Malformed& m : kCases) {
    const std::string file = dir.file("case" + std::to_string(index++) + ".json");
    write_text(file, m.scenario.empty() ? tiny_scenario_text() : m.scenario);
    const std::string out = dir.file("out" + std::to_string(index)), input = dir.file("in" + std::to_string(index));
    if (!m.input.empty()) write_text(input, m.input);
    auto expand = [&](std::string text) {
      for (const auto& [at, value] : {std::pair<std::string, std::string>{"@in", input}, {"@sc", file}, {"@out", out}})
        for (std::size_t p; (p = text.find(at)) != std::string::npos;) text.replace(p, at.size(), value);
      return text;
    };
    auto r = run_moesim(m.raw ? expand(m.flags) : "run " + file + " -o " + out + " " + expand(m.flags));
    INFO("case " << index - 1 << " flags: " << m.flags.substr(0, 200) << "\nstderr: " << r.err.substr(0, 2000));
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(m.message) != std::string::npos);
    CHECK(r.err.rfind("moesim: error: ", 0) == 0);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);  // one message
    CHECK_FALSE(fs::exists(out));
  }
  CHECK(index >= 100);
}
