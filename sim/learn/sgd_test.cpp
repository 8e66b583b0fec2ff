// weight_gradient (MODEL.md §3: z = x·W ⇒ ∂L/∂W = xᵀ·∂L/∂z, with the score
// backward fused in) against a double-precision reference, and its sparse
// path against the dense one, bit for bit.
#include <catch2/catch.hpp>

#include <vector>

#include "../testing/fixtures.hpp"
#include "moesim/rng.hpp"
#include "moesim/scores.hpp"
#include "sgd.hpp"

namespace moesim {
namespace {

// By default T = 37 tokens (not a multiple of the 8 chunks), d = 5, E = 6, k = 2.
struct Case {
  Shape shape;
  std::vector<float> x, z, s, selected, dense_s, dense_z;
  std::vector<std::int32_t> expert;
  explicit Case(ScoreFunction f, int T = 37, int d = 5, int E = 6) {
    const int k = 2;
    shape.experts = E;
    shape.top_k = k;
    shape.hidden = d;
    shape.sequences = 1;
    shape.seq_len = T;
    Rng rng(11);
    auto fill = [&](std::vector<float>& v, std::size_t n) {
      v.resize(n);
      for (float& a : v) a = float(rng.normal());
    };
    fill(x, std::size_t(T) * d);
    fill(z, std::size_t(T) * E);
    fill(selected, std::size_t(T) * k);
    fill(dense_s, std::size_t(T) * E);
    fill(dense_z, std::size_t(T) * E);
    s.resize(z.size());
    compute_scores(f, z, s, T, E);
    for (int t = 0; t < T; ++t) {  // two distinct experts
      expert.push_back(t % E);
      expert.push_back((t * 5 + 1) % E == t % E ? (t + 1) % E : (t * 5 + 1) % E);
    }
  }
  std::vector<float> run(ScoreFunction f, bool with_s, bool with_z) const {
    std::vector<float> grad_w(std::size_t(shape.hidden) * shape.experts);
    GradientScratch scratch;
    const std::vector<float> none;
    weight_gradient(f, x, s, {expert, selected, with_s ? dense_s : none, with_z ? dense_z : none}, shape, grad_w,
                    scratch);
    return grad_w;
  }
  // The documented summation order in plain loops: per chunk of tokens, each
  // element's terms in token order from 0.0f (the same `+= g·x` the compiler
  // may fuse), zero terms skipped; then the chunks in order from 0.0f.
  std::vector<float> chunked(ScoreFunction f, bool with_s, bool with_z) const {
    const int T = shape.tokens(), E = shape.experts, d = shape.hidden, k = shape.top_k, chunks = 8;
    std::vector<float> grad_w(std::size_t(d) * E, 0.0f), gs(E), gz(E);
    for (int c = 0; c < chunks; ++c) {
      std::vector<float> part(std::size_t(E) * d, 0.0f);
      for (int t = T * c / chunks; t < T * (c + 1) / chunks; ++t) {
        for (int e = 0; e < E; ++e) {
          gs[e] = with_s ? dense_s[t * E + e] : 0.0f;
          gz[e] = with_z ? dense_z[t * E + e] : 0.0f;
        }
        for (int r = 0; r < k; ++r) gs[expert[t * k + r]] += selected[t * k + r];
        score_row_backward(f, &s[std::size_t(t) * E], gs.data(), gz.data(), E);
        for (int e = 0; e < E; ++e)
          if (gz[e] != 0.0f)
            for (int i = 0; i < d; ++i) part[e * d + i] += gz[e] * x[t * d + i];
      }
      for (int i = 0; i < d; ++i)
        for (int e = 0; e < E; ++e) grad_w[i * E + e] += part[e * d + i];
    }
    return grad_w;
  }
  // Σ_t x_t,i · ∂L/∂z_t,e in double, from the closed-form Jacobians.
  std::vector<double> reference(ScoreFunction f, bool with_s, bool with_z) const {
    const int T = shape.tokens(), E = shape.experts, d = shape.hidden, k = shape.top_k;
    std::vector<double> grad_w(std::size_t(d) * E, 0.0);
    for (int t = 0; t < T; ++t) {
      std::vector<double> gs(E, 0.0), gz(E, 0.0);
      for (int e = 0; e < E; ++e) {
        gs[e] = with_s ? dense_s[t * E + e] : 0.0;
        gz[e] = with_z ? dense_z[t * E + e] : 0.0;
      }
      for (int r = 0; r < k; ++r) gs[expert[t * k + r]] += selected[t * k + r];
      double dot = 0.0;
      for (int e = 0; e < E; ++e) dot += gs[e] * s[t * E + e];
      for (int e = 0; e < E; ++e) {
        const double se = s[t * E + e];
        gz[e] += f == ScoreFunction::sigmoid ? gs[e] * se * (1 - se) : se * (gs[e] - dot);
      }
      for (int i = 0; i < d; ++i)
        for (int e = 0; e < E; ++e) grad_w[i * E + e] += x[t * d + i] * gz[e];
    }
    return grad_w;
  }
};

}  // namespace

TEST_CASE("weight_gradient matches xᵀ·∂L/∂z computed in double", "[learn][gradient]") {
  for (ScoreFunction f : {ScoreFunction::sigmoid, ScoreFunction::softmax})
    for (bool with_s : {false, true})
      for (bool with_z : {false, true}) {
        INFO("softmax " << (f == ScoreFunction::softmax) << " dense s " << with_s << " dense z " << with_z);
        const Case c(f);
        const std::vector<float> got = c.run(f, with_s, with_z);
        const std::vector<double> want = c.reference(f, with_s, with_z);
        for (std::size_t j = 0; j < got.size(); ++j) CHECK(got[j] == Approx(want[j]).epsilon(1e-5).margin(1e-6));
      }
}

TEST_CASE("weight_gradient's sparse path equals the dense one bit for bit, at any thread count", "[learn][gradient]") {
  const Case c(ScoreFunction::sigmoid);
  const std::vector<float> sparse = c.run(ScoreFunction::sigmoid, false, false);
  // A zero dense ∂L/∂s forces the dense path without changing the gradient.
  Case zero = c;
  std::fill(zero.dense_s.begin(), zero.dense_s.end(), 0.0f);
  CHECK(zero.run(ScoreFunction::sigmoid, true, false) == sparse);
  CHECK(sparse[0] != 0.0f);
  auto run = [&](int threads) {
    const testing::ThreadCount team(threads);
    return c.run(ScoreFunction::softmax, true, true);
  };
  CHECK(run(1) == run(2));
}

}  // namespace moesim

namespace moesim {

TEST_CASE("weight_gradient sums in the documented order, bit for bit, whatever its tiles", "[learn][gradient]") {
  // 1100 tokens: chunks of 137–138, three blocks of the dense kernel's 64; d = 19
  // and E = 70 leave partial tiles of 8 dimensions × 32 experts.
  for (ScoreFunction f : {ScoreFunction::sigmoid, ScoreFunction::softmax})
    for (bool with_s : {false, true})
      for (bool with_z : {false, true}) {
        INFO("softmax " << (f == ScoreFunction::softmax) << " dense s " << with_s << " dense z " << with_z);
        const Case c(f, 1100, 19, 70);
        const std::vector<float> got = c.run(f, with_s, with_z);
        CHECK(got == c.chunked(f, with_s, with_z));
        const std::vector<double> want = c.reference(f, with_s, with_z);
        for (std::size_t j = 0; j < got.size(); j += 97) CHECK(got[j] == Approx(want[j]).epsilon(1e-4).margin(1e-5));
      }
}

}  // namespace moesim
