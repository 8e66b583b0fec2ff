// Scenario reading: JSON with comments → validated Scenario with defaults
// filled in (FORMATS.md "Scenario file").
#include "moesim/scenario.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <optional>
#include <set>

#include "json_reader.hpp"
#include "scenario_path.hpp"
#include "serve_reader.hpp"
#include "memory_estimate.hpp"
#include "moesim/components.hpp"
#include "moesim/error.hpp"
#include "../source/trace_shape.hpp"
#include "moesim/input.hpp"

namespace moesim {

namespace {

// Upper bounds keep a typo (an extra zero or three) from exhausting memory.
constexpr std::int64_t kMaxExperts = 4096;
constexpr std::int64_t kMaxHidden = 8192;
constexpr std::int64_t kMaxTokensPerStep = 1 << 22;
constexpr std::int64_t kMaxScoresPerStep = std::int64_t(1) << 28;  // T×E floats per array
constexpr std::int64_t kMaxSteps = 10'000'000;
constexpr std::int64_t kMaxLayers = 1024;
constexpr std::int64_t kMaxDevices = 65536;

Json parse_json(const std::string& text, const std::string& file) {
  JsonParseOptions options;
  options.comments = true;
  return parse_json_bounded(text, file, options);
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
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      const bool last = i + 1 == tokens.size();
      const bool numeric = !tokens[i].empty() && tokens[i].find_first_not_of("0123456789") == std::string::npos;
      if (!node || node->is_null()) {
        // Below a missing field only objects are created: a numeric token
        // would make nlohmann grow a new array to that index (a typo such as
        // /x/5555555555 would allocate hundreds of gigabytes).
        if (numeric || tokens[i] == "-")
          throw InputError(file, pointer, fmt::format("--set: '{}' indexes an array that does not exist; "
                                                      "set the whole array instead", tokens[i]));
        node = nullptr;
        continue;
      }
      if (node->is_array()) {
        const std::size_t idx = tokens[i] == "-" ? node->size() : numeric ? std::stoul(tokens[i]) : SIZE_MAX;
        if (idx == SIZE_MAX)
          throw InputError(file, pointer, fmt::format("--set: '{}' is not an array index", tokens[i]));
        if (idx > node->size() || (idx == node->size() && !last))
          throw InputError(file, pointer, fmt::format("--set: index {} is past the end of an array of {} entries",
                                                      idx, node->size()));
        node = idx < node->size() ? &(*node)[idx] : nullptr;
      } else if (node->is_object()) {
        node = node->contains(tokens[i]) ? &(*node)[tokens[i]] : nullptr;
      } else {
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
  // A JSON string must be valid UTF-8; a raw VALUE (or key) that is not would
  // make the normalised scenario and every message that echoes it unprintable.
  try {
    (void)Json(assignment).dump();
  } catch (const Json::type_error&) {
    throw InputError("--set", "", "the assignment is not valid UTF-8: expected POINTER=VALUE in UTF-8 text");
  }
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0 || assignment[0] != '/')
    throw InputError("--set " + assignment, "",
                     "expected POINTER=VALUE with a JSON pointer such as /steps=50 or /strategies/0/dropper/cf=1.5");
  const std::string pointer = assignment.substr(0, eq), text = assignment.substr(eq + 1);
  // Bounded like a file: a pointer of more tokens than JSON may nest would
  // build a value deeper than any reader accepts (and made the wildcard
  // expansion crawl), and the value goes through the same depth check.
  if (std::count(pointer.begin(), pointer.end(), '/') > kMaxPointerTokens)
    throw InputError("--set " + excerpt(assignment), "",
                     fmt::format("the pointer has more than {} tokens (the JSON nesting limit)", kMaxPointerTokens));
  const Json value = Json::accept(text) ? parse_json_bounded(text, "--set " + excerpt(assignment)) : Json(text);
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
// `inspect` sees the component built for the check (e.g. what a source outputs).
template <class Interface>
ComponentSpec read_component(JsonReader& r, const std::string& type_key, const std::string& def,
                             const Shape& shape, const std::string& what,
                             const std::function<void(const Interface&)>& inspect = {}) {
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
    const auto made = entry->make(spec.params, shape);
    if (inspect) inspect(*made);
  } catch (const ParamError& e) {
    r.fail_path(e.param(), e.what());
  }
  return spec;
}

Shape read_shape(JsonReader& model, JsonReader& batch, JsonReader& cluster, const TraceShape* trace) {
  Shape s;
  // A replayed trace gives the model's layers, experts and k unless the scenario says otherwise.
  const bool traced = trace && trace->kind == TraceShape::choices;
  // A default is not range-checked by JsonReader: one taken from the trace is checked here.
  auto from_trace = [&](const char* key, std::int64_t value, std::int64_t max) {
    if (!model.has(key) && value > max)
      model.fail(key, fmt::format("the replayed trace implies {} = {}, more than the {} allowed; set model.{} or "
                                  "replay a smaller trace", key, value, max, key));
    return value;
  };
  s.layers = int(model.integer("layers", from_trace("layers", trace ? std::int64_t(trace->layer_ids.size()) : 1, kMaxLayers),
                               1, kMaxLayers));
  s.experts = int(model.integer("experts", from_trace("experts", trace && trace->experts > 0 ? trace->experts : 64, kMaxExperts),
                                1, kMaxExperts));
  const std::int64_t k_max = std::min<std::int64_t>(kMaxTopK, s.experts);
  const std::int64_t k_default = traced && trace->top_k > 0 ? trace->top_k : std::min<std::int64_t>(8, s.experts);
  s.top_k = int(model.integer("top_k", from_trace("top_k", k_default, k_max), 1, k_max));
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
  if (std::int64_t(s.nodes) * s.devices_per_node > kMaxDevices)
    cluster.fail("devices_per_node", fmt::format("nodes × devices_per_node must be at most {} devices, got {} × {}",
                                                 kMaxDevices, s.nodes, s.devices_per_node));
  // Whether experts (and redundant replicas) fill the devices evenly is the placement's to check.
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
  hw.intra_latency = r.real("intra_latency", hw.intra_latency, 0.0, 1e3);
  hw.inter_latency = r.real("inter_latency", hw.inter_latency, 0.0, 1e3);
  hw.dispatch_bytes = r.real("dispatch_bytes", hw.dispatch_bytes, 0.0, 1e9);
  hw.combine_bytes = r.real("combine_bytes", hw.combine_bytes, 0.0, 1e9);
  hw.dispatch = r.choice("dispatch", {"per_token", "per_assignment"}) == "per_token" ? DispatchMode::per_token
                                                                                      : DispatchMode::per_assignment;
  hw.forwarding = r.boolean("forwarding", hw.forwarding);
  hw.flops_per_token = r.real("flops_per_token", hw.flops_per_token, 0.0, 1e15);
  hw.expert_bytes = r.real("expert_bytes", hw.expert_bytes, 0.0, 1e15);
  hw.memory_bandwidth = r.real("memory_bandwidth", hw.memory_bandwidth, 1.0, 1e18);
  hw.dense_flops_per_token = r.real("dense_flops_per_token", hw.dense_flops_per_token, 0.0, 1e15);
  hw.peak_flops = r.real("peak_flops", hw.peak_flops, 1.0, 1e20);
  hw.efficiency = r.real("efficiency", hw.efficiency, 1e-6, 1.0);
  // Each micro-batch needs a sequence of its own (sequences split contiguously).
  hw.micro_batches = int(r.integer("micro_batches", hw.micro_batches, 1, std::max(1, shape.sequences)));
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

// The trace a scenario replays, peeked before the model is read so that its
// layers, experts and k become the defaults; nullopt for other sources or
// when the stream object is malformed (its reader then reports why).
std::optional<TraceShape> peek_trace(const Json& root, const std::string& file) {
  if (!root.is_object() || !root.contains("stream") || !root["stream"].is_object()) return std::nullopt;
  const Json& stream = root["stream"];
  if (!stream.contains("source") || stream["source"] != "trace" || !stream.contains("path") ||
      !stream["path"].is_string())
    return std::nullopt;
  const std::string format = stream.contains("format") && stream["format"].is_string() ? stream["format"].get<std::string>() : "npy";
  if (format != "npy" && format != "pairs" && format != "jsonl") return std::nullopt;
  return peek_trace_shape(resolve_path(file, stream["path"].get<std::string>()), format);
}

// `stream.layers`: per-layer overrides of the source's parameters (MODEL.md
// §9), each entry validated against the source's schema like the stream itself.
void read_stream_layers(JsonReader& stream, const Json* layers, Scenario& sc) {
  if (!layers) return;
  const auto* entry = SourceRegistry::instance().find(sc.stream.type);
  if (!layers->is_array() || layers->size() > std::size_t(sc.shape.layers))
    stream.fail("layers", fmt::format("expected an array of at most model.layers = {} objects of per-layer "
                                      "overrides, got {}", sc.shape.layers, json_type(*layers)));
  const OrderedJson base = stream.out();
  std::set<std::string> overridden;
  for (int l = 0; l < sc.shape.layers; ++l) {
    Json merged = Json::parse(base.dump());
    if (std::size_t(l) < layers->size()) {
      const Json& o = (*layers)[std::size_t(l)];
      if (!o.is_object())
        stream.fail_path(fmt::format("layers/{}", l), fmt::format("expected an object, got {}", json_type(o)));
      for (const auto& [key, value] : o.items()) {
        if (key == "source" || key == "path" || key == "format")
          stream.fail_path(fmt::format("layers/{}/{}", l, key), "cannot differ between layers");
        merged[key] = value;
        overridden.insert(key);
      }
    }
    OrderedJson scratch;
    JsonReader r(merged, fmt::format("{}/layers/{}", stream.pointer(), l), stream.file(), scratch);
    (void)r.take("source");
    sc.stream_layers.push_back(r.params(entry->params));
    r.finish();
  }
  stream.out()["layers"] = OrderedJson::parse(layers->dump());
  sc.stream_overridden.assign(overridden.begin(), overridden.end());
  try {
    auto source = entry->make(sc.stream.params, sc.shape);
    source->configure_layers(sc.stream_layers, sc.stream_overridden);
  } catch (const ParamError& e) {
    stream.fail(e.param(), e.what());
  }
}

// `replayed`: the source gives final top-k choices (a trace of expert ids), so there
// are no scores for a loss to read and no selection for routing limits to
// restrict: both are refused rather than silently computed on zeros or ignored.
StrategySpec read_strategy(JsonReader& r, const Shape& shape, const ComponentSpec& cluster_placement, bool replayed) {
  StrategySpec st;
  st.name = r.name("name");
  for (JsonReader& b : r.objects("balancers", false)) {
    st.balancers.push_back(read_component<Balancer>(b, "type", "", shape, "balancer", [&](const Balancer& made) {
      if (replayed && made.needs_scores())
        b.fail("type", "needs the router's scores, which a trace of expert choices (stream format jsonl, pairs or NPY ids) "
                       "does not have; "
                       "replay NPY logits instead, or remove this balancer");
    }));
  }
  JsonReader routing = r.object("routing");
  st.routing = read_component<RoutingConstraint>(
      routing, "type", "none", shape, "routing constraint", [&](const RoutingConstraint& made) {
        if (replayed && made.restricts())
          routing.fail("type", "cannot restrict replayed top-k choices (stream format jsonl, pairs or NPY ids): the trace fixes each "
                               "token's experts; use type none, or replay NPY logits");
      });
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

// Serving runs frozen routers without dropping, as deployed (MODEL.md §10),
// on each instance's own cluster: refuse what would silently do nothing, and
// check each strategy's placement fits every instance.
void check_serving_strategies(const Scenario& sc, std::vector<JsonReader>& readers) {
  for (std::size_t i = 0; i < sc.strategies.size(); ++i) {
    const StrategySpec& st = sc.strategies[i];
    JsonReader& r = readers[i];
    if (!st.balancers.empty())
      r.fail("balancers", "mode serve freezes routers and bias, as deployed: balancers would do nothing; remove them");
    if (st.dropper.type != "none")
      r.fail_path("dropper/type", "mode serve keeps every token, as deployed inference does: use type none");
    if (!sc.serve.disaggregated) continue;
    for (const auto& [what, size] : {std::pair{"prefill", sc.serve.prefill}, std::pair{"decode", sc.serve.decode}}) {
      Shape shape = sc.shape;
      shape.nodes = size.nodes;
      shape.devices_per_node = size.devices_per_node;
      try {
        auto placement = PlacementRegistry::instance().find(st.placement.type)->make(st.placement.params, shape);
        (void)placement->initial(shape);
      } catch (const ParamError& e) {
        throw InputError(sc.file, st.placement.pointer + "/" + e.param(),
                         fmt::format("on the {} instance ({} × {} devices): {}", what, size.nodes,
                                     size.devices_per_node, e.what()));
      }
    }
  }
}

// Every file a component of the scenario names (ParamKind::path), once each.
template <class Interface>
void add_inputs(const ComponentSpec& spec, std::vector<InputFile>& inputs) {
  const auto* entry = Registry<Interface>::instance().find(spec.type);
  if (!entry) return;
  for (const ParamSpec& p : entry->params) {
    if (p.kind != ParamKind::path || !spec.params.has(p.name)) continue;
    const std::string& path = spec.params.str(p.name);
    if (std::any_of(inputs.begin(), inputs.end(), [&](const InputFile& f) { return f.path == path; })) continue;
    const auto [size, hash] = fingerprint_file(path);
    inputs.push_back({path, size, hash});
  }
}

// Refuses a run the machine cannot hold, naming the field that sizes its
// largest buffer (accepted scenarios once exhausted memory mid-run).
void check_memory(const Scenario& sc) {
  const MemoryEstimate m = estimate_memory(sc);
  const std::int64_t limit = memory_limit_bytes();
  if (m.bytes <= limit) return;
  auto gib = [](std::int64_t b) { return double(b) / double(1ll << 30); };
  throw InputError(sc.file, m.largest_pointer,
                   fmt::format("the run needs an estimated {:.1f} GiB of memory, more than the {:.1f} GiB this "
                               "machine allows (physical memory, ulimit -v/-d); the largest part is {}: {:.1f} GiB",
                               gib(m.bytes), gib(limit), m.largest_what, gib(m.largest)));
}

std::vector<InputFile> scenario_inputs(const Scenario& sc) {
  std::vector<InputFile> inputs;
  add_inputs<TokenSource>(sc.stream, inputs);
  add_inputs<Placement>(sc.cluster.placement, inputs);
  for (const StrategySpec& st : sc.strategies) {
    for (const ComponentSpec& b : st.balancers) add_inputs<Balancer>(b, inputs);
    add_inputs<RoutingConstraint>(st.routing, inputs);
    add_inputs<Dropper>(st.dropper, inputs);
    add_inputs<Placement>(st.placement, inputs);
  }
  return inputs;
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
  // Serving runs requests, not steps (MODEL.md §10): its length is serve.requests or serve.duration.
  const bool serving = root.is_object() && root.contains("mode") && root["mode"] == "serve";
  if (serving && r.has("steps"))
    r.fail("steps", "mode serve runs requests, not steps: set /serve/requests or /serve/duration instead");
  sc.steps = serving ? 1 : int(r.integer("steps", 100, 1, kMaxSteps));
  const std::string mode = r.choice("mode", {"train", "inference", "serve"});
  sc.train = mode == "train";
  if (!serving && r.has("serve")) r.fail("serve", "is read only in mode \"serve\" (set /mode to \"serve\")");

  JsonReader model = r.object("model");
  JsonReader batch = r.object("batch");
  JsonReader cluster = r.object("cluster");
  const std::optional<TraceShape> trace = peek_trace(root, file);
  sc.shape = read_shape(model, batch, cluster, trace ? &*trace : nullptr);
  sc.shape.steps = serving ? 0 : sc.steps;  // 0: as many steps of tokens as the requests need
  if (serving && trace) {
    // A served trace is replayed from its start whenever the requests need
    // more tokens than it holds: the source reads all of its whole steps.
    const std::string path = resolve_path(file, root["stream"]["path"].get<std::string>());
    const std::int64_t steps = trace_steps(*trace, sc.shape, path);
    if (steps < 1)
      batch.fail("sequences", fmt::format("the trace {} holds less than one step of sequences × seq_len = {} tokens; "
                                          "lower batch.sequences", path, sc.shape.tokens()));
    sc.shape.steps = int(std::min<std::int64_t>(steps, kMaxSteps));
  }
  if (trace && trace->layers_known() && int(trace->layer_ids.size()) == sc.shape.layers) sc.layer_ids = trace->layer_ids;
  else for (int l = 0; l < sc.shape.layers; ++l) sc.layer_ids.push_back(l);
  sc.model = read_model(model);
  sc.shape.score = sc.model.score;
  model.finish();
  batch.finish();

  JsonReader stream = r.object("stream");
  const Json* stream_layers = stream.take("layers");
  bool replayed = false;
  sc.stream = read_component<TokenSource>(stream, "source", "synthetic", sc.shape, "token source",
                                          [&](const TokenSource& made) { replayed = made.output() == SourceOutput::choices; });
  read_stream_layers(stream, stream_layers, sc);
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
    sc.strategies.push_back(read_strategy(s, sc.shape, sc.cluster.placement, replayed));
    for (std::size_t i = 0; i + 1 < sc.strategies.size(); ++i)
      if (sc.strategies[i].name == sc.strategies.back().name)
        s.fail("name", fmt::format("duplicate strategy name '{}' (also /strategies/{}); names must be unique",
                                   sc.strategies.back().name, i));
  }

  if (serving) {
    JsonReader serve = r.object("serve");
    sc.serve = read_serve(serve, sc);
    check_serving_strategies(sc, strategies);
  }

  JsonReader record = r.object("record");
  sc.record.every = int(record.integer("every", 1, 1, sc.steps));
  sc.record.per_step_loads = record.boolean("per_step_loads", true);
  sc.record.window = int(record.integer("window", std::max(1, sc.steps / 5), 1, sc.steps));
  sc.record.bias_trajectory = record.boolean("bias_trajectory", false);
  sc.record.placement_history = record.boolean("placement_history", false);
  if (const Json* trace_out = record.take("trace")) {
    if (!trace_out->is_string() || trace_out->get<std::string>().empty())
      record.fail("trace", fmt::format("expected a file name for the routing trace (pairs JSONL), got {}",
                                       json_type(*trace_out)));
    sc.record.trace = trace_out->get<std::string>();
    record.out()["trace"] = sc.record.trace;
  }
  if (serving && !sc.record.trace.empty())
    record.fail("trace", "is not written in mode serve (requests reuse the stream's tokens); use --requests-out");
  record.finish();
  r.finish();
  sc.normalized = out.dump();
  sc.inputs = scenario_inputs(sc);
  if (!sc.serve.arrivals_trace.empty()) {
    const auto [size, hash] = fingerprint_file(sc.serve.arrivals_trace);
    sc.inputs.push_back({sc.serve.arrivals_trace, size, hash});
  }
  check_memory(sc);
  return sc;
}

Scenario load_scenario(const std::string& path, const std::vector<std::string>& overrides) {
  return parse_scenario(read_input_file(path, kMaxScenarioBytes, "scenario file"), path, overrides);
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
