// moesim stats DATA [--format F] [--window N] [--seq-len N] [--per-layer]
// Prints the statistics the calibrated stream is fitted to (docs/calibration.md)
// for any routing record: a per-token trace (e.g. a run's record.trace)
// or aggregate per-layer loads.
#include <fmt/format.h>

#include "calibrate/routing_data.hpp"
#include "calibrate/routing_stats.hpp"
#include "commands.hpp"
#include "moesim/error.hpp"
#include "options.hpp"

namespace moesim::cli {

int stats_command(const Args& args) {
  po::options_description options("Options");
  options.add_options()
      ("data", po::value<std::string>()->required(), "routing record: pairs JSONL, NPY ids or loads JSON")
      ("format", po::value<std::string>()->default_value("auto"), "auto, pairs, npy or loads")
      ("window", po::value<int>()->default_value(64), "tokens per batch window (batch imbalance)")
      ("seq-len", po::value<std::int64_t>()->default_value(0), "tokens per sequence (0: the trace is one sequence)")
      ("per-layer", "print every layer's values");
  po::positional_options_description positional;
  positional.add("data", 1);
  po::variables_map vm;
  if (!parse_options("stats", args, options, positional, vm)) return 0;
  const int window = integer_option<int>(vm, "window", 1);
  const std::int64_t seq_len = integer_option<std::int64_t>(vm, "seq-len", 0);
  const std::string path = vm["data"].as<std::string>();
  const RoutingData d = read_routing_data(path, vm["format"].as<std::string>());
  const RoutingStats s = d.trace ? measure(*d.trace, {window, seq_len}) : measure(*d.loads);
  const std::vector<int>& ids = d.trace ? d.trace->layer_ids : d.loads->layer_ids;
  if (d.trace)
    fmt::print("{}: {} tokens, {} layers, {} experts, top-{}\n", path, d.trace->tokens(), d.trace->layers(),
               d.trace->experts, d.trace->top_k);
  else
    fmt::print("{}: aggregate loads, {} layers, {} experts\n", path, d.loads->layers(), d.loads->experts());
  if (vm.count("per-layer")) {
    fmt::print("{:>6} {:>9}", "layer", "max/mean");
    if (s.per_token) fmt::print(" {:>9} {:>9} {:>11}", "batch", "locality", "NMI(l,l+1)");
    fmt::print("\n");
    for (std::size_t l = 0; l < s.max_over_mean.size(); ++l) {
      fmt::print("{:>6} {:>9.3f}", ids[l], s.max_over_mean[l]);
      if (s.per_token) {
        fmt::print(" {:>9.3f} {:>9.3f}", s.batch_imbalance[l], s.locality[l]);
        if (l < s.nmi.size()) fmt::print(" {:>11.3f}", s.nmi[l]);
      }
      fmt::print("\n");
    }
  }
  fmt::print("mean over layers: max/mean {:.3f}", s.mean_max_over_mean());
  if (s.per_token)
    fmt::print(", batch imbalance ({} tokens) {:.3f}, locality {:.3f}, cross-layer NMI {:.3f}", window,
               s.mean_batch_imbalance(), s.mean_locality(), s.mean_nmi());
  fmt::print("\n");
  return 0;
}

}  // namespace moesim::cli
