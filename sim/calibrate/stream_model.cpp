#include "stream_model.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

namespace moesim {
namespace {

// Experts whose weight a token's type or topic multiplies: at most k + hot.
constexpr int kMaxBoosted = 128;
// Rejected draws (an expert already chosen) before the exact scan takes over;
// only reached when the chosen experts hold most of the weight.
constexpr int kMaxRejections = 32;

struct Boosted {
  std::int32_t id[kMaxBoosted];
  double weight[kMaxBoosted];  // added weight of a boosted expert
  double extra[kMaxBoosted];   // the same, 0 once chosen
  int n = 0;
  void add(std::int32_t e, double w) {
    for (int i = 0; i < n; ++i)
      if (id[i] == e) {
        weight[i] += w;
        return;
      }
    id[n] = e;
    weight[n++] = w;
  }
  double added(std::int32_t e) const {
    const int i = find(e);
    return i >= 0 ? weight[i] : 0.0;
  }
  // e's position, or −1 if it is not boosted.
  int find(std::int32_t e) const {
    int at = -1;
    for (int i = 0; i < n; ++i) at = id[i] == e ? i : at;  // ids are distinct (add)
    return at;
  }
  // Where a draw u ∈ [0, Σ extra) falls, walking the extras in order: the
  // first position with an extra left at which u, less the extras so far,
  // drops below 0; else the last position if its extra is left; else −1
  // (rounding). No early exit, whose branch a coin decides: a taken extra is
  // 0 and u − 0 = u exactly, so u at each position is what a walk that
  // skips the taken ones computes.
  int pick(double u) const {
    int at = -1;
    for (int i = 0; i < n; ++i) {
      u -= extra[i];
      at = at < 0 && extra[i] > 0.0 && (u < 0.0 || i == n - 1) ? i : at;
    }
    return at;
  }
};

// No early exit either: whether e was chosen is a coin toss too.
bool contains(const std::int32_t* chosen, int n, std::int32_t e) {
  bool found = false;
  for (int i = 0; i < n; ++i) found |= chosen[i] == e;
  return found;
}

}  // namespace

StreamGenerator::StreamGenerator(const StreamModel& model) : model_(model) {
  const int L = model.layers(), E = model.experts, k = model.top_k;
  if (int(model.popularity.size()) != L) throw std::invalid_argument("stream model: popularity rows differ from layers");
  if (E < 1 || k < 1 || k > E || model.hot_experts < 0 || model.hot_experts > E ||
      model.type_experts < 1 || model.type_experts > E || model.type_experts + model.hot_experts > kMaxBoosted ||
      k > kMaxBoosted || model.vocabulary < 1 || model.topics < 1)
    throw std::invalid_argument("stream model: inconsistent shape");
  for (int l = 0; l < L; ++l) {
    const auto& w = model.weight[l];
    const auto& p = model.popularity[l];
    if (int(w.size()) != E || int(p.size()) != E)
      throw std::invalid_argument("stream model: weight or popularity row size differs from experts");
    if (std::count_if(p.begin(), p.end(), [](double x) { return x > 0.0; }) <
        std::max({k, model.type_experts, model.hot_experts}))
      throw std::invalid_argument("stream model: fewer experts with positive popularity than k or a type's or topic's experts");
    const int positive = int(std::count_if(w.begin(), w.end(), [](double x) { return x > 0.0; }));
    if (positive < k) throw std::invalid_argument("stream model: fewer than k experts with positive weight");
    base_.emplace_back(w);
    base_total_.push_back(std::accumulate(w.begin(), w.end(), 0.0));
    positive_.push_back(positive);
  }
  type_cdf_.resize(model.vocabulary);
  double sum = 0.0;
  for (int t = 0; t < model.vocabulary; ++t) type_cdf_[t] = sum += std::pow(t + 1.0, -model.vocabulary_zipf);
  for (double& c : type_cdf_) c /= sum;
  type_cdf_.back() = 1.0;
  // The hidden structure: each type's experts and each topic's hot experts
  // per layer, dealt so that every expert's part of them follows the target
  // popularity (popular experts serve many types and topics, as in real
  // models), at random otherwise. Then the stream's shares can match the
  // target whatever the boosts, by adjusting w alone.
  const int s = model.type_experts, h = model.hot_experts;
  type_set_.resize(std::size_t(model.vocabulary) * L * s);
  hot_set_.resize(std::size_t(model.topics) * L * h);
  std::vector<double> type_mass(model.vocabulary), topic_mass(model.topics, 1.0 / model.topics);
  for (int t = 0; t < model.vocabulary; ++t) type_mass[t] = type_cdf_[t] - (t > 0 ? type_cdf_[t - 1] : 0.0);
#pragma omp parallel for schedule(dynamic)
  for (int l = 0; l < L; ++l) {
    std::vector<std::int32_t> layer_sets;
    Rng rng = Rng::stream(model.structure_seed, "calibrated-structure", std::uint64_t(l));
    // Deficits in tokens: expert e is in at most k·share_e of the tokens; a
    // type takes its frequency from its experts, a hot expert at most its
    // topic's 1/topics. Types first, hot experts from what they leave.
    const auto& pop = model.popularity[l];
    const double total = std::accumulate(pop.begin(), pop.end(), 0.0);
    std::vector<double> deficit(E);
    for (int e = 0; e < E; ++e) deficit[e] = k * pop[e] / total;
    deal(pop, type_mass, s, rng, deficit, layer_sets);
    for (int t = 0; t < model.vocabulary; ++t)
      std::copy_n(&layer_sets[std::size_t(t) * s], s, &type_set_[(std::size_t(t) * L + l) * s]);
    deal(pop, topic_mass, h, rng, deficit, layer_sets);
    for (int z = 0; z < model.topics; ++z)
      std::copy_n(&layer_sets[std::size_t(z) * h], h, &hot_set_[(std::size_t(z) * L + l) * h]);
  }
}

std::int32_t StreamGenerator::type_at(double u) const {
  return std::int32_t(std::upper_bound(type_cdf_.begin(), type_cdf_.end() - 1, u) - type_cdf_.begin());
}

StreamToken StreamGenerator::next_token(const StreamToken& prev, Rng& rng) const {
  StreamToken t;
  t.type = draw_type(rng);
  t.topic = rng.uniform() < model_.topic_switch ? draw_topic(rng) : prev.topic;
  return t;
}

void StreamGenerator::deal(const std::vector<double>& popularity, const std::vector<double>& mass, int per_group,
                           Rng& rng, std::vector<double>& deficit, std::vector<std::int32_t>& out) {
  // Groups (types or topics) in order of falling mass, each given per_group
  // distinct experts; an expert is drawn ∝ its remaining deficit among those
  // whose deficit covers the slot's mass, else the one with the largest.
  const int E = int(popularity.size()), groups = int(mass.size());
  std::vector<int> order(groups);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return mass[a] > mass[b]; });
  out.assign(std::size_t(groups) * per_group, 0);
  for (int g : order) {
    std::int32_t* set = &out[std::size_t(g) * per_group];
    const double slot = mass[g] / per_group;
    for (int j = 0; j < per_group; ++j) {
      double covering = 0.0;
      std::int32_t best = -1;
      for (int e = 0; e < E; ++e) {
        if (contains(set, j, e) || popularity[e] <= 0.0) continue;
        if (deficit[e] >= slot) covering += deficit[e];
        if (best < 0 || deficit[e] > deficit[best]) best = e;
      }
      std::int32_t pick = best;
      if (covering > 0.0) {
        double u = rng.uniform() * covering;
        for (int e = 0; e < E; ++e) {
          if (contains(set, j, e) || popularity[e] <= 0.0 || deficit[e] < slot) continue;
          pick = e;
          if ((u -= deficit[e]) < 0.0) break;
        }
      }
      set[j] = pick;
      deficit[pick] -= slot;
    }
  }
}

