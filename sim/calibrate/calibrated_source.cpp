// The calibrated stream as a token source (docs/calibration.md): the
// parameters `moesim fit` writes. Each sequence of a step is a passage of
// tokens with types and topics (stream_model.hpp); every layer then draws the
// tokens' experts, so the source fixes the choices (like trace replay).
#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <stdexcept>

#include "moesim/components.hpp"
#include "moesim/error.hpp"
#include "stream_model.hpp"

namespace moesim {
namespace {

StreamModel model_from(const Params& p, const Shape& s) {
  StreamModel m;
  m.experts = s.experts;
  m.top_k = s.top_k;
  for (int l = 0; l < s.layers; ++l) m.layer_ids.push_back(l);
  // Absent matrices: every expert equally popular; weights = popularity.
  const RealMatrix uniform(std::size_t(s.layers), std::vector<double>(std::size_t(s.experts), 1.0));
  m.popularity = p.has("popularity") ? p.matrix("popularity") : uniform;
  m.weight = p.has("weight") ? p.matrix("weight") : m.popularity;
  m.vocabulary = int(p.integer("vocabulary"));
  m.vocabulary_zipf = p.real("vocabulary_zipf");
  m.type_experts = int(p.integer("type_experts"));
  m.topics = int(p.integer("topics"));
  m.hot_experts = int(p.integer("hot_experts"));
  m.topic_switch = p.real("topic_switch");
  m.type_weight = p.real("type_weight");
  m.topic_weight = p.real("topic_weight");
  m.structure_seed = std::uint64_t(p.integer("structure_seed"));
  for (const char* name : {"popularity", "weight"}) {
    const RealMatrix& x = name == std::string("popularity") ? m.popularity : m.weight;
    if (int(x.size()) != s.layers)
      throw ParamError(name, fmt::format("expected one row per layer ({}), got {}", s.layers, x.size()));
    for (std::size_t l = 0; l < x.size(); ++l)
      if (int(x[l].size()) != s.experts)
        throw ParamError(name, fmt::format("row {}: expected one entry per expert ({}), got {}", l, s.experts,
                                           x[l].size()));
  }
  if (m.type_experts > s.experts || m.hot_experts > s.experts)
    throw ParamError(m.type_experts > s.experts ? "type_experts" : "hot_experts",
                     fmt::format("expected at most the {} experts", s.experts));
  // What the generator needs to draw from each row, named by the matrix at fault.
  auto positive = [](const std::vector<double>& row) {
    return int(std::count_if(row.begin(), row.end(), [](double x) { return x > 0.0; }));
  };
  const int popular = std::max({s.top_k, m.type_experts, m.hot_experts});
  for (int l = 0; l < s.layers; ++l) {
    if (positive(m.popularity[l]) < popular)
      throw ParamError("popularity", fmt::format("row {}: expected at least {} positive entries (top_k, type_experts "
                                                 "and hot_experts draw from them), got {}",
                                                 l, popular, positive(m.popularity[l])));
    if (positive(m.weight[l]) < s.top_k)
      throw ParamError("weight", fmt::format("row {}: expected at least top_k = {} positive entries, got {}", l,
                                             s.top_k, positive(m.weight[l])));
  }
  return m;
}

class CalibratedSource final : public TokenSource {
 public:
  CalibratedSource(const Params& p, const Shape& s) : shape_(s), tokens_(std::size_t(s.tokens())) {
    generator_.emplace(model_from(p, s));  // model_from checked what the generator requires
  }

  SourceOutput output() const override { return SourceOutput::choices; }
  void seed(std::uint64_t seed) override { seed_ = seed; }

  void next(int step, int layer, StepData& data) override {
    const int B = shape_.sequences, L = shape_.seq_len, k = shape_.top_k;
    if (layer == 0) {  // the step's passages: one per sequence
      std::fill(data.domain.begin(), data.domain.end(), -1);
#pragma omp parallel for schedule(static)
      for (int b = 0; b < B; ++b) {
        Rng rng = Rng::stream(seed_, "calibrated-passage", std::uint64_t(step), std::uint64_t(b));
        StreamToken* seq = &tokens_[std::size_t(b) * L];
        seq[0] = generator_->first_token(rng);
        for (int t = 1; t < L; ++t) seq[t] = generator_->next_token(seq[t - 1], rng);
      }
    }
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; ++b) {
      Rng rng = Rng::stream(seed_, "calibrated-route", std::uint64_t(step), (std::uint64_t(layer) << 32) | std::uint64_t(b));
      for (int t = b * L; t < (b + 1) * L; ++t)
        generator_->route(layer, tokens_[t], rng, &data.expert[std::size_t(t) * k], &data.gate[std::size_t(t) * k]);
    }
    // No scores: droppers that rank by affinity use the gate.
    std::copy(data.gate.begin(), data.gate.end(), data.affinity.begin());
  }

 private:
  Shape shape_;
  std::optional<StreamGenerator> generator_;
  std::vector<StreamToken> tokens_;  // the step's tokens, set at layer 0
  std::uint64_t seed_ = 0;
};

const Registration<TokenSource> registration{{
    "calibrated",
    "a stream fitted to real routing by `moesim fit` (token types + passage topics, docs/calibration.md); fixes the "
    "choices, inference only",
    {
        ParamSpec::matrix("popularity", 0.0, 1.0, "layers × experts target share of each expert (draws the structure); default: all equal"),
        ParamSpec::matrix("weight", 0.0, 1e300, "layers × experts fitted base weight of each expert (0: never chosen); default: the popularity"),
        ParamSpec::integer("vocabulary", StreamModel{}.vocabulary, 1, 1 << 20, "token types"),
        ParamSpec::real("vocabulary_zipf", StreamModel{}.vocabulary_zipf, 0.0, 4.0,
                        "type t has frequency ∝ (t+1)^-zipf"),
        ParamSpec::integer("type_experts", StreamModel{}.type_experts, 1, 64, "experts of a type in each layer"),
        ParamSpec::integer("topics", StreamModel{}.topics, 1, 1 << 20, "passage topics"),
        ParamSpec::integer("hot_experts", StreamModel{}.hot_experts, 0, 64, "hot experts of a topic in each layer"),
        ParamSpec::real("topic_switch", StreamModel{}.topic_switch, 0.0, 1.0,
                        "probability that a token starts a new topic"),
        ParamSpec::real("type_weight", StreamModel{}.type_weight, 0.0, 1e6,
                        "weight added to a type's experts, × the layer's total weight"),
        ParamSpec::real("topic_weight", StreamModel{}.topic_weight, 0.0, 1e6,
                        "weight added to a topic's hot experts, × the layer's total weight"),
        ParamSpec::integer("structure_seed", 1, 0, std::int64_t(1) << 62, "seed of the types' and topics' experts"),
    },
    make<TokenSource, CalibratedSource>,
}};

}  // namespace
}  // namespace moesim
