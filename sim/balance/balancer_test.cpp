// Balance losses (MODEL.md §4): hand-worked values, the bias rule, and a
// finite-difference check of every gradient for both score functions.
#include <catch2/catch.hpp>
#include <cmath>
#include <nlohmann/json.hpp>

#include "../learn/learner.hpp"
#include "../testing/fixtures.hpp"
#include "moesim/components.hpp"
#include "moesim/rng.hpp"
#include "moesim/scores.hpp"
#include <numeric>

using namespace moesim;

namespace {

// A step with hand-set logits and a fixed selection (top-k of s, no bias).
struct Step {
  Scenario sc;
  StepData data;
  Step(const std::string& model, int sequences, int seq_len, int devices, const std::vector<float>& z) {
    sc = testing::tiny_scenario(nlohmann::json{{"model", nlohmann::json::parse(model)},
                                               {"batch", {{"sequences", sequences}, {"seq_len", seq_len}}},
                                               {"cluster", {{"devices_per_node", devices}}}}
                                    .dump());
    data.resize(sc.shape);
    std::copy(z.begin(), z.end(), data.z.begin());
    rescore();
    const int E = sc.shape.experts, k = sc.shape.top_k;
    for (int t = 0; t < sc.shape.tokens(); ++t) {  // top-k by s, ties to the lower index
      std::vector<int> idx(E);
      std::iota(idx.begin(), idx.end(), 0);
      std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return data.s[t * E + a] > data.s[t * E + b]; });
      for (int r = 0; r < k; ++r) {
        data.expert[t * k + r] = idx[r];
        data.affinity[t * k + r] = data.s[t * E + idx[r]];
        data.routed[idx[r]] += 1.0;
      }
    }
  }
  void rescore() { compute_scores(sc.shape.score, data.z, data.s, sc.shape.tokens(), sc.shape.experts); }
  std::unique_ptr<Balancer> balancer(const nlohmann::json& spec) {
    auto full = testing::tiny_scenario(nlohmann::json{{"model", nlohmann::json::parse(sc.normalized)["model"]},
                                                      {"batch", nlohmann::json::parse(sc.normalized)["batch"]},
                                                      {"cluster", nlohmann::json::parse(sc.normalized)["cluster"]},
                                                      {"strategies", {{{"name", "x"}, {"balancers", {spec}}}}}}
                                           .dump());
    const auto& c = full.strategies[0].balancers[0];
    return BalancerRegistry::instance().find(c.type)->make(c.params, sc.shape);
  }
  double value(Balancer& b) { return b.loss(data, sc.shape, {}); }
};

}  // namespace

TEST_CASE("a perfectly balanced step gives exactly alpha, at every level and scope", "[balance]") {
  // 4 tokens, 4 experts, top-1, token t prefers expert t; uniform-ish scores
  // would not give P = 1/4 exactly, so use equal logits but a diagonal choice:
  // with z = 0 every s' is 1/4, and f_i = E/(k·T)·c_i = 4/4·1 = 1.
  for (const char* score : {"softmax", "sigmoid"}) {
    Step st(std::string(R"({"experts":4,"top_k":1,"hidden":4,"score":")") + score + "\"}", 2, 2, 2,
            std::vector<float>(16, 0.0f));
    for (int t = 0; t < 4; ++t) st.data.expert[t] = t;
    std::fill(st.data.routed.begin(), st.data.routed.end(), 1.0);
    for (const char* level : {"expert", "device", "comm"}) {
      INFO(score << " " << level);
      auto b = st.balancer({{"type", "aux_loss"}, {"alpha", 0.3}, {"level", level}});
      CHECK(st.value(*b) == Approx(0.3));
      auto g = st.balancer({{"type", "aux_loss"}, {"alpha", 0.3}, {"level", level}, {"scope", "global"}});
      CHECK(st.value(*g) == Approx(0.3));
    }
  }
}

