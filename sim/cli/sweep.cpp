// moesim sweep SCENARIO --vary PATH=v1,v2,... [--vary ...] [--shard I/N] [-o DIR] ...
// Runs the cartesian product of the varied values (the first --vary varies
// slowest). Configuration i runs in shard i mod N, so a Slurm array or a plain
// loop can split a sweep; finished configurations are skipped, so an
// interrupted sweep resumes (re-running configurations whose scenario changed);
// configurations run in parallel across cores.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string_view>
#include <thread>

#include "commands.hpp"
#include "moesim/atomic_file.hpp"
#include "moesim/error.hpp"
#include "moesim/input.hpp"
#include "moesim/result.hpp"
#include "moesim/simulation.hpp"
#include "options.hpp"
#include "scenario/memory_estimate.hpp"

namespace moesim::cli {

namespace {

struct Variable {
  std::string path;
  std::vector<std::string> values;  // as written: JSON if they parse, else strings
};

struct Configuration {
  int index = 0;
  std::string id;                         // file-name-safe: 003-cf=1.25
  std::vector<std::string> assignments;   // "PATH=VALUE" overrides
  std::vector<std::string> values;        // one per variable
  Scenario scenario;
};

// Splits "v1,v2,[1,2],{"a":3}" on commas outside brackets, braces and quotes.
std::vector<std::string> split_values(const std::string& text) {
  std::vector<std::string> out(1);
  int depth = 0;
  bool quoted = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '"' && (i == 0 || text[i - 1] != '\\')) quoted = !quoted;
    if (!quoted && (c == '[' || c == '{')) ++depth;
    if (!quoted && (c == ']' || c == '}')) --depth;
    if (c == ',' && depth == 0 && !quoted) out.emplace_back();
    else out.back() += c;
  }
  return out;
}

Variable parse_vary(const std::string& arg) {
  const auto eq = arg.find('=');
  if (eq == std::string::npos || eq == 0 || arg[0] != '/')
    throw InputError("--vary " + arg, "", "expected PATH=v1,v2,... with a JSON pointer, e.g. --vary /strategies/0/dropper/cf=1.0,1.25");
  Variable v{arg.substr(0, eq), split_values(arg.substr(eq + 1))};
  for (const auto& value : v.values)
    if (value.empty()) throw InputError("--vary " + arg, "", "empty value in the list (expected v1,v2,...)");
  return v;
}

// Two variables on one path would silently override each other and give
// configurations whose id lies about their values.
void check_distinct(const std::vector<Variable>& vars) {
  for (std::size_t a = 0; a < vars.size(); ++a)
    for (std::size_t b = a + 1; b < vars.size(); ++b)
      if (vars[a].path == vars[b].path)
        throw InputError("--vary " + vars[b].path, "", "this path is already varied; give all its values in one --vary");
}

// Strict I/N: digits only (no sign, no spaces), so a typo cannot pick a shard.
std::pair<int, int> parse_shard(const std::string& arg) {
  const auto slash = arg.find('/');
  auto number = [](std::string_view text, int& out) {
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return !text.empty() && std::isdigit(static_cast<unsigned char>(text[0])) && ec == std::errc() &&
           end == text.data() + text.size();
  };
  int i = -1, n = 0;
  if (slash == std::string::npos || !number(std::string_view(arg).substr(0, slash), i) ||
      !number(std::string_view(arg).substr(slash + 1), n) || n < 1 || i >= n)
    throw InputError("--shard " + arg, "", "expected I/N with 0 ≤ I < N, e.g. --shard 0/4");
  return {i, n};
}

std::string safe(const std::string& text) {
  std::string out;
  for (char c : text) out += std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' ? c : '_';
  return out.substr(0, 40);
}

std::string short_name(const std::string& path) { return safe(path.substr(path.find_last_of('/') + 1)); }

nlohmann::ordered_json as_json(const std::string& value) {
  // Bounded like every JSON input (the values were checked as --set values already).
  return nlohmann::ordered_json::accept(value) ? parse_ordered_json_bounded(value, "--vary") : nlohmann::ordered_json(value);
}

