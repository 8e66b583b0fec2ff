#include "fixtures.hpp"

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

namespace moesim::testing {

std::string tiny_scenario_text(const std::string& extra) {
  auto base = nlohmann::ordered_json::parse(R"({
    "name": "tiny", "seed": 7, "steps": 6,
    "model": {"experts": 8, "top_k": 2, "hidden": 8, "score": "softmax"},
    "batch": {"sequences": 4, "seq_len": 16},
    "cluster": {"nodes": 1, "devices_per_node": 2},
    "stream": {"domains": 4},
    "strategies": [{"name": "plain"}]
  })");
  base.merge_patch(nlohmann::ordered_json::parse(extra));
  return base.dump(1);
}

Scenario tiny_scenario(const std::string& extra) { return parse_scenario(tiny_scenario_text(extra), "tiny.json"); }

TempDir::TempDir() {
  static std::atomic<int> counter{0};
  path_ = std::filesystem::temp_directory_path() /
          ("moesim-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  std::filesystem::remove_all(path_);
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

CommandResult run_moesim(const std::string& args) {
  TempDir dir;
  const std::string out = dir.file("out"), err = dir.file("err");
  const std::string cmd = std::string(MOESIM_BINARY) + " " + args + " >" + out + " 2>" + err + " </dev/null";
  // fork + wait4 rather than std::system: wait4 reports this command's own
  // peak memory (the shell's and the moesim it waited for).
  const pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  rusage usage{};
  if (pid < 0 || wait4(pid, &status, 0, &usage) != pid) throw std::runtime_error("cannot run " + cmd);
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return {code, read_text(out), read_text(err), usage.ru_maxrss};
}

void check_same_timing(const StepTiming& a, const StepTiming& b) {
  CHECK(a.step_time == b.step_time);
  CHECK(a.layer_time == b.layer_time);
  CHECK(a.busy == b.busy);
  CHECK(a.dispatch == b.dispatch);
  CHECK(a.combine == b.combine);
  CHECK(a.compute == b.compute);
  CHECK(a.dense == b.dense);
  CHECK(a.idle_fraction == b.idle_fraction);
  CHECK(a.bytes_dispatch_intra == b.bytes_dispatch_intra);
  CHECK(a.bytes_dispatch_inter == b.bytes_dispatch_inter);
  CHECK(a.bytes_combine_intra == b.bytes_combine_intra);
  CHECK(a.bytes_combine_inter == b.bytes_combine_inter);
  CHECK(a.bytes_sent == b.bytes_sent);
  CHECK(a.bytes_received == b.bytes_received);
  CHECK(a.critical_device == b.critical_device);
  CHECK(a.events == b.events);
  bool same = a.timeline.size() == b.timeline.size();
  for (std::size_t c = 0; same && c < a.timeline.size(); ++c) {
    const CellTimes &x = a.timeline[c], &y = b.timeline[c];
    same = x.dense_start == y.dense_start && x.dense_end == y.dense_end && x.expert_ready == y.expert_ready &&
           x.expert_start == y.expert_start && x.expert_end == y.expert_end && x.layer_end == y.layer_end;
  }
  CHECK(same);
}

}  // namespace moesim::testing
