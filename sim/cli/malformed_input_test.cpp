// Table-driven: each malformed input exits 2 with one message naming the file,
// the JSON pointer and what was expected, and leaves no output behind.
#include <catch2/catch.hpp>
#include <filesystem>

#include "../testing/fixtures.hpp"

using namespace moesim::testing;
namespace fs = std::filesystem;

namespace {
struct Malformed {
  const char* scenario;  // full file text, or "" for the tiny scenario
  const char* flags;     // extra command-line flags (e.g. --set ...)
  const char* message;   // expected after "moesim: error: <file>: "
};

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
    {"", "--set /mode=eval", "/mode: expected one of: train, inference; got \"eval\""},
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
};
}  // namespace

TEST_CASE("malformed inputs exit 2 with one precise message and leave no output", "[cli][malformed]") {
  TempDir dir;
  int index = 0;
  for (const Malformed& m : kCases) {
    const std::string file = dir.file("case" + std::to_string(index++) + ".json");
    write_text(file, std::string(m.scenario).empty() ? tiny_scenario_text() : m.scenario);
    const std::string out = dir.file("out" + std::to_string(index));
    auto r = run_moesim("run " + file + " -o " + out + " " + m.flags);
    INFO("flags: " << m.flags << "\nstderr: " << r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(std::string(m.message)) != std::string::npos);
    CHECK(r.err.rfind("moesim: error: ", 0) == 0);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);  // one message
    CHECK_FALSE(fs::exists(out));
  }
  CHECK(index >= 40);
}
