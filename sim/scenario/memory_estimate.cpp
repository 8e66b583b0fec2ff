// Peak memory of one strategy's run (simulation.cpp, step.cpp, recorder.cpp,
// result_writer.cpp): the buffers that scale with the scenario, each with the
// field that sizes it. Small fixed parts are covered by a constant.
#include "memory_estimate.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "moesim/components.hpp"
#include "../learn/sgd.hpp"
#include "../serve/requests.hpp"

namespace moesim {

namespace {

constexpr std::int64_t kBase = 64ll << 20;  // program, libraries, thread stacks, small buffers
constexpr std::int64_t kJsonBytesPerNumber = 48;  // result DOM value (16 B) + its text + array overhead

struct Tally {
  std::int64_t total = kBase;
  MemoryEstimate* out;
  void add(double bytes, const std::string& pointer, const std::string& what) {
    const auto b = std::int64_t(std::min(bytes, 9e18));
    total = std::min<std::int64_t>(total + b, std::int64_t(9e18));
    if (b > out->largest) out->largest = b, out->largest_pointer = pointer, out->largest_what = what;
  }
};

}  // namespace

MemoryEstimate estimate_memory(const Scenario& sc) {
  const Shape& s = sc.shape;
  const double T = s.tokens(), E = s.experts, d = s.hidden, k = s.top_k, D = s.devices(), L = s.layers;
  const double recorded = (double(sc.steps) + sc.record.every - 1) / sc.record.every;
  MemoryEstimate out;
  std::int64_t peak = 0;
  for (const StrategySpec& st : sc.strategies) {
    Tally t{kBase, &out};
    t.add(4 * T * d, "/model/hidden", "hidden vectors (tokens × hidden)");
    t.add(2 * 4 * T * E + T * E, "/batch/sequences", "logits, scores and routing mask (tokens × experts)");
    t.add(13 * T * k, "/batch/sequences", "choices and gates (tokens × top_k)");
    t.add(4 * E * d * 2 * L, "/model/layers", "router weights (layers × experts × hidden)");
    t.add(4 * T * L * k, "/model/layers", "every layer's choices of a step (tokens × layers × top_k)");
    if (sc.stream.params.has("domains"))
      t.add(4.0 * L * double(sc.stream.params.integer("domains")) * d, "/stream/domains",
            "domain centres (layers × domains × hidden)");
    {
      // The timing model: per (layer, micro-batch) cell at most one flow per
      // device pair that exchanges tokens, and no more than the cell's copies
      // (twice that with forwarding: to the relay, then fanned out). Each
      // instance's StepTraffic holds 16 B a flow (TrafficFlow); the step
      // model, one per thread and reused, ≈ 56 B (its lists, countdowns and
      // released records) for the largest instance, and the builder's
      // per-thread buffers one cell's flows (16 B each).
      const ServeSpec& v = sc.serve;
      const ClusterHardware& hw = sc.cluster.hardware;
      const double m = hw.micro_batches, per_copy = hw.forwarding ? 2.0 : 1.0;
      const double tokens = v.enabled ? double(v.max_batch_tokens) + v.max_running : T;
      auto flows = [&](double devices) { return L * m * std::min(devices * devices, per_copy * k * tokens / m); };
      double all = flows(D), largest = all;
      if (v.enabled && v.disaggregated) {
        const double prefill = flows(v.prefill.nodes * v.prefill.devices_per_node);
        const double decode = flows(v.decode.nodes * v.decode.devices_per_node);
        all = prefill + decode;
        largest = std::max(prefill, decode);
      }
      t.add(16.0 * all + 56.0 * largest + 16.0 * largest / (L * m), "/cluster/nodes", "timing-model flows (layers × device pairs)");
    }
    if (sc.serve.enabled) {  // sim/serve/: requests, their routes, per-iteration series
      const ServeSpec& v = sc.serve;
      const double requests = double(expected_requests(v));
      const double prompt = double(v.prompt.upper()), output = double(v.output.upper());
      const double instances = v.disaggregated ? 2 : 1;
      t.add(2 * T * L * k, "/batch/sequences", "the routed step requests take tokens from (tokens × layers × top_k)");
      t.add(2 * L * k * instances * (double(v.max_running) * std::min(output, double(s.seq_len)) +
                                     std::max(double(v.max_batch_tokens), prompt)),
            "/serve/max_running", "routes of running requests (max_running × seq_len × layers × top_k)");
      t.add(requests * (120 + 8 * (8 + kJsonBytesPerNumber)), "/serve/requests", "per-request records");
      const double iterations = requests * output / std::max(1.0, std::min(double(v.max_running), requests)) +
                                requests * std::ceil(prompt / double(v.max_batch_tokens));
      t.add(iterations * 10 * (8 + kJsonBytesPerNumber), "/serve/requests", "per-iteration series");
      t.add(8.0 * L * E * 3 * instances, "/model/layers", "per-layer placements and iteration loads");
      peak = std::max(peak, t.total);
      continue;
    }
    if (sc.train) {
      t.add(2 * 4 * T * E, "/batch/sequences", "gradients (tokens × experts)");
      t.add(4 * (E * d + (kGradientBlock + 1) * E) * kGradientChunks, "/model/hidden",
            "weight-gradient partials and row blocks (experts × hidden)");
    }
    for (std::size_t j = 0; j < st.balancers.size(); ++j)
      if (st.balancers[j].params.has("window") && st.balancers[j].params.has("scope") &&
          st.balancers[j].params.str("scope") == "global")
        t.add(8.0 * L * double(std::min<std::int64_t>(st.balancers[j].params.integer("window"), sc.steps)) * (E + D + 1),
              st.balancers[j].pointer + "/window", "the global loss's window (window × experts)");
    if (st.placement.params.has("window"))
      t.add(8.0 * L * double(std::min<std::int64_t>(st.placement.params.integer("window"), sc.steps)) * E, st.placement.pointer + "/window",
            "the placement's load window (window × experts)");
    const double series = recorded * (32 + 4 * L);  // ~30 series plus one per balancer; 4 per layer
    t.add((8 + kJsonBytesPerNumber) * series, "/steps", "per-step series (steps × series)");
    if (sc.record.per_step_loads)
      t.add((8 + kJsonBytesPerNumber) * recorded * (L * (2 * E + 2 * D) + D + L) + 5 * 40 * recorded, "/record/per_step_loads",
            "per-step loads (steps × experts; set /record/per_step_loads to false or raise /record/every)");
    peak = std::max(peak, t.total);
  }
  out.bytes = peak;
  return out;
}

std::int64_t memory_limit_bytes() {
  std::int64_t limit = std::int64_t(::sysconf(_SC_PHYS_PAGES)) * ::sysconf(_SC_PAGESIZE);
  if (limit <= 0) limit = std::int64_t(1) << 62;
  for (int resource : {RLIMIT_AS, RLIMIT_DATA}) {
    struct rlimit rl {};
    if (::getrlimit(resource, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
      limit = std::min<std::int64_t>(limit, std::int64_t(rl.rlim_cur));
  }
  return limit;
}

}  // namespace moesim
