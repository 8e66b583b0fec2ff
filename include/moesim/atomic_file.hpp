#pragma once
// Output files are written whole or not at all: a temp file in the same
// directory, then rename(2), which is atomic on POSIX file systems. A run's
// files are committed together (OutputBatch), so a run that fails leaves none
// of its results. A signal handler removes temp files being written when the
// run is killed by any catchable terminating signal.
#include <string>
#include <string_view>
#include <vector>

namespace moesim {

// The files of one run: each add() writes (and fsyncs) a hidden temp file
// next to its target; commit() renames them all into place. A batch destroyed
// before commit() — the run failed — removes its temp files; a commit that
// fails half-way removes the files it had already moved, so no result of the
// run remains. Errors are InputError naming the path (exit 2).
class OutputBatch {
 public:
  OutputBatch() = default;
  ~OutputBatch();
  OutputBatch(const OutputBatch&) = delete;
  OutputBatch& operator=(const OutputBatch&) = delete;

  // Creates missing parent directories.
  void add(const std::string& path, std::string_view content);
  // A large file written piece by piece (e.g. a routing trace): begin()
  // opens its temp file and returns a handle, append() adds to it; commit()
  // moves it into place with the rest of the batch.
  std::size_t begin(const std::string& path);
  void append(std::size_t handle, std::string_view content);
  // Returns the committed paths, in add() order.
  std::vector<std::string> commit();

 private:
  struct Staged {
    std::string path, temp;
    void* registration;  // the signal handler's record of `temp`
    int fd = -1;         // open while a begun file is being appended to
  };
  std::string stage(const std::string& path);  // creates directories; returns the temp name
  void discard() noexcept;
  std::vector<Staged> staged_;
};

// One file on its own (a batch of one).
void write_file_atomically(const std::string& path, std::string_view content);

// Installs handlers for every catchable terminating signal (SIGINT, SIGTERM,
// SIGHUP, SIGQUIT, SIGPIPE, SIGALRM, SIGUSR1/2, SIGXCPU, SIGVTALRM, SIGPROF,
// SIGPOLL, SIGPWR, SIGABRT) that remove in-flight temp files, then die by the
// signal; SIGHUP and SIGPIPE stay ignored if they were at start (nohup; an
// ignored SIGPIPE makes writes fail with EPIPE instead). SIGXFSZ is ignored,
// so exceeding a file-size limit fails the write (EFBIG, reported) instead of
// killing the run mid-file.
void install_cleanup_handlers();

// Removes temp files under `dir` (recursively) that a process of this host
// which no longer runs left behind (SIGKILL cannot be caught); returns how
// many. Temp files of running processes — concurrent shards — are kept.
int remove_stale_temps(const std::string& dir);

}  // namespace moesim
