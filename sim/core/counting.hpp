#pragma once
// Per-step counts from the routing and keep mask: routed and processed load
// per expert, processed load per device, per-sequence MaxVio and drop tallies.
#include <span>

#include "moesim/step.hpp"

namespace moesim {

// `protected_seq` (B entries, or empty) marks sequences a dropper protects.
void count_loads(StepData& data, const Shape& shape, std::span<const std::int32_t> device_of_expert,
                 std::span<const std::uint8_t> protected_seq);

}  // namespace moesim
