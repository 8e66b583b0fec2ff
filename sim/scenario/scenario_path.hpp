#pragma once
// Paths a scenario names are relative to the scenario file (FORMATS.md).
#include <filesystem>
#include <string>

namespace moesim {

inline std::string resolve_path(const std::string& scenario_file, const std::string& path) {
  namespace fs = std::filesystem;
  if (fs::path(path).is_absolute()) return path;
  return (fs::path(scenario_file).parent_path() / path).lexically_normal().string();
}

}  // namespace moesim
