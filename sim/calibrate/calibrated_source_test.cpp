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
  // Too few positive entries: the message names the matrix at fault and its row.
  auto with = [](const std::string& popularity, const std::string& weight) {
    return testing::tiny_scenario(R"({"mode":"inference","stream":{"source":"calibrated","domains":null,"type_experts":2,)"
                                  R"("hot_experts":3,"popularity":)" + popularity + R"(,"weight":)" + weight + "}}");
  };
  const std::string ones = "[[1,1,1,1,1,1,1,1]]";
  CHECK_THROWS_WITH(with(ones, "[[1,0,0,0,0,0,0,0]]"),
                    Catch::Contains("/stream/weight: row 0: expected at least top_k = 2 positive entries, got 1"));
  CHECK_THROWS_WITH(with("[[1,1,0,0,0,0,0,0]]", ones),  // hot_experts = 3 > 2 positive
                    Catch::Contains("/stream/popularity: row 0: expected at least 3 positive entries"));
  CHECK_NOTHROW(with("[[1,1,1,0,0,0,0,0]]", "[[0,0,0,0,0,0,1,1]]"));
  CHECK_NOTHROW(testing::tiny_scenario(R"({"mode":"inference","stream":{"source":"calibrated","domains":null}})"));
}
