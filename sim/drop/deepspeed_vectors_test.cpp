// DeepSpeed's TestTopkGate vectors (microsoft/DeepSpeed,
// tests/unit/moe/test_moe.py, class TestTopkGate, which checks
// deepspeed/moe/sharded_moe.py `topkgating` with drop_policy 'probs' and
// 'position', capacity_factor 1, min_capacity 1), replayed through
// capacity_keep. Expected masks are the test's sparse (token, expert, slot)
// triples; moesim has no slots, only keep, so the slot index is ignored.
//
// Where moesim's semantics differ from topkgating (all checked below):
//  1. probs ranks by what?  topkgating ranks an expert's tokens by the top-k
//     *logits* (topk_masked_gates is filled from topk(logits)), moesim by the
//     gate weight g = s (softmax probability, MODEL.md §2). Softmax is not
//     monotone in the logit across tokens, so the masks can differ: vector 2.
//     Fed the logits as `gate`, capacity_keep reproduces DeepSpeed exactly.
//     (topkgating also ranks the zero-filled, unselected entries of a column;
//     with negative logits a zero can out-rank a selected token and drop it
//     from an expert that is under capacity. moesim ranks only assignments.)
//  2. position: topkgating counts locations with one cumsum over tokens, so an
//     expert keeps its first C tokens in token order whatever the rank. moesim
//     uses (rank, token) order — all first choices before second choices —
//     as GShard and DeepSpeed's own top2gating (locations2 += sum(mask1)) do.
//     Token order is what capacity_keep gives when every assignment is passed
//     as its own token (T' = T·k, k' = 1, index t·k + j), so the DeepSpeed
//     masks are reproduced that way; the moesim masks differ in both vectors.
//  3. Ties: torch.topk leaves the order of equal values unspecified; moesim
//     breaks them by the lower token index (no ties occur in these vectors).
//  4. Capacity: DeepSpeed computes ceil((T/E)·(cf·k)) in a float32 tensor;
//     moesim ceil(cf·T·k/E) in double with decimal snapping. Both give 2 here.
//  5. DeepSpeed renormalises the kept gates and assigns capacity slots;
//     moesim keeps gates unnormalised (MODEL.md §5) and only marks keep.
//  6. The DeepSpeed test runs on 2 ranks and scales the logits by rank + 1;
//     both scales are replayed, and the expected masks hold for both.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

#include "moesim/drop_rules.hpp"