std::vector<Configuration> configurations(const std::string& file, const std::vector<Variable>& vars,
                                          const std::vector<std::string>& sets, const std::vector<std::string>& only) {
  std::size_t total = 1;
  for (const auto& v : vars) {
    total *= v.values.size();
    if (total > 100000) throw InputError("--vary", "", "the sweep has more than 100000 configurations");
  }
  const int width = std::max<int>(3, int(std::to_string(total - 1).size()));
  std::vector<Configuration> out(total);
  for (std::size_t i = 0; i < total; ++i) {
    Configuration& c = out[i];
    c.index = int(i);
    c.id = fmt::format("{:0{}}", i, width);
    c.assignments = sets;
    std::size_t rest = i;
    std::vector<std::size_t> digits(vars.size());
    for (std::size_t v = vars.size(); v-- > 0;) {  // mixed radix, the first variable slowest
      digits[v] = rest % vars[v].values.size();
      rest /= vars[v].values.size();
    }
    for (std::size_t v = 0; v < vars.size(); ++v) {
      const std::string& value = vars[v].values[digits[v]];
      c.values.push_back(value);
      c.assignments.push_back(vars[v].path + "=" + value);
      c.id += fmt::format("-{}={}", short_name(vars[v].path), safe(value));
    }
    try {  // every configuration is checked before any runs
      c.scenario = load_scenario(file, c.assignments);
      select_strategies(c.scenario, only);
    } catch (const InputError& e) {
      // Name the --vary values that made this configuration, so the bad one is easy to spot.
      std::vector<std::string> given(c.assignments.end() - std::ptrdiff_t(vars.size()), c.assignments.end());
      throw InputError(e.file(), e.where(),
                       fmt::format("{} (sweep configuration {}: --vary {})", e.message(), c.id,
                                   fmt::join(given, ", --vary ")));
    }
  }
  return out;
}

std::string result_path(const std::string& sweep_dir, const Configuration& c, const StrategySpec& st) {
  return fmt::format("{}/{}/{}.json", sweep_dir, c.id, st.name);
}

enum class Saved { complete, missing, stale };

// Whether every strategy of a configuration has a readable result made from
// this very scenario (a --set or file edit since the last run makes it stale).
Saved saved_state(const std::string& sweep_dir, const Configuration& c) {
  for (const auto& st : c.scenario.strategies) {
    try {
      if (read_result_summary(result_path(sweep_dir, c, st)).configuration != configuration_text(c.scenario, st))
        return Saved::stale;
    } catch (const InputError&) {
      return Saved::missing;
    }
  }
  return Saved::complete;
}

std::string index_text(const std::string& name, const std::vector<Variable>& vars,
                       const std::vector<Configuration>& configs) {
  nlohmann::ordered_json doc;
  doc["schema"] = "moesim.sweep/1";
  doc["scenario"] = name;
  doc["vary"] = nlohmann::ordered_json::array();
  for (const auto& v : vars) {
    nlohmann::ordered_json values = nlohmann::ordered_json::array();
    for (const auto& value : v.values) values.push_back(as_json(value));
    doc["vary"].push_back({{"path", v.path}, {"values", values}});
  }
  doc["runs"] = nlohmann::ordered_json::array();
  for (const auto& c : configs) {
    nlohmann::ordered_json run{{"index", c.index}, {"id", c.id}};
    for (std::size_t v = 0; v < vars.size(); ++v) run["values"][vars[v].path] = as_json(c.values[v]);
    for (const auto& st : c.scenario.strategies) run["results"][st.name] = fmt::format("{}/{}.json", c.id, st.name);
    doc["runs"].push_back(run);
  }
  return doc.dump(1) + "\n";
}

}  // namespace

