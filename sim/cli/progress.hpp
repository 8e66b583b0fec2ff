#pragma once
// A one-line progress bar on stderr, shown only on a terminal.
#include <chrono>
#include <string>

namespace moesim::cli {

class Progress {
 public:
  Progress(bool enabled, std::string label, int total);
  ~Progress() { finish(); }  // also on errors, so a message never lands on a half-drawn bar
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  void update(int done);
  void finish();

 private:
  bool enabled_;
  std::string label_;
  int total_;
  std::chrono::steady_clock::time_point start_, last_;
};

// True when stderr is a terminal (progress is noise in logs and pipes).
bool stderr_is_terminal();

}  // namespace moesim::cli
