#pragma once
// scenarios/bench-v3.json, the benchmarks' shape (E=256, k=8, hidden 64,
// 16×1024 tokens a step), with the given overrides: read from the file, so
// that a benchmark's figures follow it rather than a copy of its numbers.
#include <string>
#include <vector>

#include "moesim/scenario.hpp"

namespace moesim {

inline Scenario bench_scenario(const std::vector<std::string>& overrides = {}) {
  return load_scenario(std::string(MOESIM_SOURCE_DIR) + "/scenarios/bench-v3.json", overrides);
}

}  // namespace moesim
