// libFuzzer target: any bytes given as a scenario file either parse or raise
// InputError; anything else (a crash, another exception) is a bug.
#include <cstdint>
#include <string>

#include "moesim/error.hpp"
#include "moesim/scenario.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 1 << 16) return 0;
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    moesim::Scenario sc = moesim::parse_scenario(text, "fuzz.json");
    (void)sc;
  } catch (const moesim::InputError&) {
  }
  return 0;
}