TEST_CASE("aux loss on a hand-worked two-token example", "[balance]") {
  // E=2, k=1, softmax. Token 0: z = (ln 3, 0) → s = (3/4, 1/4); token 1: z = (0, 0)
  // → s = (1/2, 1/2), tie to expert 0. c = (2, 0), f = 2/(1·2)·c = (2, 0),
  // P = ((3/4 + 1/2)/2, (1/4 + 1/2)/2) = (5/8, 3/8) → L = α·2·5/8 = 1.25α.
  Step st(R"({"experts":2,"top_k":1,"hidden":2,"score":"softmax"})", 1, 2, 1,
          {std::log(3.0f), 0.0f, 0.0f, 0.0f});
  CHECK(st.data.expert[1] == 0);
  auto b = st.balancer({{"type", "aux_loss"}, {"alpha", 0.01}});
  CHECK(st.value(*b) == Approx(0.0125));
  // Sequence scope with one sequence equals batch scope.
  auto seq = st.balancer({{"type", "aux_loss"}, {"alpha", 0.01}, {"scope", "sequence"}});
  CHECK(st.value(*seq) == Approx(0.0125));
  // z-loss: β·mean(lse²) with lse = ln 4 and ln 2.
  auto z = st.balancer({{"type", "z_loss"}, {"beta", 0.5}});
  const double l4 = std::log(4.0), l2 = std::log(2.0);
  CHECK(st.value(*z) == Approx(0.5 * (l4 * l4 + l2 * l2) / 2));
}

TEST_CASE("the bias rule: sign and proportional, routed or processed, frozen", "[balance]") {
  Step st(R"({"experts":4,"top_k":1,"hidden":4,"score":"sigmoid"})", 2, 6, 2, std::vector<float>(48, 0.0f));
  st.data.routed = {6, 2, 2, 2};
  st.data.processed = {3, 3, 3, 3};
  std::vector<float> bias(4, 0.0f);
  st.balancer({{"type", "bias"}, {"u", 0.1}})->end_of_step(st.data, st.sc.shape, bias);
  CHECK(bias == std::vector<float>{-0.1f, 0.1f, 0.1f, 0.1f});
  std::fill(bias.begin(), bias.end(), 0.0f);
  st.balancer({{"type", "bias"}, {"u", 0.1}, {"rule", "proportional"}})->end_of_step(st.data, st.sc.shape, bias);
  CHECK(bias[0] == Approx(-0.1));        // (3 − 6)/3 · 0.1
  CHECK(bias[1] == Approx(0.1 / 3.0));   // (3 − 2)/3 · 0.1
  std::fill(bias.begin(), bias.end(), 0.0f);
  st.balancer({{"type", "bias"}, {"u", 0.1}, {"counts", "processed"}})->end_of_step(st.data, st.sc.shape, bias);
  CHECK(bias == std::vector<float>{0, 0, 0, 0});  // sign(0) = 0
  st.balancer({{"type", "bias"}, {"u", 0.1}, {"freeze", true}})->end_of_step(st.data, st.sc.shape, bias);
  CHECK(bias == std::vector<float>{0, 0, 0, 0});
}

namespace {
// Central differences of `loss(z)` against the analytic gradient w.r.t. z.
void check_gradient(Step& st, const std::function<double(const LossGrad&)>& loss) {
  const int T = st.sc.shape.tokens(), E = st.sc.shape.experts;
  std::vector<float> gs(T * E, 0.0f), gz(T * E, 0.0f);
  loss({gs, gz});
  scores_backward(st.sc.shape.score, st.data.s, gs, gz, T, E);
  const float eps = 1e-2f;
  for (int i = 0; i < T * E; ++i) {
    const float z0 = st.data.z[i];
    st.data.z[i] = z0 + eps;
    st.rescore();
    const double up = loss({});
    st.data.z[i] = z0 - eps;
    st.rescore();
    const double down = loss({});
    st.data.z[i] = z0;
    st.rescore();
    INFO("z index " << i);
    CHECK(gz[i] == Approx((up - down) / (2 * eps)).margin(2e-4).epsilon(2e-2));
  }
}
}  // namespace

