// libFuzzer target: `--set` assignments (one per input line, wildcards
// included) applied to a small scenario either give a valid scenario or raise
// InputError; anything else (a crash, a hang, another exception) is a bug.
#include <cstdint>
#include <string>
#include <vector>

#include "moesim/error.hpp"
#include "moesim/scenario.hpp"

namespace {

const char kScenario[] = R"({"name": "fuzz", "steps": 4, "mode": "inference",
  "model": {"experts": 8, "top_k": 2, "hidden": 8},
  "batch": {"sequences": 2, "seq_len": 4},
  "cluster": {"nodes": 1, "devices_per_node": 2},
  "stream": {"source": "static"},
  "strategies": [{"name": "a", "dropper": {"type": "capacity", "cf": 1.25}},
                 {"name": "b", "balancers": [{"type": "bias"}, {"type": "aux_loss", "alpha": 0.01}]}]})";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 1 << 16) return 0;
  std::vector<std::string> sets(1);
  for (std::size_t i = 0; i < size; ++i) {
    if (data[i] == '\n') sets.emplace_back();
    else sets.back() += char(data[i]);
  }
  try {
    (void)moesim::parse_scenario(kScenario, "fuzz.json", sets);
  } catch (const moesim::InputError&) {
  }
  return 0;
}
