// Issue #17's output and signal guarantees, end to end: a failed or killed
// run leaves no result and no temp file, standard-stream failures exit 2, a
// resumed sweep notices changed inputs and removes temp files SIGKILL left.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <thread>

#include "../testing/fixtures.hpp"
#include "moesim/atomic_file.hpp"
#include "moesim/trace_io.hpp"

using namespace moesim;
using namespace moesim::testing;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> files_under(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_regular_file()) out.push_back(it->path().filename().string());
  return out;
}

// Starts moesim with `args` (no shell), stdout/stderr to files in `dir`.
pid_t spawn(const std::vector<std::string>& args, const TempDir& dir, rlim_t fsize_limit = RLIM_INFINITY) {
  const pid_t pid = fork();
  if (pid == 0) {
    const rlimit core{0, 0};
    setrlimit(RLIMIT_CORE, &core);
    if (fsize_limit != RLIM_INFINITY) {
      const rlimit fsize{fsize_limit, fsize_limit};
      setrlimit(RLIMIT_FSIZE, &fsize);
    }
    if (!freopen(dir.file("stdout").c_str(), "w", stdout) || !freopen(dir.file("stderr").c_str(), "w", stderr)) _exit(127);
    std::vector<char*> argv{const_cast<char*>(MOESIM_BINARY)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(MOESIM_BINARY, argv.data());
    _exit(127);
  }
  return pid;
}

int wait_status(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

// Exit code of a shell command line (for redirections to /dev/full).
int shell(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

TEST_CASE("a run whose later strategy fails leaves no result of that run", "[cli][reliability]") {
  TempDir dir;
  const std::string sc = dir.file("s.json");
  // The second strategy's huge alpha makes plain SGD diverge after the first strategy finished.
  write_text(sc, tiny_scenario_text(R"({"steps": 40, "model": {"lr": 25},
      "strategies": [{"name": "first"}, {"name": "second", "balancers": [{"type": "aux_loss", "alpha": 100000}]}]})"));
  const auto r = run_moesim("run " + sc + " -o " + dir.file("out"));
  INFO(r.err);
  CHECK(r.exit_code == 2);
  // The divergence names the loss weight at fault, not /model/lr.
  CHECK(r.err.find("/strategies/1/balancers/0/alpha: strategy 'second': the router diverged") != std::string::npos);
  CHECK(files_under(dir.file("out")).empty());
}

TEST_CASE("standard-stream write failures exit 2 with one line", "[cli][reliability]") {
  TempDir dir;
  const std::string bin = MOESIM_BINARY, err = dir.file("err");
  CHECK(shell(bin + " list >/dev/full 2>" + err) == 2);
  CHECK(read_text(err).find("moesim: error: <stdout>: cannot write: No space left on device") == 0);
  CHECK(shell(bin + " --version >/dev/full 2>" + err) == 2);
  const std::string loads = dir.file("loads.json");
  write_text(loads, "[[1, 2, 3, 4]]");
  CHECK(shell(bin + " place --loads " + loads + " --replicas 4 --groups 1 --nodes 1 --devices 1 >/dev/full 2>" + err) == 2);
  const std::string place_err = read_text(err);
  CHECK(std::count(place_err.begin(), place_err.end(), '\n') == 1);
  // An unwritable stderr: the error cannot be shown, but the exit code is still 2 (once SIGABRT).
  CHECK(shell(bin + " run /nonexistent.json 2>/dev/full") == 2);
  CHECK(shell(bin + " validate /nonexistent.json 2>/dev/full") == 2);
}

TEST_CASE("every catchable terminating signal removes the run's temp files", "[cli][reliability][signals]") {
  for (int sig : {SIGHUP, SIGQUIT, SIGPIPE, SIGALRM, SIGUSR1, SIGTERM}) {
    TempDir dir;
    const std::string sc = dir.file("s.json");
    // The first strategy's result is staged (a hidden temp file) while the second runs.
    write_text(sc, tiny_scenario_text(R"({"steps": 30000, "mode": "inference",
        "record": {"per_step_loads": false, "every": 1000}, "stream": {"domains": null, "source": "static"},
        "strategies": [{"name": "a"}, {"name": "b"}]})"));
    const pid_t pid = spawn({"run", sc, "-o", dir.file("out"), "--quiet", "--threads", "1"}, dir);
    bool staged = false;
    for (int i = 0; i < 600 && !staged; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      staged = !files_under(dir.file("out")).empty();
    }
    INFO("signal " << sig);
    CHECK(staged);
    kill(pid, sig);
    const int status = wait_status(pid);
    CHECK(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == sig);
    CHECK(files_under(dir.file("out")).empty());
  }
}

TEST_CASE("a file-size limit fails the write (EFBIG) instead of killing the run", "[cli][reliability][signals]") {
  TempDir dir;
  const std::string sc = dir.file("s.json");
  write_text(sc, tiny_scenario_text());
  const pid_t pid = spawn({"run", sc, "-o", dir.file("out")}, dir, 1000);
  const int status = wait_status(pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 2);
  CHECK(read_text(dir.file("stderr")).find("cannot write the output file: File too large") != std::string::npos);
  CHECK(files_under(dir.file("out")).empty());
}

TEST_CASE("output batches hold any number of temp files at once", "[io][reliability]") {
  TempDir dir;
  OutputBatch batch;
  for (int i = 0; i < 200; ++i) batch.add(dir.file("r" + std::to_string(i) + ".json"), "x");  // once: at most 64
  CHECK(files_under(dir.path()).size() == 200);
  CHECK(batch.commit().size() == 200);
  CHECK(read_text(dir.file("r199.json")) == "x");
  {
    OutputBatch dropped;
    dropped.add(dir.file("never.json"), "y");
  }  // destroyed uncommitted: the run failed
  CHECK_FALSE(fs::exists(dir.file("never.json")));
  CHECK(files_under(dir.path()).size() == 200);
}

TEST_CASE("a resumed sweep re-runs configurations whose input file changed", "[cli][sweep][reliability]") {
  TempDir dir;
  const std::string trace = dir.file("logits.npy"), sc = dir.file("s.json");
  std::vector<float> logits(6 * 64 * 8);
  for (std::size_t i = 0; i < logits.size(); ++i) logits[i] = float(i % 13) * 0.1f;
  write_npy_f32(trace, 6 * 64, 8, logits);
  write_text(sc, tiny_scenario_text(R"({"mode": "inference", "stream": {"domains": null, "source": "trace", "path": "logits.npy"}})"));
  const std::string sweep = "sweep " + sc + " --vary /seed=3 -o " + dir.file("out");
  auto first = run_moesim(sweep);
  INFO(first.err);
  REQUIRE(first.exit_code == 0);
  const std::string result = dir.file("out") + "/tiny/sweep/000-seed=3/plain.json";
  INFO(read_text(result).substr(0, 2000));
  CHECK(read_text(result).find("\"inputs\"") != std::string::npos);
  CHECK(read_text(result).find("\"size\": " + std::to_string(fs::file_size(trace))) != std::string::npos);
  CHECK(run_moesim(sweep).err.find("skipping") != std::string::npos);
  // The trace is regenerated at the same path with other values.
  logits[5] = 3.0f;
  write_npy_f32(trace, 6 * 64, 8, logits);
  const auto again = run_moesim(sweep);
  CHECK(again.err.find("re-running") != std::string::npos);
}

TEST_CASE("a resumed sweep removes temp files a killed run left", "[cli][sweep][reliability]") {
  TempDir dir;
  const std::string sc = dir.file("s.json");
  write_text(sc, tiny_scenario_text());
  // A process that has exited: its pid no longer runs.
  const pid_t dead = fork();
  if (dead == 0) _exit(0);
  wait_status(dead);
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  std::string tag;
  for (const char* p = host; *p; ++p) tag += std::isalnum(static_cast<unsigned char>(*p)) ? *p : '_';
  const fs::path config = fs::path(dir.file("out")) / "tiny" / "sweep" / "000-steps=3";
  fs::create_directories(config);
  const fs::path stale = config / (".plain.json.tmp-" + tag + "-" + std::to_string(dead));
  const fs::path live = config / (".plain.json.tmp-" + tag + "-" + std::to_string(getpid()));  // a running shard's
  write_text(stale.string(), "partial");
  write_text(live.string(), "partial");
  const auto r = run_moesim("sweep " + sc + " --vary /steps=3 -o " + dir.file("out"));
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK_FALSE(fs::exists(stale));
  CHECK(fs::exists(live));
  CHECK(r.err.find("removed 1 temp files left by an interrupted run") != std::string::npos);
}
