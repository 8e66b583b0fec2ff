// moesim: command dispatch and the exit-code contract (0 ok, 2 bad input or
// an output that cannot be written, 1 internal error).
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <system_error>

#include "cli/commands.hpp"
#include "moesim/atomic_file.hpp"
#include "moesim/error.hpp"
#include "moesim/result.hpp"

namespace {

// One line on stderr without stdio or exceptions: reporting an error must
// not fail (an unwritable stderr once aborted the run with SIGABRT).
void report(const std::string& kind, const std::string& text) noexcept {
  try {
    const std::string line = "moesim: " + kind + ": " + moesim::one_line(text, 8000) + "\n";
    for (std::size_t done = 0; done < line.size();) {
      const ssize_t n = ::write(STDERR_FILENO, line.data() + done, line.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      done += std::size_t(n);
    }
  } catch (...) {
  }
}

// A standard stream that failed: the environment's fault, reported as an
// input error (exit 2), never as an internal error.
int stream_failure(const std::string& reason) {
  report("error", fmt::format("<{}>: cannot write: {}", std::ferror(stdout) ? "stdout" : "stderr", reason));
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace moesim;
  std::vector<std::string> args(argv + 1, argv + argc);
  int code = 0;
  try {
    install_cleanup_handlers();
    if (args.empty()) {
      cli::help_command({});
      code = 2;
    } else if (args[0] == "--version" || args[0] == "-V") {
      fmt::print("moesim {}\n", kVersion);
    } else if (args[0] == "--help" || args[0] == "-h") {
      code = cli::help_command({});
    } else {
      const cli::Command* command = cli::find_command(args[0]);
      if (!command) throw InputError("moesim", "", fmt::format("unknown command '{}'; try 'moesim help'", args[0]));
      code = command->run({args.begin() + 1, args.end()});
    }
  } catch (const InputError& e) {
    report("error", e.what());
    return 2;
  } catch (const std::system_error& e) {
    // fmt::print throws this when a write to stdout or stderr fails (a full
    // disk, a closed pipe, /dev/full).
    if (std::ferror(stdout) || std::ferror(stderr)) return stream_failure(e.code().message());
    report("internal error", e.what());
    return 1;
  } catch (const std::exception& e) {
    report("internal error", e.what());
    return 1;
  }
  // Buffered output fails only when flushed: check before claiming success.
  errno = 0;
  if (std::fflush(stdout) != 0 || std::ferror(stdout) || std::ferror(stderr))
    return stream_failure(errno ? std::strerror(errno) : "write error");
  return code;
}
