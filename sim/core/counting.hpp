#pragma once
// Per-step counts from the routing and keep mask: routed and processed load
// per expert, per-sequence MaxVio and drop tallies (device loads come from the
// traffic builder, which knows the placement).
#include <span>

#include "moesim/step.hpp"

namespace moesim {

// `protected_seq` (B entries, or empty) marks sequences a dropper protects.
void count_loads(StepData& data, const Shape& shape, std::span<const std::uint8_t> protected_seq);

}  // namespace moesim
