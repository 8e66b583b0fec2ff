#pragma once
// What a trace file holds, found without replaying it: whether it carries
// logits or fixed choices, and its layers, experts, k and tokens. The
// scenario reader takes the model's shape from it where the scenario leaves
// it out (FORMATS.md "Additions"); the trace source checks it against the
// scenario's shape.
#include <cstdint>
#include <string>
#include <vector>

#include "moesim/step.hpp"

namespace moesim {

struct TraceShape {
  enum Kind { logits, choices } kind = logits;
  std::vector<int> layer_ids;  // ascending; 0..L−1 unless the trace names its layers
  int experts = 0;             // logits: columns per layer; choices: 1 + the largest id (0: unknown, JSONL)
  int top_k = 0;               // choices: k per layer (0: unknown, JSONL)
  std::int64_t tokens = -1;    // tokens in the file (-1: counted in steps by the JSONL scan instead)
  bool layers_known() const { return !layer_ids.empty(); }
};

// format: "npy", "pairs" or "jsonl" (JSONL top-k records: one layer, shape from the scenario).
TraceShape peek_trace_shape(const std::string& path, const std::string& format);
// InputError naming the file when the trace does not fit the scenario's shape
// (layers, experts, k, or fewer than steps × tokens tokens).
void check_trace_shape(const TraceShape& trace, const Shape& shape, const std::string& path);
// Whole steps of shape.tokens() tokens the trace holds (serving replays a
// trace cyclically, so it needs at least one).
std::int64_t trace_steps(const TraceShape& trace, const Shape& shape, const std::string& path);

}  // namespace moesim
