// The fixed placements: contiguous blocks (the default) and round-robin.
#include <fmt/format.h>

#include "moesim/components.hpp"
#include "moesim/error.hpp"

namespace moesim {
namespace {

template <PlacementMap (*place)(int, int)>
class FixedPlacement final : public Placement {
 public:
  FixedPlacement(const Params&, const Shape& s) {
    if (s.experts % s.devices() != 0)
      throw ParamError("type", fmt::format("this placement needs the {} experts to divide evenly over the {} devices "
                                           "(nodes × devices_per_node); use \"eplb\" with redundant_experts so that "
                                           "experts + redundant_experts fills every device with the same number of "
                                           "slots", s.experts, s.devices()));
  }
  PlacementMap initial(const Shape& s) override { return place(s.experts, s.devices()); }
};

const Registration<Placement> contiguous_registration{{
    "contiguous", "expert e on device e / (E/D): contiguous blocks (the default)", {},
    make<Placement, FixedPlacement<contiguous>>}};
const Registration<Placement> round_robin_registration{{
    "round_robin", "expert e on device e mod D", {}, make<Placement, FixedPlacement<round_robin>>}};

}  // namespace
}  // namespace moesim
