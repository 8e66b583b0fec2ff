#pragma once
// Output files are written whole or not at all: a temp file in the same
// directory, then rename(2), which is atomic on POSIX file systems. A signal
// handler removes a temp file that is being written when the run is killed.
#include <string>
#include <string_view>

namespace moesim {

// Creates missing parent directories. Throws InputError naming the path on failure.
void write_file_atomically(const std::string& path, std::string_view content);
// Installs SIGINT/SIGTERM handlers that remove an in-flight temp file, then die by the signal.
void install_cleanup_handlers();

}  // namespace moesim
