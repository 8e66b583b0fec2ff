#pragma once
// The pluggable concepts of a strategy and of a scenario. Each has an abstract
// interface here and named, self-registering implementations in sim/ (one file
// each); see registry.hpp.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "moesim/placement.hpp"
#include "moesim/registry.hpp"
#include "moesim/step.hpp"

namespace moesim {

// Receives a source's tokens a few at a time (TokenSource::next_sequence).
class TokenSink {
 public:
  // Tokens handed over at a time, and routed per task when a source makes
  // the whole step: a chunk's hidden vectors (16 KiB at d = 64) stay in L1.
  static constexpr int kChunk = 64;
  // Tokens [t0, t1) of the step are in StepData (x and domain).
  virtual void tokens(int t0, int t1) = 0;

 protected:
  ~TokenSink() = default;
};

// Produces each step's tokens (MODEL.md §1, §9). Deterministic in (seed,
// step): the simulation gives every strategy its own source built from the
// same parameters and seed, so all strategies see the same stream. Each step
// produces every MoE layer's tokens, layers 0..L−1 in order, by next() or by
// prepare() and next_sequence(): layer 0 starts the step's tokens, a later
// layer may build on what the previous one left in `data` (the synthetic
// hidden state evolves from layer to layer).
class TokenSource {
 public:
  virtual ~TokenSource() = default;
  virtual SourceOutput output() const = 0;
  virtual void seed(std::uint64_t seed) = 0;
  virtual void next(int step, int layer, StepData& data) = 0;
  // Sources whose sequences are independent streams may also produce the
  // step one sequence at a time: prepare(step) once (not concurrently), then
  // next_sequence for each sequence n, concurrently, which hands the tokens to
  // `sink` in chunks as soon as they are written, so that the router uses
  // them while they are still in cache. The same data as next().
  virtual bool by_sequence() const { return false; }
  virtual void prepare(int /*step*/) {}
  virtual void next_sequence(int step, int layer, int n, StepData& data, TokenSink& sink) const;
  // Per-layer parameters (`stream.layers`): entry l is the source's
  // parameters with layer l's overrides applied. Throws ParamError naming a
  // parameter that cannot differ between layers. Default: no overrides allowed.
  virtual void configure_layers(const std::vector<Params>& per_layer, const std::vector<std::string>& overridden);
};

// Restricts which experts a token may choose (MODEL.md §2: device- or
// node-limited routing). Writes one row of the allowed mask per token.
class RoutingConstraint {
 public:
  virtual ~RoutingConstraint() = default;
  virtual bool restricts() const { return true; }
  // Whether allow() reads device_of_expert: if not, it need not be each
  // token's own row of replica devices, which is dearer to make.
  virtual bool reads_devices() const { return restricts(); }
  // s: the token's scores, biased: s + b; device_of_expert: the device that
  // would serve this token for each expert (its replica for this token under
  // the placement, MODEL.md §6); allowed: E entries to fill, at least top_k of them
  // 1 (every later stage assumes k experts per token). Called concurrently.
  virtual void allow(std::span<const float> s, std::span<const float> biased,
                     std::span<const std::int32_t> device_of_expert, std::span<std::uint8_t> allowed) const = 0;
};

// Gradient buffers a balancer adds into (MODEL.md §3: gradients flow through s).
struct LossGrad {
  std::span<float> s;  // T×E, ∂L/∂s
  std::span<float> z;  // T×E, ∂L/∂z for losses defined on logits (z-loss)
};

// Steers the load (MODEL.md §4): by a loss whose gradient trains the router,
// and/or by adjusting the selection bias after each step.
class Balancer {
 public:
  virtual ~Balancer() = default;
  // Name of the per-step series recording this balancer's loss or state.
  virtual std::string series_name() const = 0;
  // Training: returns the loss value on this step and adds its gradient.
  // Called in inference mode too (with empty grads) so the value is recorded.
  virtual double loss(const StepData&, const Shape&, const LossGrad&) { return 0.0; }
  // True if loss() adds to LossGrad::z (losses on logits); the simulation
  // only keeps that buffer when some balancer needs it.
  virtual bool uses_logit_gradient() const { return false; }
  // True if loss() adds to LossGrad::s. Without such a loss the gradient on
  // the scores is the task loss's alone, at the k selected experts per token,
  // and the simulation keeps no T×E buffer for it.
  virtual bool uses_score_gradient() const { return false; }
  // True if the loss reads the router's scores or logits, which a replayed
  // top-k trace does not have (the scenario refuses that combination).
  virtual bool needs_scores() const { return false; }
  // After the step barrier: may update the selection bias b (E entries).
  virtual void end_of_step(const StepData&, const Shape&, std::span<float> /*bias*/) {}
};

// Decides which assignments are processed (MODEL.md §5).
class Dropper {
 public:
  virtual ~Dropper() = default;
  // Sets keep (T×k) from the routing in data; `map` places the experts (an
  // assignment counts on the replica that serves its token, MODEL.md §6).
  virtual void keep(StepData& data, const Shape& shape, const PlacementMap& map) = 0;
  // Sequences (B entries, 1 = protected) this dropper never drops from; empty: none.
  virtual std::vector<std::uint8_t> protected_sequences(const Shape&) const { return {}; }
  // Compute slots charged per expert when padding to capacity (0: no padding).
  virtual double padded_capacity(const Shape&) const { return 0.0; }
};

// Where experts (and their replicas) live on the devices (MODEL.md §6).
class Placement {
 public:
  virtual ~Placement() = default;
  // The map before any load has been observed.
  virtual PlacementMap initial(const Shape&) = 0;
  // After each step, with that step's routed loads per expert; may change `map`.
  virtual void observe(int /*step*/, std::span<const double> /*routed*/, PlacementMap& /*map*/) {}
};

using SourceRegistry = Registry<TokenSource>;
using ConstraintRegistry = Registry<RoutingConstraint>;
using BalancerRegistry = Registry<Balancer>;
using DropperRegistry = Registry<Dropper>;
using PlacementRegistry = Registry<Placement>;

}  // namespace moesim
