// moesim compare RESULT.json... [--metrics a,b] [--json | --csv | --markdown] [--per-seed] [--mixed]
// Results that differ only in their seed form one row: the mean over seeds
// with a Student-t 95% interval. Results of different scenarios are refused
// (naming the first differing field) unless --mixed; a sweep's varied values
// are the one allowed difference, and become columns. Serving results
// (mode: serve) default to the serving metrics.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <regex>

#include "commands.hpp"
#include "moesim/error.hpp"
#include "moesim/input.hpp"
#include "moesim/metrics.hpp"
#include "moesim/result.hpp"
#include "options.hpp"
#include "stats.hpp"

namespace moesim::cli {

namespace {

using Json = nlohmann::ordered_json;
namespace fs = std::filesystem;

const std::vector<std::string> kDefaultMetrics{"maxvio_batch", "maxvio_global", "entropy_norm", "max_over_mean",
                                               "dead_experts", "drop_rate", "quality_loss"};
const std::vector<std::string> kServeMetrics{"ttft_mean", "ttft_p99", "tpot_mean", "tpot_p99",
                                             "e2e_p99",   "throughput", "goodput", "rank_imbalance"};

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

// A half-width in the mean's notation (fixed decimals, unless the mean needs an exponent).
std::string interval_cell(const Interval& i) {
  const std::string mean = cell(i.mean);
  if (mean.find('e') == std::string::npos && i.half_width >= 5e-5 && i.half_width < 1e5)
    return fmt::format("{:.4f}", i.half_width);
  return fmt::format("{:.3e}", i.half_width);
}

// Every leaf of a JSON document by its pointer.
void flatten(const Json& j, const std::string& prefix, std::map<std::string, Json>& out) {
  if (j.is_object() && !j.empty()) {
    for (const auto& [k, v] : j.items()) flatten(v, prefix + "/" + k, out);
  } else if (j.is_array() && !j.empty()) {
    for (std::size_t i = 0; i < j.size(); ++i) flatten(j[i], prefix + "/" + std::to_string(i), out);
  } else {
    out[prefix] = j;
  }
}

// A --vary pattern (segments, '*' matches any) against a concrete pointer.
bool matches(const std::string& pattern, const std::string& pointer) {
  auto segments = [](const std::string& p) {
    std::vector<std::string> out;
    for (std::size_t i = 1, j; i <= p.size(); i = j + 1) {
      j = std::min(p.find('/', i), p.size());
      out.push_back(p.substr(i, j - i));
    }
    return out;
  };
  const auto a = segments(pattern), b = segments(pointer);
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i] != "*" && a[i] != b[i]) return false;
  return true;
}

// A sweep index beside a result (DIR/sweep/<id>/<strategy>.json + DIR/sweep/index.json).
struct SweepInfo {
  std::vector<std::string> vary;          // varied pointers
  std::map<std::string, Json> values;     // id -> {pointer: value}
};

const SweepInfo* sweep_of(const std::string& result_path, std::map<std::string, SweepInfo>& cache) {
  const fs::path index = fs::path(result_path).parent_path().parent_path() / "index.json";
  const std::string key = index.string();
  if (auto it = cache.find(key); it != cache.end()) return it->second.vary.empty() ? nullptr : &it->second;
  SweepInfo& info = cache[key];
  std::error_code ec;
  if (!fs::is_regular_file(index, ec)) return nullptr;
  Json doc;
  try {  // bounded like every input (input.hpp)
    doc = parse_json_bounded(read_input_file(index.string(), kMaxResultBytes, "sweep index"), index.string());
  } catch (const InputError&) {
    return nullptr;
  }
  // Anything but a readable sweep index just means "not from a sweep".
  if (!doc.is_object() || !doc.contains("schema") || doc["schema"] != "moesim.sweep/1")
    return nullptr;
  for (const auto& v : doc.value("vary", Json::array()))
    if (v.is_object() && v.contains("path") && v["path"].is_string()) info.vary.push_back(v["path"].get<std::string>());
  for (const auto& r : doc.value("runs", Json::array()))
    if (r.is_object() && r.contains("id") && r["id"].is_string())
      info.values[r["id"].get<std::string>()] = r.value("values", Json::object());
  return info.vary.empty() ? nullptr : &info;
}

