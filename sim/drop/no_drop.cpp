// Dropless: every assignment is processed.
#include <algorithm>

#include "moesim/components.hpp"

namespace moesim {
namespace {

class NoDrop final : public Dropper {
 public:
  NoDrop(const Params&, const Shape&) {}
  void keep(StepData& data, const Shape&, const PlacementMap&) override {
    std::fill(data.keep.begin(), data.keep.end(), std::uint8_t{1});
  }
};

const Registration<Dropper> registration{{"none", "dropless: every assignment is processed", {}, make<Dropper, NoDrop>}};

}  // namespace
}  // namespace moesim
