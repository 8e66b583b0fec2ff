#pragma once
// Shared Boost.Program_options plumbing: parse a command's arguments, turning
// any option error into an InputError that names the command.
#include <boost/program_options.hpp>
#include <string>
#include <vector>

namespace moesim::cli {

namespace po = boost::program_options;

// Parses `args` against `options` (+ positional); handles --help (returns false
// after printing usage). Throws InputError for unknown or malformed options.
bool parse_options(const std::string& command, const std::vector<std::string>& args,
                   const po::options_description& options, const po::positional_options_description& positional,
                   po::variables_map& vm);

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
