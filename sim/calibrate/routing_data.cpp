#include "routing_data.hpp"

#include "moesim/error.hpp"

namespace moesim {

RoutingData read_routing_data(const std::string& path, const std::string& format) {
  std::string f = format;
  if (f == "auto") {
    auto ends = [&](const std::string& ext) {
      return path.size() >= ext.size() && path.compare(path.size() - ext.size(), ext.size(), ext) == 0;
    };
    f = ends(".npy") ? "npy" : ends(".jsonl") ? "pairs" : ends(".json") ? "loads" : "";
    if (f.empty())
      throw InputError(path, "", "cannot tell the format from the file name: pass --format pairs, npy or loads");
  }
  RoutingData d;
  if (f == "loads") d.loads = read_layer_loads(path);
  else if (f == "pairs" || f == "npy") d.trace = read_routing_trace(path, f);
  else throw InputError("--format", "", "expected one of auto, pairs, npy, loads, got '" + format + "'");
  if (d.trace && d.trace->tokens() < 2)
    throw InputError(path, "", "expected at least 2 tokens (locality needs a previous token)");
  return d;
}

}  // namespace moesim