struct Entry {
  ResultSummary r;
  bool serve = false;  // mode: serve (latencies per request, not loads per step)
  std::uint64_t seed = 0;
  std::map<std::string, Json> scenario, strategy;  // leaves, without /seed and /strategies
  std::string id;                                  // sweep configuration, "" if none
  Json values = Json::object();                    // its varied values, /seed excepted
  std::vector<std::string> vary;                   // the sweep's varied pointers
};

Entry read_entry(const std::string& path, std::map<std::string, SweepInfo>& sweeps) {
  Entry e;
  e.r = read_result_summary(path);
  const Json both = Json::parse(e.r.configuration);
  Json scenario = both[0];
  // A hand-edited echo may hold any type here: read without throwing type errors.
  e.seed = scenario.contains("seed") && scenario["seed"].is_number_unsigned() ? scenario["seed"].get<std::uint64_t>() : 0;
  e.serve = scenario.contains("mode") && scenario["mode"] == "serve";
  scenario.erase("seed");
  scenario.erase("strategies");  // a --strategy run echoes fewer; each result's own strategy is compared below
  flatten(scenario, "", e.scenario);
  flatten(both[1], "", e.strategy);
  if (const SweepInfo* s = sweep_of(path, sweeps)) {
    const std::string id = fs::path(path).parent_path().filename().string();
    if (auto it = s->values.find(id); it != s->values.end()) {
      e.id = id;
      e.vary = s->vary;
      for (const auto& [p, v] : it->second.items())
        if (p != "/seed") e.values[p] = v;
    }
  }
  return e;
}

// Whether a difference at `pointer` (scenario-level, or strategy-level when
// `in_strategy`) is one the entry's sweep made on purpose.
bool varied(const Entry& e, const std::string& pointer, bool in_strategy) {
  static const std::string strategies = "/strategies/";
  for (const auto& v : e.vary) {
    const bool strategy_path = v.rfind(strategies, 0) == 0;
    if (strategy_path != in_strategy) continue;
    // /strategies/<i or *>/dropper/cf varies a strategy's /dropper/cf
    const std::string pattern = in_strategy ? v.substr(std::min(v.find('/', strategies.size()), v.size())) : v;
    if (matches(pattern, pointer)) return true;
  }
  return false;
}

// The leaves where two entries' echoes differ, not counting varied ones, in pointer order.
std::vector<std::string> differences(const Entry& a, const Entry& b, bool in_strategy) {
  const auto& x = in_strategy ? a.strategy : a.scenario;
  const auto& y = in_strategy ? b.strategy : b.scenario;
  auto check = [&](const std::string& p) {
    auto i = x.find(p), j = y.find(p);
    const bool same = i != x.end() && j != y.end() && i->second == j->second;
    return same || (varied(a, p, in_strategy) && varied(b, p, in_strategy));
  };
  std::vector<std::string> out;
  for (const auto& [p, _] : x)
    if (!check(p)) out.push_back(p);
  for (const auto& [p, _] : y)
    if (!x.count(p) && !check(p)) out.push_back(p);
  std::sort(out.begin(), out.end());
  return out;
}

std::string leaf_text(const std::map<std::string, Json>& leaves, const std::string& p) {
  auto it = leaves.find(p);
  return it == leaves.end() ? "absent" : it->second.dump();
}

// Refuses (or with `mixed`, warns about) results of different scenarios, or
// same-named strategies configured differently.
void check_comparable(const std::vector<Entry>& entries, bool mixed) {
  for (std::size_t i = 1; i < entries.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      const Entry &a = entries[j], &b = entries[i];
      const bool same_strategy = a.r.strategy == b.r.strategy;
      for (bool in_strategy : {false, true}) {
        if (in_strategy && !same_strategy) continue;
        auto diff = differences(a, b, in_strategy);
        if (diff.empty()) continue;
        // A serving and a step-based result differ in much; the mode is the difference that matters.
        if (const auto mode = std::find(diff.begin(), diff.end(), "/mode"); mode != diff.end() && a.serve != b.serve)
          std::rotate(diff.begin(), mode, mode + 1);
        const std::string* p = &diff[0];
        const std::string prefix = in_strategy ? "/strategy" : "/scenario";
        const std::string where = prefix + *p;
        std::vector<std::string> more;
        for (std::size_t k = 1; k < diff.size() && k <= 5; ++k) more.push_back(prefix + diff[k]);
        if (diff.size() > 6) more.push_back(fmt::format("and {} more", diff.size() - 6));
        const auto& la = in_strategy ? a.strategy : a.scenario;
        const auto& lb = in_strategy ? b.strategy : b.scenario;
        const std::string what = fmt::format(
            "is {} here but {} in {}: results of different {}{}{}{}", leaf_text(lb, *p), leaf_text(la, *p), a.r.path,
            in_strategy ? "strategy settings" : "scenarios",
            a.serve != b.serve ? ", a serving result (latencies per request) and a step-based one (loads per step)" : "",
            mixed ? "" : " (compare them anyway with --mixed)",
            more.empty() ? "" : fmt::format("; also different: {}", fmt::join(more, ", ")));
        if (!mixed) throw InputError(b.r.path, where, what);
        fmt::print(stderr, "moesim: warning: {}: {}: {}\n", b.r.path, where, what);
        return;  // one warning is enough: the rows are labelled by their differences
      }
    }
  }
}

