#include "moesim/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "moesim/error.hpp"

namespace moesim {

namespace {

// The temp file being written, for the signal handler (async-signal-safe: a
// fixed buffer and unlink only).
char g_temp_path[4096];
std::atomic<bool> g_temp_active{false};

void on_signal(int sig) {
  if (g_temp_active.load()) ::unlink(g_temp_path);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

[[noreturn]] void fail(const std::string& path, const std::string& what, int err) {
  throw InputError(path, "", what + ": " + std::strerror(err));
}

}  // namespace

void install_cleanup_handlers() {
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
}

void write_file_atomically(const std::string& path, std::string_view content) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  std::error_code ec;
  if (target.has_parent_path()) {
    fs::create_directories(target.parent_path(), ec);
    if (ec) fail(path, "cannot create the output directory " + target.parent_path().string(), ec.value());
  }
  const std::string temp =
      (target.parent_path() / fmt::format(".{}.tmp-{}", target.filename().string(), ::getpid())).string();
  if (temp.size() >= sizeof g_temp_path) throw InputError(path, "", "output path is too long");
  std::memcpy(g_temp_path, temp.c_str(), temp.size() + 1);
  g_temp_active.store(true);
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    g_temp_active.store(false);
    fail(path, "cannot write the output file", errno);
  }
  std::size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : ENOSPC;
      ::close(fd);
      ::unlink(temp.c_str());
      g_temp_active.store(false);
      fail(path, "cannot write the output file", err);
    }
    done += std::size_t(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const int err = errno;
    ::unlink(temp.c_str());
    g_temp_active.store(false);
    fail(path, "cannot write the output file", err);
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(temp.c_str());
    g_temp_active.store(false);
    fail(path, "cannot move the finished output into place", err);
  }
  g_temp_active.store(false);
}

}  // namespace moesim
