#pragma once
// Shared Boost.Program_options plumbing: parse a command's arguments, turning
// any option error into an InputError that names the command.
#include <fmt/format.h>

#include <boost/program_options.hpp>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "moesim/error.hpp"

namespace moesim::cli {

namespace po = boost::program_options;

// Parses `args` against `options` (+ positional); handles --help (returns false
// after printing usage). Throws InputError for unknown or malformed options.
bool parse_options(const std::string& command, const std::vector<std::string>& args,
                   const po::options_description& options, const po::positional_options_description& positional,
                   po::variables_map& vm);

// An integer option's value (of the type it was declared with), InputError
// naming the flag when it lies outside [min, max]. One wording for every command.
template <class T>
T integer_option(const po::variables_map& vm, const char* name, std::int64_t min,
                 std::int64_t max = std::numeric_limits<T>::max()) {
  const T v = vm[name].as<T>();
  if (std::int64_t(v) < min || std::int64_t(v) > max)
    throw InputError(fmt::format("--{}", name), "",
                     max == std::int64_t(std::numeric_limits<T>::max())
                         ? fmt::format("expected an integer ≥ {}, got {}", min, v)
                         : fmt::format("expected an integer in [{}, {}], got {}", min, max, v));
  return v;
}

// Threads are capped: thousands of them only exhaust the process (100000
// crashed, 2^31−1 killed libgomp) and results do not depend on the count.
inline constexpr int kMaxThreads = 1024;
// --threads if given (InputError outside [1, kMaxThreads]), else `def`.
int thread_count(const po::variables_map& vm, int def);
// The values of a repeatable option (--set, --strategy, --vary); none when absent.
std::vector<std::string> strings(const po::variables_map& vm, const char* key);
// Applies --threads (default all cores).
void set_threads(const po::variables_map& vm);

}  // namespace moesim::cli
