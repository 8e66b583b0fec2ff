// The `calibrated` token source: parameter checks and its choices.
#include <catch2/catch.hpp>

#include <set>

#include "../testing/fixtures.hpp"
#include "moesim/error.hpp"
#include "moesim/simulation.hpp"

using namespace moesim;

namespace {

std::string stream(const std::string& rows) {
  return R"({"mode":"inference","stream":{"source":"calibrated","domains":null,"popularity":)" + rows + R"(,"weight":)" + rows + "}}";
}

}  // namespace

TEST_CASE("calibrated source: matrices must be layers × experts with k positive entries", "[calibrate]") {
  // The tiny scenario: 1 layer, 8 experts, top-2.
  CHECK_NOTHROW(testing::tiny_scenario(stream("[[1,1,1,1,1,1,1,1]]")));
  CHECK_THROWS_WITH(testing::tiny_scenario(stream("[[1,1,1,1,1,1,1]]")),
                    Catch::Contains("/stream/popularity") && Catch::Contains("one entry per expert (8)"));
  CHECK_THROWS_WITH(testing::tiny_scenario(stream("[[1,1,1,1,1,1,1,1],[1,1,1,1,1,1,1,1]]")),
                    Catch::Contains("one row per layer (1)"));
  CHECK_THROWS_WITH(testing::tiny_scenario(stream("[[1,0,0,0,0,0,0,0]]")), Catch::Contains("/stream/weight"));
  CHECK_NOTHROW(testing::tiny_scenario(R"({"mode":"inference","stream":{"source":"calibrated","domains":null}})"));
}
