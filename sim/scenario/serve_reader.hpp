#pragma once
// Reads a scenario's `serve` object (MODEL.md §10) strictly, like every other
// part of a scenario: bounded values, defaults filled in, unknown keys refused.
#include <vector>

#include "json_reader.hpp"
#include "moesim/scenario.hpp"

namespace moesim {

// `serve` of a scenario in mode serve; `sc` must already hold the shape and cluster.
ServeSpec read_serve(JsonReader& serve, const Scenario& sc);

// The requests of an arrival trace: JSONL, one {"time": s, "prompt": n, "output": n}
// per line, times non-decreasing. InputError naming the line on any fault.
std::vector<ArrivalRecord> read_arrival_trace(const std::string& path);

}  // namespace moesim