struct Group {
  std::vector<const Entry*> members;
  std::string label;
};

// Results that differ only in the seed share a group; a seed seen twice is a duplicate.
std::vector<Group> group_entries(const std::vector<Entry>& entries) {
  std::vector<Group> groups;
  std::vector<std::string> keys;
  for (const auto& e : entries) {
    Json key = Json::array();
    for (const auto* leaves : {&e.scenario, &e.strategy}) {
      Json part = Json::object();
      for (const auto& [p, v] : *leaves) part[p] = v;
      key.push_back(part);
    }
    const std::string k = key.dump();
    auto it = std::find(keys.begin(), keys.end(), k);
    if (it == keys.end()) {
      keys.push_back(k);
      groups.push_back({{&e}, ""});
      continue;
    }
    Group& g = groups[std::size_t(it - keys.begin())];
    const auto dup = std::find_if(g.members.begin(), g.members.end(), [&](const Entry* m) { return m->seed == e.seed; });
    if (dup != g.members.end()) {
      fmt::print(stderr, "moesim: warning: {} repeats {} (same configuration and seed {}); counted once\n", e.r.path,
                 (*dup)->r.path, e.seed);
      continue;
    }
    g.members.push_back(&e);
  }
  return groups;
}

// Row names: the strategy; scenario/strategy across scenarios; plus the
// settings that tell apart rows that would otherwise share a name.
void label_groups(std::vector<Group>& groups) {
  const Entry& first = *groups[0].members[0];
  const bool one_scenario = std::all_of(groups.begin(), groups.end(),
                                        [&](const Group& g) { return g.members[0]->r.scenario == first.r.scenario; });
  for (auto& g : groups) {
    const ResultSummary& r = g.members[0]->r;
    g.label = one_scenario ? r.strategy : r.scenario + "/" + r.strategy;
  }
  std::vector<std::string> base;
  for (const auto& g : groups) base.push_back(g.label);
  for (std::size_t i = 0; i < groups.size(); ++i) {
    Group& g = groups[i];
    std::vector<std::string> extra;
    for (std::size_t j = 0; j < groups.size(); ++j) {
      const Group& o = groups[j];
      if (j == i || base[j] != base[i]) continue;
      for (bool in_strategy : {false, true}) {
        const auto& mine = in_strategy ? g.members[0]->strategy : g.members[0]->scenario;
        const auto& theirs = in_strategy ? o.members[0]->strategy : o.members[0]->scenario;
        for (const auto& [p, v] : mine) {
          auto it = theirs.find(p);
          const std::string text = fmt::format("{}={}", p.substr(p.rfind('/') + 1), v.is_string() ? v.get<std::string>() : v.dump());
          if ((it == theirs.end() || it->second != v) && std::find(extra.begin(), extra.end(), text) == extra.end())
            extra.push_back(text);
        }
      }
    }
    if (!extra.empty()) g.label += " " + fmt::format("{}", fmt::join(extra, ","));
  }
}

std::optional<double> value(const Entry& e, const std::string& m) {
  const double* v = e.r.summary.find(m);
  return v ? std::optional<double>(*v) : std::nullopt;
}

// Mean and interval of a metric over a group's seeds (n = 0 when no member has it).
Interval seed_stats(const Group& g, const std::string& m) {
  std::vector<double> values;
  for (const auto* e : g.members)
    if (auto v = value(*e, m)) values.push_back(*v);
  return mean_interval(values);
}

// The group id: the sweep configuration without its index and seed parts.
std::string group_id(const Group& g) {
  const std::string& id = g.members[0]->id;
  if (g.members.size() < 2) return id;
  static const std::regex seed_part("-seed=[0-9]+"), index_part("^[0-9]+-?");
  return std::regex_replace(std::regex_replace(id, seed_part, ""), index_part, "");
}

