#pragma once
// A scenario file, validated and with every default filled in (FORMATS.md).
// Only this module and the result writer touch JSON.
#include <cstdint>
#include <string>
#include <vector>

#include "moesim/cluster.hpp"
#include "moesim/params.hpp"
#include "moesim/serve.hpp"
#include "moesim/step.hpp"

namespace moesim {

// One configured component: its registered type and validated parameters.
struct ComponentSpec {
  std::string type;
  Params params;
  std::string pointer;  // where it was read, e.g. /strategies/1/dropper
};

struct StrategySpec {
  std::string name;
  std::vector<ComponentSpec> balancers;
  ComponentSpec routing;
  ComponentSpec dropper;
  ComponentSpec placement;  // strategies[i].placement, or else cluster.placement
  std::string normalized;  // JSON text of the filled-in strategy, echoed in results
};

struct ModelSpec {
  ScoreFunction score = ScoreFunction::sigmoid;
  bool normalize_gates = false;  // softmax only; sigmoid gates are always normalised (V3)
  double route_scale = 1.0;
  double init_std = 0.02;
  double lr = 25.0;
};

struct LearningSpec {  // MODEL.md §3
  double kappa0 = 0.1, eta_skill = 0.05, forget = 0.001, interference = 0.0125, task_weight = 0.03;
};

struct ClusterSpec {  // MODEL.md §6
  ComponentSpec placement;
  ClusterHardware hardware;  // bandwidths, sizes and FLOP rates of the timing model
};

struct RecordSpec {
  int every = 1;
  bool per_step_loads = true;
  int window = 1;  // collapse-metric window in steps (default: last fifth of the run)
  std::string trace;  // record.trace: write the first strategy's routing here (pairs JSONL); "" = no
  bool bias_trajectory = false;    // per_step.bias: each expert's bias at each recorded step
  bool placement_history = false;  // per_step.replicas: each expert's replica count at each recorded step
};

// A file the scenario reads (a trace), identified by content so a resumed
// sweep notices a file regenerated at the same path.
struct InputFile {
  std::string path;
  std::int64_t size = 0;
  std::string hash;  // "fnv1a64:<16 hex digits>" of the whole content
};

struct Scenario {
  std::string file;  // where it was read from ("" for built-in)
  std::string name;
  std::uint64_t seed = 1;
  int steps = 100;
  bool train = true;
  Shape shape;
  std::vector<int> layer_ids;  // the model's layer ids: 0..L−1, or a replayed trace's (MODEL.md §9)
  ModelSpec model;
  ComponentSpec stream;
  std::vector<Params> stream_layers;           // per layer: stream parameters with `stream.layers` overrides
  std::vector<std::string> stream_overridden;  // the parameters some layer overrides
  LearningSpec learning;
  ClusterSpec cluster;
  RecordSpec record;
  std::vector<StrategySpec> strategies;
  ServeSpec serve;                // mode serve (MODEL.md §10); serve.enabled is false otherwise
  std::vector<InputFile> inputs;  // every file a component names, in reading order, once each
  std::string normalized;  // JSON text of the whole filled-in scenario
};

// Reads and validates a scenario; `overrides` are "POINTER=VALUE" strings
// applied before validation (--set). Throws InputError.
Scenario load_scenario(const std::string& path, const std::vector<std::string>& overrides = {});
// Same from JSON text (comments allowed); `file` names it in messages.
Scenario parse_scenario(const std::string& text, const std::string& file,
                        const std::vector<std::string>& overrides = {});
// Keeps only the named strategies (in the given order); InputError for unknown names.
void select_strategies(Scenario& scenario, const std::vector<std::string>& names);

}  // namespace moesim
