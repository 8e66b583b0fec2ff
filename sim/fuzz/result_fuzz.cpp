// libFuzzer target: any bytes given to `compare` (or a resumed sweep) as a
// result file either read or raise InputError; anything else is a bug.
#include <cstdint>

#include "fuzz_file.hpp"
#include "moesim/error.hpp"
#include "moesim/result.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 1 << 16) return 0;
  const std::string& path = moesim::fuzz::write_input(data, size, "result");
  try {
    (void)moesim::read_result_summary(path);
  } catch (const moesim::InputError&) {
  }
  return 0;
}
