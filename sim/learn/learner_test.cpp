// Learner::update_competence (MODEL.md §3) on a hand-counted step, and its
// thread-count invariance (per-thread integer counts, summed exactly).
#include <catch2/catch.hpp>

#include <algorithm>
#include <vector>

#include "../testing/fixtures.hpp"
#include "learner.hpp"

namespace moesim {
namespace {

// 4 experts, top-2, 2 domains, one sequence of 4 tokens (c̄ = 4·2/4 = 2).
struct CompetenceCase {
  Scenario sc = testing::tiny_scenario(R"({"model": {"experts": 4, "top_k": 2},
      "batch": {"sequences": 1, "seq_len": 4}, "stream": {"domains": 2},
      "learning": {"kappa0": 0.5, "eta_skill": 0.1, "forget": 0.01, "interference": 0.05}})");
  StepData data;
  CompetenceCase() {
    data.resize(sc.shape);
    // token: domain, experts; token 2's second choice (expert 3) is dropped.
    const int domain[4] = {0, 0, 1, 1}, expert[8] = {0, 1, 0, 2, 0, 3, 1, 0};
    std::copy_n(domain, 4, data.domain.begin());
    std::copy_n(expert, 8, data.expert.begin());
    data.keep[5] = 0;
  }
};

}  // namespace

TEST_CASE("update_competence on a hand-counted step", "[learn]") {
  CompetenceCase c;
  Learner learner(c.sc, 3);
  const std::vector<float> before = learner.competence();
  learner.update_competence(c.data);
  // Processed n[expert][domain]: expert 0 {2, 2}, 1 {1, 1}, 2 {1, 0}, 3 {0, 0}
  // (its one token dropped); p = Σ_c n = 4, 2, 1, 0.
  const double n[4][2] = {{2, 2}, {1, 1}, {1, 0}, {0, 0}}, p[4] = {4, 2, 1, 0}, cbar = 2.0;
  for (int i = 0; i < 4; ++i)
    for (int dom = 0; dom < 2; ++dom) {
      const double k = before[i * 2 + dom];
      const double want = k + 0.1 * (n[i][dom] / cbar) * (1 - k) - 0.01 * k - 0.05 * ((p[i] - n[i][dom]) / cbar) * k;
      INFO("expert " << i << " domain " << dom);
      CHECK(learner.competence()[i * 2 + dom] == Approx(std::clamp(want, 0.0, 1.0)).epsilon(1e-6));
    }
  // Expert 0, domain 0 by hand: κ ≈ 0.5 → 0.5 + 0.1·1·0.5 − 0.005 − 0.05·1·0.5 = 0.52 (± the ±0.01 start noise).
  CHECK(learner.competence()[0] == Approx(0.52).margin(0.02));
}

TEST_CASE("update_competence gives the same bits on 1 and 2 threads", "[learn]") {
  Scenario sc = testing::tiny_scenario(R"({"model": {"experts": 16, "top_k": 4},
      "batch": {"sequences": 8, "seq_len": 37}, "stream": {"domains": 5}})");
  StepData data;
  data.resize(sc.shape);
  for (int t = 0; t < sc.shape.tokens(); ++t) {
    data.domain[t] = t % 7 == 0 ? -1 : t % 5;  // −1 (no domain) counts as domain 0
    for (int r = 0; r < 4; ++r) data.expert[t * 4 + r] = (t * 3 + r * 5) % 16;
    data.keep[t * 4 + 3] = t % 3 != 0;
  }
  auto run = [&](int threads) {
    const testing::ThreadCount team(threads);
    Learner learner(sc, 5);
    for (int step = 0; step < 3; ++step) learner.update_competence(data);
    return learner.competence();
  };
  const std::vector<float> one = run(1);
  CHECK(one == run(2));
  CHECK(one != Learner(sc, 5).competence());
}

}  // namespace moesim
