#pragma once
// Output files are written whole or not at all: a temp file in the same
// directory, then rename(2), which is atomic on POSIX file systems. A signal
// handler removes a temp file that is being written when the run is killed.
#include <memory>
#include <string>
#include <string_view>

namespace moesim {

// Creates missing parent directories. Throws InputError naming the path on failure.
void write_file_atomically(const std::string& path, std::string_view content);
// A large output written piece by piece into a temp file and moved into
// place by commit(); destroyed uncommitted (an error, a failed run), it
// removes the temp file, so the target never holds a partial file.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(const std::string& path);  // creates missing parent directories
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;
  void write(std::string_view content);
  void commit();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Installs SIGINT/SIGTERM handlers that remove an in-flight temp file, then die by the signal.
void install_cleanup_handlers();

}  // namespace moesim