void StreamGenerator::route(int layer, const StreamToken& token, Rng& stream, std::int32_t* expert, float* gate) const {
  Rng rng = stream;  // a local copy the compiler can keep in registers; written back at the end
  const int L = model_.layers(), k = model_.top_k, h = model_.hot_experts;
  const auto& w = model_.weight[layer];
  Boosted b;
  const int s = model_.type_experts;
  const std::int32_t* set = &type_set_[(std::size_t(token.type) * L + layer) * s];
  const double total = base_total_[layer];
  for (int j = 0; j < s; ++j) b.add(set[j], model_.type_weight * total);
  const std::int32_t* hot = &hot_set_[(std::size_t(token.topic) * L + layer) * h];
  for (int j = 0; j < h; ++j) b.add(hot[j], model_.topic_weight * total);
  double extra_total = 0.0;
  for (int i = 0; i < b.n; ++i) extra_total += b.extra[i] = b.weight[i];

  // Sequential draws ∝ full weight: propose from base + extras, reject an
  // expert already chosen (its extra is gone, its base weight is not).
  int chosen = 0, rejected = 0;
  double gate_sum = 0.0;
  // e at boosted position `slot` (−1: none). Its extra, if any, is gone; the
  // total is summed again in order (not decremented), as it was first summed.
  auto accept = [&](std::int32_t e, int slot) {
    const double weight = w[e] + (slot >= 0 ? b.weight[slot] : 0.0);
    expert[chosen] = e;
    gate[chosen++] = float(weight);
    gate_sum += weight;
    if (slot < 0) return;  // no extra changed, nor would the sum
    b.extra[slot] = 0.0;
    extra_total = 0.0;
    for (int i = 0; i < b.n; ++i) extra_total += b.extra[i];
  };
  while (chosen < k && rejected < kMaxRejections) {
    const double u = rng.uniform() * (total + extra_total);
    int slot = u < extra_total ? b.pick(u) : -1;
    std::int32_t e;
    if (slot >= 0) {
      e = b.id[slot];
    } else {
      e = base_[layer].draw(rng);  // also after rounding at the extras' boundary
      slot = b.find(e);
    }
    if (contains(expert, chosen, e)) ++rejected;
    else accept(e, slot);
  }
  while (chosen < k) {  // exact scan over the experts not yet chosen
    double total = 0.0;
    for (int e = 0; e < model_.experts; ++e) total += contains(expert, chosen, e) ? 0.0 : w[e] + b.added(e);
    double u = rng.uniform() * total;
    std::int32_t pick = -1;
    for (int e = 0; e < model_.experts; ++e) {
      const double we = w[e] + b.added(e);
      if (contains(expert, chosen, e) || we <= 0.0) continue;
      pick = e;
      if ((u -= we) < 0.0) break;
    }
    accept(pick, b.find(pick));
  }
  for (int j = 0; j < k; ++j) gate[j] = float(gate[j] / gate_sum);
  stream = rng;
}