// The sweep's varied pointers (seed excepted) over every entry, in first-seen order.
std::vector<std::string> varied_columns(const std::vector<Entry>& entries) {
  std::vector<std::string> out;
  for (const auto& e : entries)
    for (const auto& [p, _] : e.values.items())
      if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
  return out;
}

// Machine-readable rows: per result (--per-seed) or per group (mean and ci95 per metric).
Json table_rows(const std::vector<Entry>& entries, const std::vector<Group>& groups,
                const std::vector<std::string>& metrics, bool per_seed) {
  const auto columns = varied_columns(entries);
  Json rows = Json::array();
  auto head = [&](const Entry& e, const std::string& id) {
    Json row;
    row["scenario"] = e.r.scenario;
    row["strategy"] = e.r.strategy;
    row["id"] = id;
    for (const auto& c : columns) row[c] = e.values.contains(c) ? e.values[c] : Json(nullptr);
    return row;
  };
  if (per_seed) {
    for (const auto& g : groups)
      for (const auto* e : g.members) {
        Json row = head(*e, e->id);
        row["seed"] = e->seed;
        row["path"] = e->r.path;
        for (const auto& m : metrics) row[m] = value(*e, m) ? Json(*value(*e, m)) : Json(nullptr);
        rows.push_back(row);
      }
    return rows;
  }
  for (const auto& g : groups) {
    Json row = head(*g.members[0], group_id(g));
    row["n"] = g.members.size();
    row["seeds"] = Json::array();
    for (const auto* e : g.members) row["seeds"].push_back(e->seed);
    for (const auto& m : metrics) {
      const Interval i = seed_stats(g, m);
      row[m] = i.n ? Json(i.mean) : Json(nullptr);
      row[m + "_ci95"] = i.n > 1 ? Json(i.half_width) : Json(nullptr);
    }
    rows.push_back(row);
  }
  return rows;
}

std::string csv_field(const Json& v) {
  if (v.is_null()) return "";
  if (v.is_array()) {
    std::vector<std::string> parts;
    for (const auto& x : v) parts.push_back(csv_field(x));
    return fmt::format("{}", fmt::join(parts, ";"));
  }
  std::string s = v.is_string() ? v.get<std::string>() : v.dump();
  if (s.find_first_of(",\"\n") != std::string::npos) {
    std::string q = "\"";
    for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
  }
  return s;
}

void print_csv(const Json& rows) {
  if (rows.empty()) return;
  std::vector<std::string> header;
  for (const auto& [k, _] : rows[0].items()) header.push_back(csv_field(k));
  fmt::print("{}\n", fmt::join(header, ","));
  for (const auto& row : rows) {
    std::vector<std::string> cells;
    for (const auto& [_, v] : row.items()) cells.push_back(csv_field(v));
    fmt::print("{}\n", fmt::join(cells, ","));
  }
}

// Which group is starred in a metric's column: the best mean, when it differs
// from the rest and (over several seeds) its interval clears the runner-up's.
std::optional<std::size_t> best_group(const std::vector<Interval>& s, bool lower, bool with_intervals) {
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < s.size(); ++i)
    if (s[i].n > 0) order.push_back(i);
  if (order.size() < 2) return std::nullopt;
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return lower ? s[a].mean < s[b].mean : s[a].mean > s[b].mean; });
  const Interval &best = s[order[0]], &next = s[order[1]];
  if (best.mean == next.mean) return std::nullopt;
  if (!with_intervals) return order[0];
  if (best.n < 2 || next.n < 2) return std::nullopt;
  const bool clear = lower ? best.high() < next.low() : best.low() > next.high();
  return clear ? std::optional(order[0]) : std::nullopt;
}

