// moesim fit DATA -o SCENARIO.json [options]
// Fits the calibrated stream (docs/calibration.md) to a per-token trace or to
// per-layer loads, writes a runnable scenario with it, and prints the fit:
// each statistic's value in the data and in the fitted stream.
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "calibrate/fit.hpp"
#include "calibrate/routing_data.hpp"
#include "commands.hpp"
#include "moesim/atomic_file.hpp"
#include "moesim/error.hpp"
#include "options.hpp"

namespace moesim::cli {
namespace {

using ordered = nlohmann::ordered_json;

struct Layout {
  int nodes = 0, devices_per_node = 8, sequences = 16, seq_len = 256, steps = 20;
};

ordered stream_json(const StreamModel& m) {
  ordered s;
  s["source"] = "calibrated";
  s["vocabulary"] = m.vocabulary;
  s["vocabulary_zipf"] = m.vocabulary_zipf;
  s["type_experts"] = m.type_experts;
  s["topics"] = m.topics;
  s["hot_experts"] = m.hot_experts;
  s["topic_switch"] = m.topic_switch;
  s["type_weight"] = m.type_weight;
  s["topic_weight"] = m.topic_weight;
  s["structure_seed"] = m.structure_seed;
  s["popularity"] = "@popularity@";  // placeholders: matrix_text() writes one row per line
  s["weight"] = "@weight@";
  return s;
}

std::string matrix_text(const RealMatrix& x) {
  std::string out = "[\n";
  for (std::size_t l = 0; l < x.size(); ++l)
    out += "   " + nlohmann::json(x[l]).dump() + (l + 1 < x.size() ? ",\n" : "\n");
  return out + "  ]";
}

void replace(std::string& text, const std::string& what, const std::string& with) {
  text.replace(text.find(what), what.size(), with);
}

// A scenario to compare strategies on the fitted stream: contiguous placement
// (or static replicas), EPLB with redundant replicas, and capacity dropping.
std::string scenario_text(const FitResult& r, const std::string& name, const std::string& data, const Layout& lay,
                          bool loads, const std::string& command) {
  const StreamModel& m = r.model;
  const int devices_per_node = lay.devices_per_node;
  const int nodes = lay.nodes > 0 ? lay.nodes : std::max(1, m.experts / (8 * devices_per_node));
  ordered sc;
  sc["name"] = name;
  sc["seed"] = 1;
  sc["steps"] = lay.steps;
  sc["mode"] = "inference";
  sc["model"] = {{"layers", m.layers()}, {"experts", m.experts}, {"top_k", m.top_k}, {"hidden", 64},
                 {"score", loads ? "sigmoid" : "softmax"}};
  sc["batch"] = {{"sequences", lay.sequences}, {"seq_len", lay.seq_len}};
  sc["stream"] = stream_json(m);
  sc["cluster"] = {{"nodes", nodes}, {"devices_per_node", devices_per_node}};
  // EPLB's redundant replicas: the fewest (at least one) that fill every
  // device's slots evenly (DeepSeek's 32 on 32 or on 144 devices).
  const int devices = nodes * devices_per_node;
  const int redundant = devices - m.experts % devices;
  // Contiguous placement needs E divisible by the devices; otherwise the
  // baseline is EPLB's first placement (equal loads assumed), never refreshed.
  ordered baseline = ordered::object();
  if (m.experts % devices != 0)
    baseline = {{"type", "eplb"}, {"redundant_experts", redundant}, {"rebalance_every", 1 << 30}, {"window", 1},
                {"groups", 1}};
  if (!baseline.empty()) sc["cluster"]["placement"] = baseline;
  auto strategy = [](const char* name, ordered extra) {
    ordered st{{"name", name}};
    st.update(extra);
    return st;
  };
  sc["strategies"] = ordered::array(
      {strategy(baseline.empty() ? "contiguous" : "static-replicas", ordered::object()),
       strategy("eplb", {{"placement",
                          {{"type", "eplb"}, {"redundant_experts", redundant}, {"rebalance_every", 5}, {"window", 5},
                           {"groups", 1}}}}),
       strategy("capacity-1.25", {{"dropper", {{"type", "capacity"}, {"cf", 1.25}, {"policy", "probs"}}}})});
  sc["record"] = {{"per_step_loads", false}};
  std::string text = fmt::format(
      "// Written by `moesim fit` from {} ({}): the calibrated stream (docs/calibration.md)\n"
      "// of {} layers × {} experts, top-{}, compared under contiguous placement, EPLB and capacity dropping.\n"
      "// Reproduce: {}\n",
      one_line(data, 4096), loads ? "aggregate loads: popularity fitted, per-token structure at its defaults" : "a per-token trace",
      m.layers(), m.experts, m.top_k, one_line(command, 4096));
  std::string json = sc.dump(1);
  // The key too: a user's --name or path may hold the placeholder text, never `"key": "@key@"`.
  replace(json, "\"popularity\": \"@popularity@\"", "\"popularity\": " + matrix_text(m.popularity));
  replace(json, "\"weight\": \"@weight@\"", "\"weight\": " + matrix_text(m.weight));
  return text + json + "\n";
}

void print_fit(const FitResult& r) {
  fmt::print("{:<28} {:>9} {:>16} {:>9}\n", "statistic (mean over layers)", "data", "fitted (± sd)", "diff");
  for (const auto& s : r.stats) {
    const std::string rel = s.name == "locality" || s.name == "cross-layer NMI"
                                ? fmt::format("{:+.3f}", s.mean - s.data)
                                : fmt::format("{:+.1f}%", 100.0 * (s.mean - s.data) / s.data);
    fmt::print("{:<28} {:>9.3f} {:>9.3f} ± {:<5.3f} {:>9}\n", s.name, s.data, s.mean, s.sd, rel);
  }
  const auto tv = std::minmax_element(r.total_variation.begin(), r.total_variation.end());
  fmt::print("{:<28} {:>9} {:>16} {:>9}\n", "popularity TV distance", "", fmt::format("{:.3f}–{:.3f}", *tv.first, *tv.second),
             "");
  double worst = 0.0;
  for (std::size_t l = 0; l < r.max_over_mean.size(); ++l)
    worst = std::max(worst, std::abs(r.max_over_mean[l] / r.data.max_over_mean[l] - 1.0));
  fmt::print("{:<28} {:>9} {:>16} {:>9}\n", "worst layer max/mean", "", fmt::format("{:.1f}%", 100.0 * worst), "");
}

}  // namespace

int fit_command(const Args& args) {
  po::options_description options("Options");
  Layout lay;
  options.add_options()
      ("data", po::value<std::string>()->required(), "routing record: pairs JSONL, NPY ids or loads JSON")
      ("output,o", po::value<std::string>()->required(), "scenario file to write")
      ("format", po::value<std::string>()->default_value("auto"), "auto, pairs, npy or loads")
      ("top-k", po::value<int>()->default_value(8), "k of the model (loads only; a trace says)")
      ("seed", po::value<std::uint64_t>()->default_value(1), "seed of the fit and of the stream's structure")
      ("samples", po::value<int>()->default_value(8), "samples of the data's size per comparison")
      ("max-evaluations", po::value<int>()->default_value(30), "search budget (per-token traces)")
      ("name", po::value<std::string>(), "scenario name (default: the output file's stem)")
      ("nodes", po::value<int>(&lay.nodes)->default_value(0), "cluster nodes (0: experts / 64)")
      ("devices-per-node", po::value<int>(&lay.devices_per_node)->default_value(8), "devices per node")
      ("sequences", po::value<int>(&lay.sequences)->default_value(16), "sequences per step")
      ("seq-len", po::value<int>(&lay.seq_len)->default_value(256), "tokens per sequence")
      ("steps", po::value<int>(&lay.steps)->default_value(20), "steps to run")
      ("quiet", "no search progress");
  po::positional_options_description positional;
  positional.add("data", 1);
  po::variables_map vm;
  if (!parse_options("fit", args, options, positional, vm)) return 0;
  // The scenario's own limits (docs/formats.md), so the written scenario loads.
  integer_option<int>(vm, "top-k", 1);
  integer_option<int>(vm, "samples", 2);
  integer_option<int>(vm, "max-evaluations", 4);
  integer_option<int>(vm, "nodes", 0, 4096);
  integer_option<int>(vm, "devices-per-node", 1, 4096);
  integer_option<int>(vm, "sequences", 1, 1 << 22);
  integer_option<int>(vm, "seq-len", 1, 1 << 22);
  integer_option<int>(vm, "steps", 1, 10'000'000);
  const std::string path = vm["data"].as<std::string>(), out = vm["output"].as<std::string>();
  FitOptions o;
  o.seed = vm["seed"].as<std::uint64_t>();
  o.samples = vm["samples"].as<int>();
  o.max_evaluations = vm["max-evaluations"].as<int>();
  o.top_k = vm["top-k"].as<int>();
  if (!vm.count("quiet")) o.log = [](const std::string& line) { fmt::print(stderr, "{}\n", line); };
  const RoutingData d = read_routing_data(path, vm["format"].as<std::string>());
  const FitResult r = d.trace ? fit_trace(*d.trace, o) : fit_loads(*d.loads, path, o);
  const std::string name = vm.count("name") ? vm["name"].as<std::string>() : std::filesystem::path(out).stem().string();
  std::string command = "moesim fit";
  for (const auto& a : args) command += " " + a;
  write_file_atomically(out, scenario_text(r, name, std::filesystem::path(path).filename().string(), lay, !d.trace,
                                           command));
  fmt::print("fitted {} to {} ({} layers, {} experts, top-{}); stream measured on {} samples of {} tokens{}\n", out,
             path, r.model.layers(), r.model.experts, r.model.top_k, d.trace ? o.samples : 1, r.sample_tokens,
             d.trace ? fmt::format(", {} search evaluations", r.evaluations) : ", popularity in expectation");
  print_fit(r);
  return 0;
}

}  // namespace moesim::cli
