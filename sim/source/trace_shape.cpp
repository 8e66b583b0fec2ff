#include "trace_shape.hpp"

#include <fmt/format.h>

#include "moesim/error.hpp"
#include "moesim/routing_trace.hpp"
#include "moesim/trace_io.hpp"

namespace moesim {

TraceShape peek_trace_shape(const std::string& path, const std::string& format) {
  TraceShape t;
  if (format == "jsonl") {
    t.kind = TraceShape::choices;
    t.layer_ids = {0};
    return t;
  }
  if (format == "pairs") {
    const RoutingTrace r = read_pairs_trace(path);
    t.kind = TraceShape::choices;
    t.layer_ids = r.layer_ids;
    t.experts = r.experts;
    t.top_k = r.top_k;
    t.tokens = r.tokens();
    return t;
  }
  NpyReader npy = NpyReader::open(path);
  const auto& dims = npy.shape();
  const int L = dims.size() == 3 ? int(dims[1]) : 1;  // NpyReader bounds every dimension
  for (int l = 0; l < L; ++l) t.layer_ids.push_back(l);
  t.tokens = npy.rows();
  if (npy.is_float()) {
    t.kind = TraceShape::logits;
    t.experts = int(dims.back());
  } else {
    const RoutingTrace r = read_npy_choices(path);
    t.kind = TraceShape::choices;
    t.experts = r.experts;
    t.top_k = r.top_k;
  }
  return t;
}

void check_trace_shape(const TraceShape& t, const Shape& s, const std::string& path) {
  if (t.layers_known() && int(t.layer_ids.size()) != s.layers)
    throw InputError(path, "", fmt::format("the trace holds {} MoE layers, the scenario's model.layers is {}",
                                           t.layer_ids.size(), s.layers));
  if (t.kind == TraceShape::logits && t.experts != s.experts)
    throw InputError(path, "", fmt::format("expected {} logits per token and layer (one per expert), got {}",
                                           s.experts, t.experts));
  if (t.kind == TraceShape::choices && t.experts > s.experts)
    throw InputError(path, "", fmt::format("the trace names expert {}, outside the scenario's {} experts",
                                           t.experts - 1, s.experts));
  if (t.top_k > 0 && t.top_k != s.top_k)
    throw InputError(path, "", fmt::format("the trace chooses {} experts per token and layer, the scenario's "
                                           "model.top_k is {}", t.top_k, s.top_k));
  const std::int64_t needed = std::int64_t(s.steps) * s.tokens();
  if (t.tokens >= 0 && t.tokens < needed)
    throw InputError(path, "", fmt::format("expected at least steps × tokens = {} × {} = {} tokens, the trace holds {}",
                                           s.steps, s.tokens(), needed, t.tokens));
  // Like the JSONL scan: validation sees every logit the run will read.
  if (t.kind == TraceShape::logits) NpyReader::open(path).check_values(needed);
  if (t.tokens < 0) {  // JSONL top-k records: scan for complete steps
    const TraceScan scan = JsonlTraceReader::scan(path, s.experts, s.top_k, s.sequences, s.seq_len);
    if (scan.steps < s.steps)
      throw InputError(path, "", fmt::format("the trace holds {} complete steps of {} tokens, the scenario runs {}",
                                             scan.steps, s.tokens(), s.steps));
  }
}

std::int64_t trace_steps(const TraceShape& t, const Shape& s, const std::string& path) {
  if (t.tokens >= 0) return t.tokens / s.tokens();
  return JsonlTraceReader::scan(path, s.experts, s.top_k, s.sequences, s.seq_len).steps;
}

}  // namespace moesim