RoutingTrace StreamGenerator::sample(std::uint64_t seed, std::int64_t tokens, std::int64_t seq_len,
                                     bool stratified) const {
  const int L = model_.layers(), k = model_.top_k;
  std::vector<StreamToken> ids(tokens);
  Rng rng = Rng::stream(seed, "calibrated-token");
  constexpr double kGolden = 0.6180339887498949;
  double u = rng.uniform();
  for (std::int64_t t = 0; t < tokens; ++t) {
    if (stratified) {
      u += kGolden;
      u -= std::floor(u);
      ids[t] = {type_at(u), std::int32_t(t % model_.topics)};
    } else {
      const bool start = t == 0 || (seq_len > 0 && t % seq_len == 0);
      ids[t] = start ? first_token(rng) : next_token(ids[t - 1], rng);
    }
  }
  RoutingTrace trace;
  trace.layer_ids = model_.layer_ids;
  trace.experts = model_.experts;
  trace.top_k = k;
  trace.expert.resize(std::size_t(tokens) * L * k);
#pragma omp parallel for schedule(static)
  for (int l = 0; l < L; ++l) {
    Rng route_rng = Rng::stream(seed, "calibrated-route", std::uint64_t(l));
    float gate[kMaxBoosted];
    for (std::int64_t t = 0; t < tokens; ++t)
      route(l, ids[t], route_rng, &trace.expert[(std::size_t(t) * L + l) * k], gate);
  }
  return trace;
}

}  // namespace moesim
