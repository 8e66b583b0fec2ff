// Scenario reading: JSON with comments → validated Scenario with defaults
// filled in (FORMATS.md "Scenario file").
#include "moesim/scenario.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "json_reader.hpp"
#include "moesim/components.hpp"
#include "moesim/error.hpp"

namespace moesim {

namespace {

// Upper bounds keep a typo (an extra zero or three) from exhausting memory.
constexpr std::int64_t kMaxExperts = 4096;
constexpr std::int64_t kMaxHidden = 8192;
constexpr std::int64_t kMaxTokensPerStep = 1 << 22;
constexpr std::int64_t kMaxScoresPerStep = std::int64_t(1) << 28;  // T×E floats per array
constexpr std::int64_t kMaxSteps = 10'000'000;

std::string line_col(const std::string& text, std::size_t byte) {
  std::size_t line = 1, col = 1;
  for (std::size_t i = 0; i < byte && i < text.size(); ++i) {
    if (text[i] == '\n') line += 1, col = 1;
    else col += 1;
  }
  return fmt::format("line {}, column {}", line, col);
}

Json parse_json(const std::string& text, const std::string& file) {
  try {
    return Json::parse(text, nullptr, true, /*ignore_comments=*/true);
  } catch (const Json::parse_error& e) {
    std::string what = e.what();
    auto pos = what.find("parse error at");  // keep nlohmann's reason, drop its prefix
    auto colon = what.find(": ", pos == std::string::npos ? 0 : pos);
    std::string reason = colon == std::string::npos ? what : what.substr(colon + 2);
    throw InputError(file, line_col(text, e.byte == 0 ? 0 : e.byte - 1), "invalid JSON: " + reason);
  } catch (const Json::out_of_range& e) {  // e.g. 9e999: nlohmann reports overflow this way (found by fuzzing)
    std::string what = e.what();
    throw InputError(file, "", "invalid JSON: " + what.substr(what.find(']') + 2));
  }
}

// Sets one value at a concrete JSON pointer.
void set_one(Json& root, const std::string& file, const std::string& pointer, const Json& value) {
  try {
    Json::json_pointer ptr(pointer);
    // Walk the pointer: arrays may only be indexed within bounds, or appended
    // to at their end by the last token, never grown by a typo.
    const Json* node = &root;
    std::vector<std::string> tokens;
    for (Json::json_pointer p = ptr; !p.empty(); p = p.parent_pointer()) tokens.insert(tokens.begin(), p.back());
    for (std::size_t i = 0; i < tokens.size() && node; ++i) {
      const bool last = i + 1 == tokens.size();
      if (node->is_array()) {
        const bool numeric = !tokens[i].empty() && tokens[i].find_first_not_of("0123456789") == std::string::npos;
        const std::size_t idx = tokens[i] == "-" ? node->size() : numeric ? std::stoul(tokens[i]) : SIZE_MAX;
        if (idx == SIZE_MAX)
          throw InputError(file, pointer, fmt::format("--set: '{}' is not an array index", tokens[i]));
        if (idx > node->size() || (idx == node->size() && !last))
          throw InputError(file, pointer, fmt::format("--set: index {} is past the end of an array of {} entries",
                                                      idx, node->size()));
        node = idx < node->size() ? &(*node)[idx] : nullptr;
      } else if (node->is_object()) {
        node = node->contains(tokens[i]) ? &(*node)[tokens[i]] : nullptr;
      } else if (!node->is_null()) {
        throw InputError(file, pointer, fmt::format("--set: cannot set a field inside {}", json_type(*node)));
      }
    }
    root[ptr] = value;
  } catch (const InputError&) {
    throw;
  } catch (const std::exception& e) {
    throw InputError(file, pointer, fmt::format("--set: cannot set this JSON pointer ({})", e.what()));
  }
}

std::string resolve_path(const std::string& scenario_file, const std::string& path) {
  namespace fs = std::filesystem;
  if (fs::path(path).is_absolute()) return path;
  return (fs::path(scenario_file).parent_path() / path).lexically_normal().string();
}

// Expands `*` tokens of a pointer to every index of an array (or key of an
// object) present in the document: /strategies/*/dropper/cf.
void expand(const Json& node, const std::vector<std::string>& tokens, std::size_t i, const std::string& prefix,
            std::vector<std::string>& out) {
  if (i == tokens.size()) {
    out.push_back(prefix);
    return;
  }
  if (tokens[i] != "*") {
    const Json* child = nullptr;
    if (node.is_object() && node.contains(tokens[i])) child = &node[tokens[i]];
    static const Json null;
    expand(child ? *child : null, tokens, i + 1, prefix + "/" + tokens[i], out);
    return;
  }
  if (node.is_array())
    for (std::size_t k = 0; k < node.size(); ++k) expand(node[k], tokens, i + 1, prefix + "/" + std::to_string(k), out);
  else if (node.is_object())
    for (const auto& [key, child] : node.items()) expand(child, tokens, i + 1, prefix + "/" + key, out);
}

// --set POINTER=VALUE: VALUE is JSON if it parses as JSON, else a string.
void apply_override(Json& root, const std::string& file, const std::string& assignment) {
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0 || assignment[0] != '/')
    throw InputError("--set " + assignment, "",
                     "expected POINTER=VALUE with a JSON pointer such as /steps=50 or /strategies/0/dropper/cf=1.5");
  const std::string pointer = assignment.substr(0, eq), text = assignment.substr(eq + 1);
  Json value = Json::parse(text, nullptr, false);
  if (value.is_discarded()) value = text;
  if (pointer.find("/*") == std::string::npos) return set_one(root, file, pointer, value);
  std::vector<std::string> tokens, targets;
  for (std::size_t start = 1; start <= pointer.size();) {
    const auto slash = pointer.find('/', start);
    tokens.push_back(pointer.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  expand(root, tokens, 0, "", targets);
  if (targets.empty()) throw InputError(file, pointer, "--set: the wildcard '*' matches nothing in this scenario");
  for (const auto& target : targets) set_one(root, file, target, value);
}

// Reads `{"type": ..., params...}` for a registered component and checks it
// can be built for this shape, so `validate` catches what `run` would.
template <class Interface>
ComponentSpec read_component(JsonReader& r, const std::string& type_key, const std::string& def,
                             const Shape& shape, const std::string& what) {
  auto& registry = Registry<Interface>::instance();
  ComponentSpec spec;
  spec.pointer = r.pointer();
  // JsonReader::choice takes the first choice as the default; an empty `def`
  // means the type is required.
  std::vector<std::string> choices{def};
  if (def.empty()) choices.clear();
  for (const auto& n : registry.names())
    if (n != def) choices.push_back(n);
  if (def.empty() && !r.has(type_key))
    r.fail(type_key, fmt::format("is required: one of {}", fmt::join(choices, ", ")));
  if (choices.empty()) r.fail(type_key, fmt::format("no {} is available in this build", what));
  spec.type = r.choice(type_key, choices);
  const auto* entry = registry.find(spec.type);
  if (!entry) r.fail(type_key, fmt::format("no {} named '{}'", what, spec.type));
  spec.params = r.params(entry->params);
  for (const ParamSpec& p : entry->params)  // FORMATS.md: relative paths are relative to the scenario file
    if (p.kind == ParamKind::path && spec.params.has(p.name))
      spec.params.set(p.name, resolve_path(r.file(), spec.params.str(p.name)));
  r.finish();
  try {
    (void)entry->make(spec.params, shape);
  } catch (const ParamError& e) {
    r.fail_path(e.param(), e.what());
  }
  return spec;
}

Shape read_shape(JsonReader& model, JsonReader& batch, JsonReader& cluster) {
  Shape s;
  s.experts = int(model.integer("experts", 64, 1, kMaxExperts));
  s.top_k = int(model.integer("top_k", std::min<std::int64_t>(8, s.experts), 1, std::min<std::int64_t>(64, s.experts)));
  s.shared_experts = int(model.integer("shared_experts", 0, 0, 64));
  s.hidden = int(model.integer("hidden", 64, 1, kMaxHidden));
  s.sequences = int(batch.integer("sequences", 16, 1, kMaxTokensPerStep));
  s.seq_len = int(batch.integer("seq_len", 256, 1, kMaxTokensPerStep));
  if (std::int64_t(s.sequences) * s.seq_len > kMaxTokensPerStep)
    batch.fail("seq_len", fmt::format("sequences × seq_len must be at most {} tokens per step, got {} × {}",
                                      kMaxTokensPerStep, s.sequences, s.seq_len));
  if (std::int64_t(s.tokens()) * s.experts > kMaxScoresPerStep)
    batch.fail("sequences", fmt::format("tokens per step × experts must be at most {}, got {} × {}",
                                        kMaxScoresPerStep, s.tokens(), s.experts));
  s.nodes = int(cluster.integer("nodes", 1, 1, 4096));
  s.devices_per_node = int(cluster.integer("devices_per_node", 8, 1, 4096));
  if (s.experts % s.devices() != 0)
    cluster.fail("devices_per_node",
                 fmt::format("experts ({}) must be divisible by the number of devices nodes × devices_per_node = {}",
                             s.experts, s.devices()));
  return s;
}

ModelSpec read_model(JsonReader& r) {
  ModelSpec m;
  m.score = r.choice("score", {"sigmoid", "softmax"}) == "softmax" ? ScoreFunction::softmax : ScoreFunction::sigmoid;
  // Sigmoid gates are always normalised (DeepSeek-V3); the flag applies to softmax.
  m.normalize_gates = r.boolean("normalize_gates", m.score == ScoreFunction::sigmoid);
  if (m.score == ScoreFunction::sigmoid && !m.normalize_gates)
    r.fail("normalize_gates", "must be true for sigmoid scores (DeepSeek-V3 always normalises sigmoid gates)");
  m.route_scale = r.real("route_scale", 1.0, 1e-6, 1e6);
  m.init_std = r.real("init_std", 0.02, 0.0, 100.0);
  // MODEL.md §3: lr 25 for sigmoid, 15 for softmax.
  m.lr = r.real("lr", m.score == ScoreFunction::sigmoid ? 25.0 : 15.0, 0.0, 1e9);
  return m;
}

// Timing-model constants (MODEL.md §6); defaults: DeepSeek-V3 on H800, see cluster.hpp.
ClusterHardware read_hardware(JsonReader& r, const Shape& shape) {
  ClusterHardware hw;
  hw.nodes = shape.nodes;
  hw.devices_per_node = shape.devices_per_node;
  hw.intra_bandwidth = r.real("intra_bandwidth", hw.intra_bandwidth, 1.0, 1e15);
  hw.inter_bandwidth = r.real("inter_bandwidth", hw.inter_bandwidth, 1.0, 1e15);
  hw.hidden_bytes = r.real("hidden_bytes", hw.hidden_bytes, 0.0, 1e9);
  hw.flops_per_token = r.real("flops_per_token", hw.flops_per_token, 0.0, 1e15);
  hw.peak_flops = r.real("peak_flops", hw.peak_flops, 1.0, 1e20);
  hw.efficiency = r.real("efficiency", hw.efficiency, 1e-6, 1.0);
  try {
    validate(hw);
  } catch (const ParamError& e) {
    r.fail(e.param(), e.what());
  }
  return hw;
}

LearningSpec read_learning(JsonReader& r) {
  LearningSpec l;
  l.kappa0 = r.real("kappa0", l.kappa0, 0.0, 1.0);
  l.eta_skill = r.real("eta_skill", l.eta_skill, 0.0, 1e3);
  l.forget = r.real("forget", l.forget, 0.0, 1.0);
  l.interference = r.real("interference", l.interference, 0.0, 1e3);
  l.task_weight = r.real("task_weight", l.task_weight, 0.0, 1e6);
  r.finish();
  return l;
}

// "placement": "eplb" is shorthand for {"type": "eplb"} with default parameters.
ComponentSpec read_placement(JsonReader& parent, const Shape& shape, const std::string& def) {
  const Json* placement = parent.take("placement");
  if (placement && !placement->is_string() && !placement->is_object())
    parent.fail("placement", fmt::format("expected a placement name ({}) or an object {{\"type\": ...}}, got {}",
                                         fmt::join(PlacementRegistry::instance().names(), ", "), json_type(*placement)));
  const Json shorthand = placement && placement->is_string() ? Json{{"type", *placement}} : Json::object();
  JsonReader reader = placement && placement->is_object() ? parent.object("placement")
                                                          : parent.object_from("placement", shorthand);
  return read_component<Placement>(reader, "type", def, shape, "placement");
}

StrategySpec read_strategy(JsonReader& r, const Shape& shape, const ComponentSpec& cluster_placement) {
  StrategySpec st;
  st.name = r.name("name");
  for (JsonReader& b : r.objects("balancers", false)) {
    st.balancers.push_back(read_component<Balancer>(b, "type", "", shape, "balancer"));
  }
  JsonReader routing = r.object("routing");
  st.routing = read_component<RoutingConstraint>(routing, "type", "none", shape, "routing constraint");
  JsonReader dropper = r.object("dropper");
  st.dropper = read_component<Dropper>(dropper, "type", "none", shape, "dropper");
  // The comm-level loss counts against the devices a token may reach: V2's M
  // is the device_limited routing's m (MODEL.md §4).
  if (st.routing.type == "device_limited")
    for (std::size_t j = 0; j < st.balancers.size(); ++j)
      if (st.balancers[j].type == "aux_loss" && !st.balancers[j].params.has("m")) {
        st.balancers[j].params.set("m", st.routing.params.integer("m"));
        r.out()["balancers"][j]["m"] = st.routing.params.integer("m");
      }
  // A strategy may place experts its own way (e.g. with and without EPLB);
  // by default it uses the cluster's placement.
  st.placement = r.has("placement") ? read_placement(r, shape, "contiguous") : cluster_placement;
  r.finish();
  st.normalized = r.out().dump();
  return st;
}

}  // namespace

Scenario parse_scenario(const std::string& text, const std::string& file, const std::vector<std::string>& overrides) {
  Json root = parse_json(text, file);
  for (const auto& o : overrides) apply_override(root, file, o);

  OrderedJson out;
  JsonReader r(root, "", file, out);
  Scenario sc;
  sc.file = file;
  sc.name = r.name("name");
  sc.seed = std::uint64_t(r.integer("seed", 1, 0, INT64_MAX));
  sc.steps = int(r.integer("steps", 100, 1, kMaxSteps));
  sc.train = r.choice("mode", {"train", "inference"}) == "train";

  JsonReader model = r.object("model");
  JsonReader batch = r.object("batch");
  JsonReader cluster = r.object("cluster");
  sc.shape = read_shape(model, batch, cluster);
  sc.shape.steps = sc.steps;
  sc.model = read_model(model);
  sc.shape.score = sc.model.score;
  model.finish();
  batch.finish();

  JsonReader stream = r.object("stream");
  sc.stream = read_component<TokenSource>(stream, "source", "synthetic", sc.shape, "token source");
  if (sc.stream.params.has("domains")) sc.shape.domains = int(sc.stream.params.integer("domains"));
  if (sc.train && sc.stream.type != "synthetic")
    r.fail("mode", fmt::format("must be \"inference\" with source \"{}\": only the synthetic source has hidden "
                               "vectors to train the router on", sc.stream.type));

  JsonReader learning = r.object("learning");
  sc.learning = read_learning(learning);

  sc.cluster.hardware = read_hardware(cluster, sc.shape);
  sc.cluster.placement = read_placement(cluster, sc.shape, "contiguous");
  cluster.finish();

  auto strategies = r.objects("strategies", true);
  for (JsonReader& s : strategies) {
    sc.strategies.push_back(read_strategy(s, sc.shape, sc.cluster.placement));
    for (std::size_t i = 0; i + 1 < sc.strategies.size(); ++i)
      if (sc.strategies[i].name == sc.strategies.back().name)
        s.fail("name", fmt::format("duplicate strategy name '{}' (also /strategies/{}); names must be unique",
                                   sc.strategies.back().name, i));
  }

  JsonReader record = r.object("record");
  sc.record.every = int(record.integer("every", 1, 1, sc.steps));
  sc.record.per_step_loads = record.boolean("per_step_loads", true);
  sc.record.window = int(record.integer("window", std::max(1, sc.steps / 5), 1, sc.steps));
  sc.record.bias_trajectory = record.boolean("bias_trajectory", false);
  sc.record.placement_history = record.boolean("placement_history", false);
  record.finish();
  r.finish();
  sc.normalized = out.dump();
  return sc;
}

Scenario load_scenario(const std::string& path, const std::vector<std::string>& overrides) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path, "", "cannot open the scenario file (does it exist and is it readable?)");
  std::ostringstream text;
  text << in.rdbuf();
  if (text.str().size() > (64u << 20)) throw InputError(path, "", "scenario file is larger than 64 MiB");
  return parse_scenario(text.str(), path, overrides);
}

void select_strategies(Scenario& scenario, const std::vector<std::string>& names) {
  if (names.empty()) return;
  std::vector<StrategySpec> chosen;
  std::vector<std::string> valid;
  for (const auto& s : scenario.strategies) valid.push_back(s.name);
  for (const auto& name : names) {
    auto it = std::find_if(scenario.strategies.begin(), scenario.strategies.end(),
                           [&](const StrategySpec& s) { return s.name == name; });
    if (it == scenario.strategies.end())
      throw InputError("--strategy " + name, "",
                       fmt::format("no strategy named '{}' in {}; valid values are: {}", name, scenario.file,
                                   fmt::join(valid, ", ")));
    chosen.push_back(*it);
  }
  scenario.strategies = std::move(chosen);
}

}  // namespace moesim
