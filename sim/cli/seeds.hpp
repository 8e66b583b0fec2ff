#pragma once
// Seed lists as users type them: "1-5", "1,3,7", "1-3,10".
#include <cstdint>
#include <string>
#include <vector>

namespace moesim::cli {

// Parses a seed list (ascending ranges, no duplicates); InputError naming `flag` otherwise.
std::vector<std::uint64_t> parse_seeds(const std::string& text, const std::string& flag = "--seeds");

}  // namespace moesim::cli
