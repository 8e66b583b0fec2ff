// Unrestricted routing: every expert may be chosen.
#include "moesim/components.hpp"

namespace moesim {
namespace {

class NoConstraint final : public RoutingConstraint {
 public:
  NoConstraint(const Params&, const Shape&) {}
  bool restricts() const override { return false; }
  void allow(std::span<const float>, std::span<const float>, std::span<const std::int32_t>,
             std::span<std::uint8_t> allowed) const override {
    std::fill(allowed.begin(), allowed.end(), std::uint8_t{1});
  }
};

const Registration<RoutingConstraint> registration{{
    "none", "unrestricted routing: top-k over all experts", {}, make<RoutingConstraint, NoConstraint>}};

}  // namespace
}  // namespace moesim
