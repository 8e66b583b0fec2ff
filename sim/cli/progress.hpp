#pragma once
// Progress on stderr: a one-line bar redrawn in place on a terminal; on a
// pipe or a log file (Slurm), a plain line every few percent.
#include <chrono>
#include <string>

namespace moesim::cli {

class Progress {
 public:
  // `terminal`: draw the bar (else log lines); `every_percent`: log-line spacing.
  // `unit` names what is counted ("steps", "requests").
  Progress(bool enabled, std::string label, int total, bool terminal, int every_percent = 5,
           std::string unit = "steps");
  ~Progress() { finish(); }  // also on errors, so a message never lands on a half-drawn bar
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  void update(int done);
  void finish();

 private:
  bool enabled_, terminal_;
  std::string label_, unit_;
  int total_, every_percent_, logged_percent_ = -1;
  std::chrono::steady_clock::time_point start_, last_;
};

// True when stderr is a terminal.
bool stderr_is_terminal();

}  // namespace moesim::cli
