#pragma once
// The `serve` object of a scenario (MODEL.md §10; the project's description
// is docs/serving.md): requests arriving over time, served by continuous
// batching on one instance or on separate prefill and decode instances.
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace moesim {

class Rng;

// A request length in tokens: fixed, uniform on [min, max], or lognormal with
// the given mean and log-space sigma, rounded and clamped to [1, max].
struct LengthDist {
  enum class Kind { fixed, uniform, lognormal };
  Kind kind = Kind::fixed;
  std::int64_t value = 1;          // fixed
  std::int64_t min = 1, max = 1;   // uniform bounds; lognormal's cap is `max`
  double mean = 1, sigma = 0;      // lognormal
  std::int64_t draw(Rng& rng) const;
  std::int64_t upper() const { return kind == Kind::fixed ? value : max; }
};

// One serving instance's cluster size (disaggregation: prefill and decode).
struct InstanceSize {
  int nodes = 1, devices_per_node = 8;
};

// One request of an arrival trace.
struct ArrivalRecord {
  double time = 0;  // seconds from the run's start
  std::int64_t prompt = 1, output = 1;
};

struct ServeSpec {
  bool enabled = false;  // mode: serve
  // Arrivals: Poisson at `rate` requests/s, or the times (and lengths) of an
  // arrival trace (JSONL lines {"time": s, "prompt": n, "output": n}).
  double rate = 0;
  std::string arrivals_trace;
  std::vector<ArrivalRecord> arrivals;  // the trace's requests, read at validation
  LengthDist prompt, output;
  // The run: `requests` arrivals, or every arrival before `duration` seconds
  // (0 = not set); every admitted request then runs to completion.
  std::int64_t requests = 0;
  double duration = 0;
  int max_running = 256;                 // requests in the batch at once (per instance)
  std::int64_t max_batch_tokens = 8192;  // prefill tokens per iteration
  bool chunked_prefill = true;
  double slo_ttft = std::numeric_limits<double>::infinity(), slo_tpot = std::numeric_limits<double>::infinity();
  // Prefill/decode disaggregation: two instances of these sizes.
  bool disaggregated = false;
  InstanceSize prefill, decode;
  double kv_bytes_per_token = 0;  // KV cache moved prefill → decode, per prompt token
  bool migration_blocking = true;  // online EPLB weight moves: block the next iteration, or share its link
};

}  // namespace moesim
