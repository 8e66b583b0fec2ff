#pragma once
// The fuzz input as a file, for readers that take a path (one per process).
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

namespace moesim::fuzz {

inline const std::string& write_input(const std::uint8_t* data, std::size_t size, const char* kind) {
  static const std::string path = std::string("/tmp/moesim-") + kind + "-fuzz-" + std::to_string(::getpid());
  if (std::FILE* f = std::fopen(path.c_str(), "wb")) {
    std::fwrite(data, 1, size, f);
    std::fclose(f);
  }
  return path;
}

}  // namespace moesim::fuzz
