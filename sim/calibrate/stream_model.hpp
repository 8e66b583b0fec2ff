#pragma once
// The calibrated stream (docs/calibration.md): routing driven by token
// identity and passage topic. Every token has a *type* (drawn from a Zipf
// vocabulary) and belongs to a passage with a *topic* that persists (it
// switches with a small probability per token). In each layer, the token's k
// experts are a Plackett-Luce draw (sampling without replacement) from
//   weight_e = w[l][e] + W[l]·(type_weight·[e ∈ set(type, l)] + topic_weight·[e ∈ hot(topic, l)])
// (W[l] = Σ_e w[l][e]) where set(type, l) (type_experts experts) and hot(topic, l) (hot_experts experts) are
// fixed draws from w[l] made once from structure_seed. w sets the popularity
// by expert id, the type sets make a token's choices in one layer predict the
// next layer's, and the hot experts make consecutive tokens (and so a small
// batch) share experts.
#include <cstdint>
#include <vector>

#include "alias_table.hpp"
#include "moesim/params.hpp"
#include "moesim/rng.hpp"
#include "moesim/routing_trace.hpp"

namespace moesim {

struct StreamModel {
  int experts = 0;                // E
  int top_k = 0;                  // k
  std::vector<int> layer_ids;     // L layers (ids of the data's MoE layers)
  RealMatrix popularity;          // L × E target share of each expert: draws the type sets and hot experts
  RealMatrix weight;              // L × E base weight of each expert (≥ 0; 0 = never chosen), fitted
  int vocabulary = 1024;          // token types
  double vocabulary_zipf = 0.8;   // type t (0-based) has frequency ∝ (t + 1)^−zipf
  int type_experts = 1;           // experts per type and layer
  int topics = 32;               // passage topics, drawn uniformly
  int hot_experts = 6;            // hot experts per topic and layer
  double topic_switch = 0.0115;   // probability that a token starts a new passage topic
  double type_weight = 34.0;      // weight added to a type's experts, as a multiple of the layer's total weight
  double topic_weight = 0.29;     // the same for a topic's hot experts
  std::uint64_t structure_seed = 1;  // draws the type sets and hot experts

  int layers() const { return int(weight.size()); }
};

// A token's hidden identity: its type and its passage topic.
struct StreamToken {
  std::int32_t type = 0, topic = 0;
};

class StreamGenerator {
 public:
  explicit StreamGenerator(const StreamModel& model);
  const StreamModel& model() const { return model_; }

  // Tokens of one sequence, in order: the first draws a fresh topic, later
  // ones keep the previous token's topic unless they switch.
  StreamToken first_token(Rng& rng) const { return {draw_type(rng), draw_topic(rng)}; }
  StreamToken next_token(const StreamToken& prev, Rng& rng) const;

  // One token's k experts in `layer` (rank order = draw order) and gate
  // weights (its experts' weights, normalised over the k).
  void route(int layer, const StreamToken& token, Rng& rng, std::int32_t* expert, float* gate) const;

  // A trace of `tokens` tokens in sequences of `seq_len` (0: one sequence),
  // deterministic in `seed` whatever the number of threads. `stratified`
  // replaces the random type and topic draws by evenly spread ones (types by
  // a golden-ratio sequence through the vocabulary's CDF, topics in turn,
  // token by token: no passages), so that the sample's popularity is the
  // model's expected popularity up to the noise of the expert draws alone:
  // for fitting and measuring popularity, not for the per-token statistics.
  RoutingTrace sample(std::uint64_t seed, std::int64_t tokens, std::int64_t seq_len = 0,
                      bool stratified = false) const;

 private:
  std::int32_t draw_type(Rng& rng) const { return type_at(rng.uniform()); }
  std::int32_t type_at(double u) const;
  std::int32_t draw_topic(Rng& rng) const { return std::int32_t(rng.uniform() * model_.topics); }
  // Gives each group (type or topic) of the given mass (share of tokens)
  // per_group distinct experts (out: groups × per_group), taking the mass
  // from the experts' deficits (tokens each may still serve).
  static void deal(const std::vector<double>& popularity, const std::vector<double>& mass, int per_group, Rng& rng,
                   std::vector<double>& deficit, std::vector<std::int32_t>& out);

  StreamModel model_;
  std::vector<AliasTable> base_;           // per layer, from weight
  std::vector<double> base_total_;         // per layer Σ weight
  std::vector<int> positive_;              // per layer: experts with weight > 0
  std::vector<double> type_cdf_;           // vocabulary CDF
  std::vector<std::int32_t> type_set_;     // vocabulary × L × type_experts
  std::vector<std::int32_t> hot_set_;      // topics × L × hot
};

}  // namespace moesim
