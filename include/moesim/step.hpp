#pragma once
// The data of one step: plain contiguous arrays owned by the simulation and
// reused every step, so the hot path never allocates per token.
#include <cstdint>
#include <vector>

namespace moesim {

enum class ScoreFunction { softmax, sigmoid };

// The most experts a token may choose (model.top_k ≤ min(this, experts)):
// per-token work (task loss, traffic counting) keeps a token's k choices in
// fixed arrays of this size.
inline constexpr int kMaxTopK = 64;

// Model, batch and cluster dimensions: everything a component needs to size
// its buffers and check its parameters.
struct Shape {
  int layers = 1;          // MoE layers (MODEL.md §9)
  int experts = 0;         // E routed experts
  int top_k = 0;           // k experts per token
  int shared_experts = 0;  // S, every token, never dropped
  int hidden = 0;          // d
  int sequences = 0;       // B
  int seq_len = 0;         // L
  int nodes = 1;           // N
  int devices_per_node = 1;// G
  int domains = 0;         // C (synthetic source), 0 if unknown
  int steps = 0;           // steps in the run (a trace must hold this many)
  ScoreFunction score = ScoreFunction::sigmoid;

  int tokens() const { return sequences * seq_len; }
  int devices() const { return nodes * devices_per_node; }
  // c̄ = T·k/E, the per-expert load of a perfectly balanced step (MODEL.md notation).
  double mean_load() const { return double(tokens()) * top_k / experts; }
};

// What a token source fills in (see source.hpp).
enum class SourceOutput { hidden, logits, choices };

struct StepData {
  int step = 0;
  // Source output: hidden vectors + domains, or logits, or final choices.
  std::vector<float> x;            // T×d
  std::vector<std::int32_t> domain;// T, -1 when the source has no domains
  // Router logits and scores of the first score_rows tokens (all T unless
  // resize was told otherwise): the router stores only the rows a consumer
  // reads, the rest stay in its per-thread scratch.
  std::vector<float> z;            // score_rows×E router logits
  std::vector<float> s;            // score_rows×E scores (softmax or sigmoid of z)
  int score_rows = 0;
  // Where each expert lives (its first replica's device) in the current
  // layer's placement, kept current by the simulation; device-level losses
  // group by it.
  std::vector<std::int32_t> expert_device;  // E
  // Routing decision.
  std::vector<std::uint8_t> allowed;  // T×E mask from the routing constraint (empty: all allowed)
  std::vector<std::int32_t> expert;   // T×k selected experts in rank order (descending s+b, ties lower index)
  std::vector<float> gate;            // T×k gate weights (unbiased scores, see MODEL.md §2)
  std::vector<float> affinity;        // T×k the score s of each selected expert
  std::vector<std::uint8_t> keep;     // T×k 1 = processed, 0 = dropped
  // Per-step counts (doubles: they feed ratios and sums over long runs).
  std::vector<double> routed;       // E assignments routed (before drops)
  std::vector<double> processed;    // E assignments kept
  std::vector<double> device_load;  // D processed assignments per device
  std::vector<double> device_dropped;  // D dropped assignments, by their expert's (first) device
  std::vector<double> seq_max_vio;  // B MaxVio of each sequence
  std::int64_t dropped = 0;         // assignments dropped this step
  std::int64_t tokens_fully_dropped = 0;
  std::int64_t sequences_with_drops = 0;
  std::int64_t protected_drops = 0;
  std::vector<double> scratch_counts;  // threads×3E, reused by count_loads

  // Sizes every buffer for `shape`; z and s get `rows` rows (all T when negative).
  void resize(const Shape& shape, int rows = -1);
};

}  // namespace moesim
