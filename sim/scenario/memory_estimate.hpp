#pragma once
// A run's peak memory, estimated from the scenario before it starts, so that
// `validate` refuses what the machine cannot hold (the estimate and the limit
// in the message) instead of the run dying of bad_alloc or the OOM killer.
#include <cstdint>
#include <string>

#include "moesim/scenario.hpp"

namespace moesim {

struct MemoryEstimate {
  std::int64_t bytes = 0;        // the largest strategy's peak
  std::int64_t largest = 0;      // its largest single part
  std::string largest_pointer;   // the scenario field that sizes that part
  std::string largest_what;      // e.g. "hidden vectors (tokens × hidden)"
};

MemoryEstimate estimate_memory(const Scenario& sc);
// What this process may use: physical memory, lowered by ulimit -v / -d.
std::int64_t memory_limit_bytes();

}  // namespace moesim