TEST_CASE("finite differences agree with every loss gradient, for softmax and sigmoid", "[balance][gradient]") {
  // 2 sequences × 3 tokens, 4 experts on 2 devices, top-2, random logits.
  std::vector<float> z(24);
  Rng rng(42);
  for (float& v : z) v = float(rng.normal());
  for (const char* score : {"softmax", "sigmoid"}) {
    Step st(std::string(R"({"experts":4,"top_k":2,"hidden":4,"score":")") + score + "\"}", 2, 3, 2, z);
    std::vector<nlohmann::json> specs{{{"type", "z_loss"}, {"beta", 1.0}}};
    for (const char* level : {"expert", "device", "comm"})
      for (const char* scope : {"batch", "sequence", "global"})
        specs.push_back({{"type", "aux_loss"}, {"alpha", 1.0}, {"level", level}, {"scope", scope}, {"window", 2}});
    for (const auto& spec : specs) {
      INFO(score << " " << spec.dump());
      auto b = st.balancer(spec);
      for (int i = 0; i < 3; ++i) st.value(*b);  // fill a global window with this step's counts
      check_gradient(st, [&](const LossGrad& g) { return b->loss(st.data, st.sc.shape, g); });
    }
    // Task loss with a partly dropped selection and non-trivial competence.
    INFO(score << " task loss");
    Learner learner(st.sc, 3);
    std::fill(st.data.domain.begin(), st.data.domain.end(), 1);
    st.data.keep[1] = 0;
    st.data.keep[6] = 0;
    check_gradient(st, [&](const LossGrad& g) {
      for (int t = 0; t < 6; ++t)  // affinities follow the perturbed scores
        for (int r = 0; r < 2; ++r) st.data.affinity[t * 2 + r] = st.data.s[t * 4 + st.data.expert[t * 2 + r]];
      // The gradient is of the objective term ω·mean(ℓ); the value returned is the unweighted mean ℓ.
      // It comes at the selected experts only; scattered here into the dense ∂L/∂s.
      std::vector<float> selected(g.s.empty() ? 0 : 12);
      const double value = learner.task_loss(st.data, selected);
      for (std::size_t j = 0; j < selected.size(); ++j) g.s[j / 2 * 4 + st.data.expert[j]] += selected[j];
      return st.sc.learning.task_weight * value;
    });
  }
}

TEST_CASE("the comm-level loss uses V2's M and the placement's devices", "[balance]") {
  // 2 tokens, E = 4 on 2 devices, k = 2, softmax z = 0 (P_i = 1/4).
  // Token 0 picks experts 0, 1 (both on device 0 contiguously); token 1 picks 0, 2.
  Step st(R"({"experts":4,"top_k":2,"hidden":4,"score":"softmax"})", 1, 2, 2, std::vector<float>(8, 0.0f));
  st.data.expert = {0, 1, 0, 2};
  // Contiguous: devices (0,0,1,1); sent = (2, 1) tokens; M = min(k, D) = 2, n = 2:
  // f'' = D/(M·n)·sent = (1, 0.5) → L = α·Σ_i f''_{dev(i)}·P_i = α·(1+1+0.5+0.5)/4 = 0.75α.
  auto comm = st.balancer({{"type", "aux_loss"}, {"alpha", 1.0}, {"level", "comm"}});
  CHECK(st.value(*comm) == Approx(0.75));
  // An explicit M = 1 doubles f''.
  auto m1 = st.balancer({{"type", "aux_loss"}, {"alpha", 1.0}, {"level", "comm"}, {"m", 1}});
  CHECK(st.value(*m1) == Approx(1.5));
  // Round-robin devices (0,1,0,1): token 0 reaches both, token 1 only device 0:
  // sent = (2, 1) again but experts 1 and 3 now count device 1's 0.5.
  st.data.expert_device = {0, 1, 0, 1};
  CHECK(st.value(*comm) == Approx((1 + 0.5 + 1 + 0.5) / 4.0));
  // Device level: c = (2,1,1,0), f = E/(k·n)·c = (2,1,1,0); round-robin devices
  // average (2,1) on device 0 → 1.5 and (1,0) on device 1 → 0.5: L = (1.5+0.5+1.5+0.5)/4 = 1.
  auto dev = st.balancer({{"type", "aux_loss"}, {"alpha", 1.0}, {"level", "device"}});
  CHECK(st.value(*dev) == Approx(1.0));
}
