#include "progress.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

namespace moesim::cli {

bool stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

Progress::Progress(bool enabled, std::string label, int total, bool terminal, int every_percent, std::string unit)
    : enabled_(enabled),
      terminal_(terminal),
      label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      every_percent_(every_percent),
      start_(std::chrono::steady_clock::now()),
      last_() {}

void Progress::update(int done) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  // A duration-bound serving run may exceed its expected count: clamp, never show −s or >100%.
  const double eta = done > 0 ? std::max(0.0, elapsed * (total_ - done) / done) : 0.0;
  if (!terminal_) {  // a log: one line each time another every_percent_ is done
    const int percent = total_ > 0 ? std::min(100, int(100.0 * done / total_)) : 100;
    if (percent / every_percent_ == logged_percent_ / every_percent_ && logged_percent_ >= 0) return;
    logged_percent_ = percent;
    fmt::print(stderr, "{}: {:3}% ({}/{} {}, {:.1f}s, ~{:.0f}s left)\n", label_, percent, done, total_, unit_, elapsed,
               eta);
    std::fflush(stderr);
    return;
  }
  if (done < total_ && now - last_ < std::chrono::milliseconds(100)) return;  // at most 10 redraws a second
  last_ = now;
  constexpr int width = 30;
  const int filled = total_ > 0 ? std::min(width, int(double(done) / total_ * width)) : width;
  fmt::print(stderr, "\r{:<28.28} [{:=<{}}{:<{}}] {:>6}/{} {}  {:.1f}s, ~{:.0f}s left ", label_, "", filled, "",
             width - filled, done, total_, unit_, elapsed, eta);
  std::fflush(stderr);
}

void Progress::finish() {
  if (!enabled_) return;
  enabled_ = false;  // idempotent: the destructor calls it again
  if (!terminal_) return;
  fmt::print(stderr, "\r{:<100}\r", "");
  std::fflush(stderr);
}

}  // namespace moesim::cli
