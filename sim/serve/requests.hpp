#pragma once
// The requests of a serving run (MODEL.md §10): arrival times and lengths,
// drawn from the seed or read from an arrival trace, fixed before the run so
// that every strategy serves exactly the same requests.
#include <cstdint>
#include <vector>

#include "moesim/serve.hpp"

namespace moesim {

struct RequestSpec {
  double arrival = 0;  // seconds from the run's start
  std::int64_t prompt = 1, output = 1;
};

// Poisson arrivals at spec.rate (exponential gaps from the "arrivals"
// sub-stream, lengths from "lengths"), or the trace's requests; `requests`
// of them, or those arriving before `duration`.
std::vector<RequestSpec> make_requests(const ServeSpec& spec, std::uint64_t seed);

// How many requests a run will have, for progress and memory estimates
// (exact except for Poisson arrivals over a duration: rate × duration).
std::int64_t expected_requests(const ServeSpec& spec);

}  // namespace moesim