void print_table(const std::vector<Group>& groups, const std::vector<std::string>& metrics, bool markdown) {
  const bool seeds = std::any_of(groups.begin(), groups.end(), [](const Group& g) { return g.members.size() > 1; });
  bool any_best = false;
  std::vector<std::vector<std::string>> rows{{"strategy"}};
  if (seeds) rows[0].push_back("seeds");
  for (const auto& m : metrics) rows[0].push_back(m);
  for (const auto& g : groups) {
    rows.push_back({g.label});
    if (seeds) rows.back().push_back(std::to_string(g.members.size()));
  }
  for (const auto& m : metrics) {
    std::vector<Interval> s;
    for (const auto& g : groups) s.push_back(seed_stats(g, m));
    const auto best = best_group(s, find_metric(m)->lower_is_better, seeds);
    for (std::size_t i = 0; i < groups.size(); ++i) {
      const bool is_best = best == i;
      any_best = any_best || is_best;
      std::string text = s[i].n == 0 ? "-" : cell(s[i].mean);
      if (s[i].half_width > 0) text += " ± " + interval_cell(s[i]);  // none when every seed agrees
      if (markdown) rows[i + 1].push_back(is_best ? "**" + text + "**" : text);
      else rows[i + 1].push_back(text + (is_best ? "*" : (s[i].n ? " " : "")));
    }
  }
  if (markdown) {
    std::string separator = "|---|";  // strategy column left-aligned, numbers right-aligned
    for (std::size_t c = 1; c < rows[0].size(); ++c) separator += "---:|";
    for (std::size_t r = 0; r < rows.size(); ++r) {
      fmt::print("| {} |\n", fmt::join(rows[r], " | "));
      if (r == 0) fmt::print("{}\n", separator);
    }
    return;
  }
  // Widths in characters, not bytes ('±' is two bytes in UTF-8).
  auto length = [](const std::string& s) {
    return std::size_t(std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
  };
  std::vector<std::size_t> width(rows[0].size(), 0);
  for (const auto& row : rows)
    for (std::size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], length(row[c]));
  for (const auto& row : rows) {
    std::string line = row[0] + std::string(width[0] - length(row[0]), ' ');
    for (std::size_t c = 1; c < row.size(); ++c) line += "  " + std::string(width[c] - length(row[c]), ' ') + row[c];
    fmt::print("{}\n", line);
  }
  if (seeds)
    fmt::print("(mean ± 95% confidence half-width over seeds, Student t; * best in column, its interval clear of "
               "the next best)\n");
  else if (any_best)
    fmt::print("(* best in column)\n");
}

}  // namespace

int compare_command(const Args& args) {
  po::options_description options("Options");
  options.add_options()
      ("result", po::value<std::vector<std::string>>()->required(), "result files")
      ("metrics", po::value<std::string>(),
       fmt::format("comma-separated summary metrics to show (see 'moesim list'); default {}; for serving "
                   "results {}", fmt::join(kDefaultMetrics, ", "), fmt::join(kServeMetrics, ", "))
           .c_str())
      ("json", po::bool_switch(), "print the table as JSON (one object per row; metric and metric_ci95)")
      ("csv", po::bool_switch(), "print the table as CSV (same columns as --json)")
      ("markdown", po::bool_switch(), "print the table as Markdown (best per column in bold)")
      ("per-seed", po::bool_switch(), "with --json/--csv: one row per result file instead of per seed group")
      ("mixed", po::bool_switch(), "compare results of different scenarios (warns instead of refusing)");
  po::positional_options_description positional;
  positional.add("result", -1);
  po::variables_map vm;
  if (!parse_options("compare", args, options, positional, vm)) return 0;

  std::vector<std::string> metrics = vm.count("metrics") ? split(vm["metrics"].as<std::string>()) : kDefaultMetrics;
  std::vector<std::string> valid;
  for (const auto& m : metric_catalog()) valid.push_back(m.name);
  for (const auto& m : metrics)
    if (!find_metric(m))
      throw InputError("--metrics", "", fmt::format("unknown metric '{}'; valid values are: {}", m, fmt::join(valid, ", ")));

  std::map<std::string, SweepInfo> sweeps;
  std::vector<Entry> entries;
  for (const auto& path : vm["result"].as<std::vector<std::string>>()) entries.push_back(read_entry(path, sweeps));
  if (!vm.count("metrics") && std::all_of(entries.begin(), entries.end(), [](const Entry& e) { return e.serve; }))
    metrics = kServeMetrics;
  check_comparable(entries, vm["mixed"].as<bool>());
  std::vector<Group> groups = group_entries(entries);
  label_groups(groups);

  if (vm["json"].as<bool>() || vm["csv"].as<bool>()) {
    const Json rows = table_rows(entries, groups, metrics, vm["per-seed"].as<bool>());
    if (vm["json"].as<bool>()) fmt::print("{}\n", rows.dump(2));
    else print_csv(rows);
    return 0;
  }
  print_table(groups, metrics, vm["markdown"].as<bool>());
  return 0;
}

}  // namespace moesim::cli