int sweep_command(const Args& args) {
  po::options_description options("Options");
  options.add_options()
      ("scenario", po::value<std::string>()->required(), "scenario file")
      ("vary", po::value<std::vector<std::string>>()->required(),
       "PATH=v1,v2,...: a JSON pointer (a * matches every array entry) and its values (repeatable; cartesian product)")
      ("shard", po::value<std::string>(), "I/N: run only configurations whose index ≡ I (mod N)")
      ("output,o", po::value<std::string>()->default_value("results"),
       "output directory; results go to DIR/<scenario>/sweep/<configuration>/<strategy>.json")
      ("strategy", po::value<std::vector<std::string>>(), "run only this strategy (repeatable)")
      ("set", po::value<std::vector<std::string>>(), "override a value in every configuration (repeatable)")
      ("threads", po::value<int>(),
       "threads in all (default: all cores): up to this many configurations at once, fewer configurations "
       "share them out; results do not depend on it")
      ("quiet,q", po::bool_switch(), "no progress lines");
  po::positional_options_description positional;
  positional.add("scenario", 1);
  po::variables_map vm;
  if (!parse_options("sweep", args, options, positional, vm)) return 0;
  std::vector<Variable> vars;
  for (const auto& v : strings(vm, "vary")) vars.push_back(parse_vary(v));
  check_distinct(vars);
  const auto [shard, shards] = vm.count("shard") ? parse_shard(vm["shard"].as<std::string>()) : std::pair{0, 1};
  const int threads = thread_count(vm, int(std::max(1u, std::thread::hardware_concurrency())));
  int workers = threads;
  const bool quiet = vm["quiet"].as<bool>();

  std::vector<Configuration> configs =
      configurations(vm["scenario"].as<std::string>(), vars, strings(vm, "set"), strings(vm, "strategy"));
  const std::string sweep_dir = fmt::format("{}/{}/sweep", vm["output"].as<std::string>(), configs[0].scenario.name);
  // Temp files of a sweep killed by SIGKILL (which no handler sees) go now;
  // concurrent shards' temp files belong to running processes and stay.
  const int stale = remove_stale_temps(sweep_dir);
  if (stale > 0 && !quiet) fmt::print(stderr, "removed {} temp files left by an interrupted run\n", stale);
  // Every shard writes the same complete index (atomically), so shards may run concurrently.
  write_file_atomically(sweep_dir + "/index.json", index_text(configs[0].scenario.name, vars, configs));

  std::vector<const Configuration*> todo;
  for (const auto& c : configs) {
    if (c.index % shards != shard) continue;
    const Saved saved = saved_state(sweep_dir, c);
    if (saved == Saved::complete) {
      if (!quiet) fmt::print(stderr, "skipping {}: done\n", c.id);
      continue;
    }
    if (saved == Saved::stale && !quiet)
      fmt::print(stderr, "re-running {}: its saved results are from a different scenario or input file\n", c.id);
    todo.push_back(&c);
  }

  // Workers take configurations in order; each writes its own files, so the
  // output is the same whatever the scheduling.
  workers = std::min<int>(workers, int(todo.size()));
  // Each configuration was checked to fit in memory alone; running several
  // at once must fit too, so fewer run together when they are large.
  std::int64_t largest = 1;
  for (const Configuration* c : todo) largest = std::max(largest, estimate_memory(c->scenario).bytes);
  const int fit = int(std::clamp<std::int64_t>(memory_limit_bytes() / largest, 1, kMaxThreads));
  if (fit < workers && !quiet)
    fmt::print(stderr, "running {} configurations at once (not {}): each may need {:.1f} GiB\n", fit, workers,
               double(largest) / double(1ll << 30));
  workers = std::min(workers, fit);
  std::atomic<std::size_t> next{0}, finished{0};
  std::mutex mutex;
  std::exception_ptr failure;
  auto work = [&] {
    // The cores are shared out among the workers: with fewer configurations
    // left than --threads (one, say, on a Slurm task) each runs multi-threaded.
    omp_set_num_threads(std::max(1, threads / std::max(1, workers)));
    for (std::size_t i; (i = next++) < todo.size();) {
      {
        std::lock_guard lock(mutex);
        if (failure) return;
      }
      const Configuration& c = *todo[i];
      const auto start = std::chrono::steady_clock::now();
      try {
        // A configuration's results are committed together, so a resumed
        // sweep never sees half a configuration.
        OutputBatch batch;
        for (const auto& st : c.scenario.strategies) {
          const Result r =
              simulate_or_fail(c.scenario, st, fmt::format("configuration {}, strategy '{}'", c.id, st.name));
          batch.add(result_path(sweep_dir, c, st), result_text(c.scenario, st, r));
        }
        batch.commit();
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::lock_guard lock(mutex);
        if (!quiet) fmt::print(stderr, "[{}/{}] {} done in {:.1f}s\n", ++finished, todo.size(), c.id, seconds);
      } catch (...) {  // in a worker thread: handed to the main thread, never std::terminate
        std::lock_guard lock(mutex);
        if (!failure) failure = std::current_exception();
        return;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int w = 1; w < workers; ++w) pool.emplace_back(work);
  if (workers > 0) work();
  for (auto& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);
  if (!quiet) fmt::print("wrote {}/index.json ({} configurations, {} run here)\n", sweep_dir, configs.size(), todo.size());
  return 0;
}

}  // namespace moesim::cli
