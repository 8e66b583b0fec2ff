#include "token_routes.hpp"

#include <algorithm>

namespace moesim {

TokenRoutes::TokenRoutes(const Scenario& sc, const StrategySpec& strategy)
    : shape_(sc.shape), per_token_(sc.shape.layers * sc.shape.top_k) {
  source_ = Registry<TokenSource>::instance().find(sc.stream.type)->make(sc.stream.params, shape_);
  if (!sc.stream_layers.empty()) source_->configure_layers(sc.stream_layers, sc.stream_overridden);
  source_->seed(sc.seed);
  layers_.reserve(std::size_t(shape_.layers));
  for (int l = 0; l < shape_.layers; ++l) layers_.emplace_back(sc, strategy, l);
  data_.resize(shape_);
  next_sequence_ = shape_.sequences;  // the first take() routes step 0
}

void TokenRoutes::next_step() {
  ++step_;
  const int L = shape_.layers, k = shape_.top_k, T = shape_.tokens();
  pool_.resize(std::size_t(T) * per_token_);
  data_.step = step_;
  for (int l = 0; l < L; ++l) {
    layers_[std::size_t(l)].route(*source_, step_, l, data_);
    for (int t = 0; t < T; ++t)
      std::copy_n(&data_.expert[std::size_t(t) * k], k, &pool_[(std::size_t(t) * L + l) * k]);
  }
  next_sequence_ = 0;
}

void TokenRoutes::take(std::int64_t tokens, Routes& out) {
  const int S = shape_.seq_len;
  while (tokens > 0) {
    if (next_sequence_ == shape_.sequences) next_step();
    const std::int64_t n = std::min<std::int64_t>(tokens, S);
    const auto first = std::size_t(next_sequence_) * S * per_token_;
    out.insert(out.end(), pool_.begin() + std::ptrdiff_t(first), pool_.begin() + std::ptrdiff_t(first + n * per_token_));
    ++next_sequence_;
    tokens -= n;
  }
}

}  // namespace moesim
