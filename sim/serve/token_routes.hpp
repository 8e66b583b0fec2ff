#pragma once
// Where a serving run's tokens go (MODEL.md §10): the scenario's stream,
// routed by the strategy's frozen routers, handed out a whole sequence at a
// time so that a request's tokens share their sequence's domain. Requests
// take sequences in admission order; only the current step of the stream is
// held.
#include <cstdint>
#include <memory>
#include <vector>

#include "../engine/moe_layer.hpp"
#include "moesim/components.hpp"
#include "moesim/scenario.hpp"

namespace moesim {

// Expert ids of tokens × layers × top_k, layer-major within a token.
using Routes = std::vector<std::uint16_t>;

class TokenRoutes {
 public:
  TokenRoutes(const Scenario& sc, const StrategySpec& strategy);
  // Appends the routing of the next `tokens` tokens of the stream to `out`,
  // starting at a fresh sequence (ceil(tokens / seq_len) sequences used).
  void take(std::int64_t tokens, Routes& out);
  int per_token() const { return per_token_; }  // layers × top_k ids per token

 private:
  void next_step();  // routes the stream's next step into pool_

  Shape shape_;
  std::unique_ptr<TokenSource> source_;
  std::vector<MoeLayer> layers_;
  StepData data_;
  Routes pool_;  // tokens × layers × top_k of the current step
  int step_ = -1, next_sequence_ = 0, per_token_ = 0;
};

}  // namespace moesim
