// moesim compare RESULT.json... [--metrics a,b] [--json | --csv]
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "moesim/error.hpp"
#include "moesim/metrics.hpp"
#include "moesim/result.hpp"
#include "options.hpp"

namespace moesim::cli {

namespace {

const std::vector<std::string> kDefaultMetrics{"maxvio_batch", "maxvio_global", "entropy_norm", "max_over_mean",
                                               "dead_experts", "drop_rate", "quality_loss"};

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    const auto comma = s.find(',', start);
    const auto part = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!part.empty()) out.push_back(part);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::string cell(double v) {
  if (v == std::floor(v) && std::abs(v) < 1e15) return fmt::format("{:.0f}", v);
  if (std::abs(v) >= 1e5 || (std::abs(v) < 1e-3 && v != 0)) return fmt::format("{:.3e}", v);
  return fmt::format("{:.4f}", v);
}

}  // namespace

int compare_command(const Args& args) {
  po::options_description options("Options");
  options.add_options()
      ("result", po::value<std::vector<std::string>>()->required(), "result files")
      ("metrics", po::value<std::string>(), "comma-separated summary metrics to show (see 'moesim list')")
      ("json", po::bool_switch(), "print the table as JSON")
      ("csv", po::bool_switch(), "print the table as CSV")
      ("markdown", po::bool_switch(), "print the table as Markdown (best per column in bold)");
  po::positional_options_description positional;
  positional.add("result", -1);
  po::variables_map vm;
  if (!parse_options("compare", args, options, positional, vm)) return 0;

  std::vector<ResultSummary> results;
  for (const auto& path : vm["result"].as<std::vector<std::string>>()) results.push_back(read_result_summary(path));
  std::vector<std::string> metrics = vm.count("metrics") ? split(vm["metrics"].as<std::string>()) : kDefaultMetrics;
  std::vector<std::string> valid;
  for (const auto& m : metric_catalog()) valid.push_back(m.name);
  for (const auto& m : metrics)
    if (!find_metric(m))
      throw InputError("--metrics", "", fmt::format("unknown metric '{}'; valid values are: {}", m, fmt::join(valid, ", ")));

  // Rows are named by strategy; by scenario/strategy when several scenarios
  // are compared; and by their folder (a sweep configuration) when names repeat.
  auto label = [&](const ResultSummary& r) {
    const bool one_scenario = std::all_of(results.begin(), results.end(),
                                          [&](const ResultSummary& o) { return o.scenario == results[0].scenario; });
    const auto same = std::count_if(results.begin(), results.end(), [&](const ResultSummary& o) {
      return o.scenario == r.scenario && o.strategy == r.strategy;
    });
    std::string name = one_scenario ? r.strategy : r.scenario + "/" + r.strategy;
    if (same > 1) name = std::filesystem::path(r.path).parent_path().filename().string() + "/" + name;
    return name;
  };
  auto value = [](const ResultSummary& r, const std::string& m) -> std::optional<double> {
    const double* v = r.summary.find(m);
    return v ? std::optional<double>(*v) : std::nullopt;
  };

  if (vm["json"].as<bool>()) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const auto& r : results) {
      nlohmann::ordered_json row;
      row["scenario"] = r.scenario;
      row["strategy"] = r.strategy;
      row["path"] = r.path;
      for (const auto& m : metrics) {
        auto v = value(r, m);
        row[m] = v ? nlohmann::ordered_json(*v) : nlohmann::ordered_json(nullptr);
      }
      out.push_back(row);
    }
    fmt::print("{}\n", out.dump(2));
    return 0;
  }
  if (vm["csv"].as<bool>()) {
    fmt::print("scenario,strategy,{}\n", fmt::join(metrics, ","));
    for (const auto& r : results) {
      std::vector<std::string> cells;
      for (const auto& m : metrics) cells.push_back(value(r, m) ? fmt::format("{}", *value(r, m)) : "");
      fmt::print("{},{},{}\n", r.scenario, r.strategy, fmt::join(cells, ","));
    }
    return 0;
  }

  // Aligned table; '*' marks the best value per column (by the metric's direction),
  // or bold in Markdown.
  const bool markdown = vm["markdown"].as<bool>();
  bool any_best = false;
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"strategy"});
  for (const auto& m : metrics) rows[0].push_back(m);
  for (const auto& r : results) rows.push_back({label(r)});
  for (const auto& m : metrics) {
    const bool lower = find_metric(m)->lower_is_better;
    std::optional<double> best;
    for (const auto& r : results)
      if (auto v = value(r, m)) best = !best ? *v : (lower ? std::min(*best, *v) : std::max(*best, *v));
    const bool differ = std::any_of(results.begin(), results.end(), [&](const auto& r) { return value(r, m) != best; });
    for (std::size_t i = 0; i < results.size(); ++i) {
      auto v = value(results[i], m);
      const bool is_best = v && differ && results.size() > 1 && *v == *best;
      any_best = any_best || is_best;
      if (markdown) rows[i + 1].push_back(!v ? "-" : is_best ? "**" + cell(*v) + "**" : cell(*v));
      else rows[i + 1].push_back(!v ? "-" : cell(*v) + (is_best ? "*" : " "));
    }
  }
  std::vector<std::size_t> width(rows[0].size(), 0);
  for (const auto& row : rows)
    for (std::size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  if (markdown) {
    std::string separator = "|---|";  // strategy column left-aligned, numbers right-aligned
    for (std::size_t c = 1; c < rows[0].size(); ++c) separator += "---:|";
    for (std::size_t r = 0; r < rows.size(); ++r) {
      fmt::print("| {} |\n", fmt::join(rows[r], " | "));
      if (r == 0) fmt::print("{}\n", separator);
    }
    return 0;
  }
  for (const auto& row : rows) {
    std::string line = fmt::format("{:<{}}", row[0], width[0]);
    for (std::size_t c = 1; c < row.size(); ++c) line += fmt::format("  {:>{}}", row[c], width[c]);
    fmt::print("{}\n", line);
  }
  if (any_best) fmt::print("(* best in column)\n");
  return 0;
}

}  // namespace moesim::cli