namespace moesim {
namespace {

using Keep = std::vector<std::uint8_t>;

struct Vector {
  int T, k, E;
  std::vector<float> logits;          // T×E
  std::vector<std::int32_t> expert;   // T×k, top-k of the logits in rank order
};

// Vector 1: s=4 e=4 topk=2 cap=2. Top-2 per row worked out from the logits:
//   t0 [.11 .2 .1 .3] -> e3, e1;  t1 [.3 .4 .11 .1] -> e1, e0
//   t2 [.11 .1 .6 .5] -> e2, e3;  t3 [.1 .11 .7 .8] -> e3, e2
Vector vector1() {
  return {4, 2, 4,
          {0.11f, 0.2f, 0.1f, 0.3f, 0.3f, 0.4f, 0.11f, 0.1f, 0.11f, 0.1f, 0.6f, 0.5f, 0.1f, 0.11f,
           0.7f, 0.8f},
          {3, 1, 1, 0, 2, 3, 3, 2}};
}

// Vector 2: s=4 e=6 topk=3 cap=2.
//   t0 -> e4 .9722, e5 .7034, e2 .6269;  t1 -> e5 .6450, e1 .6332, e3 .6308
//   t2 -> e3 .8474, e1 .8110, e2 .7467;  t3 -> e5 .9892, e0 .8570, e1 .6714
Vector vector2() {
  return {4, 3, 6,
          {0.5858f, 0.4801f, 0.6269f, 0.5397f, 0.9722f, 0.7034f,  //
           0.5445f, 0.6332f, 0.4519f, 0.6308f, 0.0519f, 0.6450f,  //
           0.4874f, 0.8110f, 0.7467f, 0.8474f, 0.0277f, 0.3068f,  //
           0.8570f, 0.6714f, 0.5310f, 0.3274f, 0.4836f, 0.9892f},
          {4, 5, 2, 5, 1, 3, 3, 1, 2, 5, 0, 1}};
}

// The logit (DeepSpeed's ranking key) or the softmax probability (moesim's
// gate) of every selected assignment, with the logits scaled by `scale`.
std::vector<float> selected(const Vector& v, float scale, bool softmax) {
  std::vector<float> out(static_cast<std::size_t>(v.T * v.k));
  for (int t = 0; t < v.T; ++t) {
    float denom = 0;
    for (int e = 0; e < v.E; ++e) denom += std::exp(scale * v.logits[t * v.E + e]);
    for (int j = 0; j < v.k; ++j) {
      const float z = scale * v.logits[t * v.E + v.expert[t * v.k + j]];
      out[t * v.k + j] = softmax ? std::exp(z) / denom : z;
    }
  }
  return out;
}

Keep keep_of(const Vector& v, const std::vector<float>& gate, CapacityPolicy policy,
             bool token_order) {
  const std::int64_t cap = expert_capacity(1.0, v.T, v.k, v.E, 1);
  Keep keep(v.expert.size(), 7);
  CapacityWorkspace ws;
  if (token_order)  // every assignment its own "token": order = token index
    capacity_keep(v.expert, gate, v.T * v.k, 1, v.E, cap, policy, keep, ws);
  else
    capacity_keep(v.expert, gate, v.T, v.k, v.E, cap, policy, keep, ws);
  return keep;
}

}  // namespace

TEST_CASE("DeepSpeed TestTopkGate vector 1 (s=4 e=4 k=2)", "[drop][deepspeed]") {
  const Vector v = vector1();
  REQUIRE(expert_capacity(1.0, v.T, v.k, v.E, 1) == 2);
  for (float scale : {1.0f, 2.0f}) {
    INFO("logits scaled by " << scale);
    // probs truth: (0,1) (1,0) (1,1) (2,2) (2,3) (3,2) (3,3): e3 drops t0 (logit .3).
    const Keep ds_probs{0, 1, 1, 1, 1, 1, 1, 1};
    CHECK(keep_of(v, selected(v, scale, false), CapacityPolicy::probs, false) == ds_probs);
    // moesim's softmax gates agree here: e3 sees t0 .282, t2 .290, t3 .345 (scale 1).
    CHECK(keep_of(v, selected(v, scale, true), CapacityPolicy::probs, false) == ds_probs);
    // position truth: (0,1) (0,3) (1,0) (1,1) (2,2) (2,3) (3,2): e3 keeps t0, t2 (token order).
    const Keep ds_position{1, 1, 1, 1, 1, 1, 0, 1};
    CHECK(keep_of(v, selected(v, scale, true), CapacityPolicy::position, true) == ds_position);
    // moesim position: e3 keeps its first choices t0, t3 and drops t2's second choice.
    CHECK(keep_of(v, selected(v, scale, true), CapacityPolicy::position, false) ==
          Keep{1, 1, 1, 1, 1, 0, 1, 1});
  }
}

TEST_CASE("DeepSpeed TestTopkGate vector 2 (s=4 e=6 k=3)", "[drop][deepspeed]") {
  const Vector v = vector2();
  REQUIRE(expert_capacity(1.0, v.T, v.k, v.E, 1) == 2);
  for (float scale : {1.0f, 2.0f}) {
    INFO("logits scaled by " << scale);
    // probs truth: (0,2) (0,4) (0,5) (1,3) (2,1) (2,2) (2,3) (3,0) (3,1) (3,5):
    // e1 drops t1 (logit .6332 < .6714, .8110), e5 drops t1 (.6450 < .7034, .9892).
    CHECK(keep_of(v, selected(v, scale, false), CapacityPolicy::probs, false) ==
          Keep{1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1});
    // moesim ranks by softmax probability instead: e1 sees t1 .188, t2 .210,
    // t3 .167 and drops t3; e5 sees t0 .173, t1 .190, t3 .230 and drops t0.
    CHECK(keep_of(v, selected(v, scale, true), CapacityPolicy::probs, false) ==
          Keep{1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0});
    // position truth: (0,2) (0,4) (0,5) (1,1) (1,3) (1,5) (2,1) (2,2) (2,3) (3,0):
    // in token order e1 keeps t1, t2 and e5 keeps t0, t1; t3 loses e5 and e1.
    CHECK(keep_of(v, selected(v, scale, true), CapacityPolicy::position, true) ==
          Keep{1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0});
    // moesim position: e5's first choices t1, t3 beat t0's second choice;
    // e1 (all later choices) keeps t1, t2 (rank 1) over t3 (rank 2).
    CHECK(keep_of(v, selected(v, scale, true), CapacityPolicy::position, false) ==
          Keep{1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0});
  }
}

}  // namespace moesim
