#include "moesim/atomic_file.hpp"

#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <utility>

#include <fmt/format.h>

#include "moesim/error.hpp"

namespace moesim {

namespace {

// Temp files being written, for the signal handler: a lock-free list of
// records that only grows (records are reused, never freed), so the handler
// stays async-signal-safe (atomics, fixed buffers and unlink only) and any
// number of threads can write at once.
struct TempRecord {
  std::atomic<bool> claimed{false};  // owned by a writer
  std::atomic<bool> active{false};   // path is complete and the file may exist
  char path[PATH_MAX];
  TempRecord* next = nullptr;  // set before the record is published
};
std::atomic<TempRecord*> g_records{nullptr};

void on_signal(int sig) {
  for (TempRecord* r = g_records.load(); r; r = r->next)
    if (r->active.load()) ::unlink(r->path);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

TempRecord* register_temp(const std::string& temp) {
  TempRecord* record = nullptr;
  for (TempRecord* r = g_records.load(); r && !record; r = r->next) {
    bool expected = false;
    if (r->claimed.compare_exchange_strong(expected, true)) record = r;
  }
  if (!record) {
    record = new TempRecord;  // lives as long as the process: the handler may read it at any time
    record->claimed.store(true);
    record->next = g_records.load();
    while (!g_records.compare_exchange_weak(record->next, record)) {
    }
  }
  std::memcpy(record->path, temp.c_str(), temp.size() + 1);
  record->active.store(true);
  return record;
}

void release_temp(void* registration) noexcept {
  auto* record = static_cast<TempRecord*>(registration);
  record->active.store(false);
  record->claimed.store(false);
}

[[noreturn]] void fail(const std::string& path, const std::string& what, int err) {
  throw InputError(path, "", what + ": " + std::strerror(err));
}

// This host's name as it appears in temp names (file-name-safe).
const std::string& host_tag() {
  static const std::string tag = [] {
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) != 0) return std::string("host");
    std::string out;
    for (const char* p = name; *p; ++p) out += std::isalnum(static_cast<unsigned char>(*p)) ? *p : '_';
    return out.empty() ? std::string("host") : out;
  }();
  return tag;
}

constexpr char kTempMarker[] = ".tmp-";

void write_all(const std::string& path, const std::string& temp, std::string_view content) {
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(path, "cannot write the output file", errno);
  std::size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : ENOSPC;
      ::close(fd);
      fail(path, "cannot write the output file", err);
    }
    done += std::size_t(n);
  }
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    fail(path, "cannot write the output file", err);
  }
  if (::close(fd) != 0) fail(path, "cannot write the output file", errno);
}

}  // namespace

void install_cleanup_handlers() {
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGALRM, SIGUSR1, SIGUSR2, SIGXCPU, SIGVTALRM, SIGPROF,
                  SIGPOLL, SIGPWR, SIGABRT}) {
    // nohup ignores SIGHUP, and an ignored SIGPIPE turns into EPIPE, which is
    // reported: both are kept. Other ignored signals are taken over (a shell
    // ignores SIGINT in background jobs, and `kill -INT` must still clean up).
    struct sigaction old {};
    if ((sig == SIGHUP || sig == SIGPIPE) && ::sigaction(sig, nullptr, &old) == 0 && old.sa_handler == SIG_IGN)
      continue;
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    ::sigaction(sig, &sa, nullptr);
  }
  std::signal(SIGXFSZ, SIG_IGN);
}

OutputBatch::~OutputBatch() { discard(); }

void OutputBatch::discard() noexcept {
  for (Staged& s : staged_) {
    if (s.fd >= 0) ::close(s.fd);
    ::unlink(s.temp.c_str());
    release_temp(s.registration);
  }
  staged_.clear();
}

std::string OutputBatch::stage(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  std::error_code ec;
  if (target.has_parent_path()) {
    fs::create_directories(target.parent_path(), ec);
    if (ec) fail(path, "cannot create the output directory " + target.parent_path().string(), ec.value());
  }
  const std::string temp = (target.parent_path() / fmt::format(".{}{}{}-{}", target.filename().string(), kTempMarker,
                                                                host_tag(), ::getpid()))
                               .string();
  if (temp.size() >= PATH_MAX) throw InputError(path, "", "output path is too long");
  return temp;
}

void OutputBatch::add(const std::string& path, std::string_view content) {
  const std::string temp = stage(path);
  staged_.push_back({path, temp, register_temp(temp)});
  try {
    write_all(path, temp, content);
  } catch (...) {
    ::unlink(temp.c_str());
    release_temp(staged_.back().registration);
    staged_.pop_back();
    throw;
  }
}

std::size_t OutputBatch::begin(const std::string& path) {
  const std::string temp = stage(path);
  staged_.push_back({path, temp, register_temp(temp)});
  staged_.back().fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (staged_.back().fd < 0) {
    const int err = errno;
    release_temp(staged_.back().registration);
    staged_.pop_back();
    fail(path, "cannot write the output file", err);
  }
  return staged_.size() - 1;
}

void OutputBatch::append(std::size_t handle, std::string_view content) {
  const Staged& s = staged_.at(handle);
  std::size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(s.fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail(s.path, "cannot write the output file", n < 0 ? errno : ENOSPC);
    done += std::size_t(n);
  }
}

std::vector<std::string> OutputBatch::commit() {
  for (Staged& s : staged_)  // finish the files written piece by piece
    if (s.fd >= 0) {
      const int fd = std::exchange(s.fd, -1);
      if (::fsync(fd) != 0 || ::close(fd) != 0) {
        const int err = errno;
        const std::string path = s.path;
        discard();
        fail(path, "cannot write the output file", err);
      }
    }
  std::vector<std::string> done;
  for (const Staged& s : staged_) {
    if (::rename(s.temp.c_str(), s.path.c_str()) != 0) {
      const int err = errno;
      for (const std::string& p : done) ::unlink(p.c_str());  // all of the run or none of it
      const std::string path = s.path;
      discard();
      fail(path, "cannot move the finished output into place", err);
    }
    done.push_back(s.path);
  }
  for (Staged& s : staged_) release_temp(s.registration);
  staged_.clear();
  return done;
}

void write_file_atomically(const std::string& path, std::string_view content) {
  OutputBatch batch;
  batch.add(path, content);
  batch.commit();
}

int remove_stale_temps(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  int removed = 0;
  const std::string ours = std::string(kTempMarker) + host_tag() + "-";
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const auto at = name.rfind(ours);
    if (name.empty() || name[0] != '.' || at == std::string::npos) continue;
    const std::string pid_text = name.substr(at + ours.size());
    if (pid_text.empty() || pid_text.find_first_not_of("0123456789") != std::string::npos || pid_text.size() > 9)
      continue;
    const pid_t pid = pid_t(std::stol(pid_text));
    if (pid != ::getpid() && ::kill(pid, 0) != 0 && errno == ESRCH && fs::remove(it->path(), ec)) ++removed;
  }
  return removed;
}

}  // namespace moesim
