#pragma once
// Helpers shared by the tests: small scenarios from inline JSON, running the
// moesim binary, temporary directories.
#include <filesystem>
#include <string>

#include <omp.h>

#include "moesim/cluster.hpp"
#include "moesim/scenario.hpp"

namespace moesim::testing {

// A small valid scenario (E=8, k=2, 4 sequences × 16 tokens, 2 devices);
// `extra` is JSON object text merged over it (top-level keys replace).
std::string tiny_scenario_text(const std::string& extra = "{}");
Scenario tiny_scenario(const std::string& extra = "{}");

// A fresh empty directory under the system temp dir, removed at destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// OpenMP's thread count for a scope, restored on leaving it (thrown or not):
// for tests that compare results across thread counts.
class ThreadCount {
 public:
  explicit ThreadCount(int threads) { omp_set_num_threads(threads); }
  ~ThreadCount() { omp_set_num_threads(before_); }
  ThreadCount(const ThreadCount&) = delete;
  ThreadCount& operator=(const ThreadCount&) = delete;

 private:
  int before_ = omp_get_max_threads();  // initialised before the constructor's body sets the new count
};

// Every output of two timings of one step, bit for bit (Catch CHECKs).
void check_same_timing(const StepTiming& a, const StepTiming& b);

void write_text(const std::string& path, const std::string& text);
std::string read_text(const std::string& path);

struct CommandResult {
  int exit_code;
  std::string out, err;
  long peak_rss_kb;  // the command's peak resident set (getrusage ru_maxrss)
};
// Runs the built moesim binary with `args` (shell-quoted by the caller).
CommandResult run_moesim(const std::string& args);

}  // namespace moesim::testing
