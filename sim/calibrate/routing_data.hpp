#pragma once
// What `moesim fit` and `moesim stats` read: a per-token trace (pairs JSONL,
// NPY expert ids) or aggregate per-layer loads ([[...]] or SGLang's
// logical_count), told apart by --format or by the file name's extension.
#include <optional>
#include <string>

#include "moesim/routing_trace.hpp"

namespace moesim {

struct RoutingData {
  std::optional<RoutingTrace> trace;
  std::optional<LayerLoads> loads;
};

// format: "auto" (.npy: NPY ids, .jsonl: pairs, .json: loads), "pairs", "npy" or "loads".
RoutingData read_routing_data(const std::string& path, const std::string& format);

}  // namespace moesim
