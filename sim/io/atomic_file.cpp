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

// Temp files being written, for the signal handler: fixed slots so the
// handler stays async-signal-safe (atomics, fixed buffers and unlink only),
// and several threads (sweep workers) can write at once.
struct TempSlot {
  std::atomic<bool> claimed{false};  // owned by a writer
  std::atomic<bool> active{false};   // path is complete and the file may exist
  char path[4096];
};
TempSlot g_slots[64];

void on_signal(int sig) {
  for (TempSlot& slot : g_slots)
    if (slot.active.load()) ::unlink(slot.path);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

// Registers a temp path for cleanup on a signal while it is being written.
class TempRegistration {
 public:
  explicit TempRegistration(const std::string& temp) {
    for (TempSlot& s : g_slots) {
      bool expected = false;
      if (s.claimed.compare_exchange_strong(expected, true)) {
        slot_ = &s;
        break;
      }
    }
    if (!slot_) throw std::runtime_error("internal error: more than 64 output files written at once");
    std::memcpy(slot_->path, temp.c_str(), temp.size() + 1);
    slot_->active.store(true);
  }
  ~TempRegistration() {
    slot_->active.store(false);
    slot_->claimed.store(false);
  }
  TempRegistration(const TempRegistration&) = delete;
  TempRegistration& operator=(const TempRegistration&) = delete;

 private:
  TempSlot* slot_ = nullptr;
};

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
  if (temp.size() >= sizeof g_slots[0].path) throw InputError(path, "", "output path is too long");
  const TempRegistration registration(temp);
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(path, "cannot write the output file", errno);
  std::size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : ENOSPC;
      ::close(fd);
      ::unlink(temp.c_str());
      fail(path, "cannot write the output file", err);
    }
    done += std::size_t(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const int err = errno;
    ::unlink(temp.c_str());
    fail(path, "cannot write the output file", err);
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(temp.c_str());
    fail(path, "cannot move the finished output into place", err);
  }
}

// ---- Streaming: a large output written piece by piece, committed at the end.
struct AtomicFileWriter::Impl {
  std::string path, temp;
  int fd = -1;
  TempRegistration registration;
  Impl(std::string p, std::string t) : path(std::move(p)), temp(std::move(t)), registration(temp) {}
};

AtomicFileWriter::AtomicFileWriter(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  std::error_code ec;
  if (target.has_parent_path()) {
    fs::create_directories(target.parent_path(), ec);
    if (ec) fail(path, "cannot create the output directory " + target.parent_path().string(), ec.value());
  }
  const std::string temp =
      (target.parent_path() / fmt::format(".{}.tmp-{}", target.filename().string(), ::getpid())).string();
  if (temp.size() >= sizeof g_slots[0].path) throw InputError(path, "", "output path is too long");
  impl_ = std::make_unique<Impl>(path, temp);
  impl_->fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (impl_->fd < 0) fail(path, "cannot write the output file", errno);
}

AtomicFileWriter::~AtomicFileWriter() {
  if (!impl_) return;
  if (impl_->fd >= 0) ::close(impl_->fd);
  ::unlink(impl_->temp.c_str());  // not committed: leave nothing behind
}

void AtomicFileWriter::write(std::string_view content) {
  std::size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(impl_->fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail(impl_->path, "cannot write the output file", n < 0 ? errno : ENOSPC);
    done += std::size_t(n);
  }
}

void AtomicFileWriter::commit() {
  const int fd = impl_->fd;
  impl_->fd = -1;
  if (::fsync(fd) != 0 || ::close(fd) != 0) fail(impl_->path, "cannot write the output file", errno);
  if (::rename(impl_->temp.c_str(), impl_->path.c_str()) != 0)
    fail(impl_->path, "cannot move the finished output into place", errno);
  impl_.reset();
}

}  // namespace moesim
