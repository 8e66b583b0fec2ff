// The fixed placements: contiguous blocks (the default) and round-robin.
#include "moesim/components.hpp"

namespace moesim {
namespace {

template <PlacementMap (*place)(int, int)>
class FixedPlacement final : public Placement {
 public:
  FixedPlacement(const Params&, const Shape&) {}
  PlacementMap initial(const Shape& s) override { return place(s.experts, s.devices()); }
};

const Registration<Placement> contiguous_registration{{
    "contiguous", "expert e on device e / (E/D): contiguous blocks (the default)", {},
    make<Placement, FixedPlacement<contiguous>>}};
const Registration<Placement> round_robin_registration{{
    "round_robin", "expert e on device e mod D", {}, make<Placement, FixedPlacement<round_robin>>}};

}  // namespace
}  // namespace moesim
