#include "fixtures.hpp"

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

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

}  // namespace moesim::testing
