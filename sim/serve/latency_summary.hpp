#pragma once
// What a serving run reports (MODEL.md §10): per-request latencies reduced to
// means and percentiles, throughput and goodput.
#include <span>
#include <vector>

#include "moesim/result.hpp"
#include "moesim/serve.hpp"

namespace moesim {

// The p-quantile (p in [0, 1]) of `values` by linear interpolation between
// closest ranks (numpy's default): position p·(n − 1) of the sorted values;
// 0 for no values.
double quantile(std::span<const double> values, double p);

// One finished request.
struct RequestRecord {
  double arrival = 0, first_token = 0, finish = 0;
  std::int64_t prompt = 0, output = 0;
  double ttft() const { return first_token - arrival; }
  // Time per output token after the first; 0 for a one-token output.
  double tpot() const { return output > 1 ? (finish - first_token) / double(output - 1) : 0.0; }
  double e2e() const { return finish - arrival; }
};

// Fills result.summary (ttft_*, tpot_*, e2e_*, throughput, goodput,
// requests_completed, duration) and result.requests from the records, in
// request order. `duration` is the run's length (last completion, from 0).
void summarize_requests(std::span<const RequestRecord> requests, const ServeSpec& spec, double duration,
                        Result& result);

}  // namespace moesim
