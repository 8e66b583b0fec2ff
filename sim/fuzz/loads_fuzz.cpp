// libFuzzer target: any bytes given as a loads file (`place --loads`, `fit`)
// either read as a load matrix (then placed) or raise InputError; anything
// else is a bug.
#include <cstdint>

#include "fuzz_file.hpp"
#include "moesim/error.hpp"
#include "moesim/placement.hpp"
#include "moesim/routing_trace.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 1 << 16) return 0;
  const std::string& path = moesim::fuzz::write_input(data, size, "loads");
  try {
    const auto loads = moesim::read_layer_loads(path).load;
    const int experts = int(loads[0].size());
    if (experts <= 256) (void)moesim::rebalance_experts(loads, experts + 1, 1, 1, 1);  // what place does next
  } catch (const moesim::InputError&) {
  }
  return 0;
}
