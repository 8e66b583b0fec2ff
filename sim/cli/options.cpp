#include "options.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <sstream>

#include "commands.hpp"
#include "moesim/error.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace moesim::cli {

bool parse_options(const std::string& command, const std::vector<std::string>& args,
                   const po::options_description& options, const po::positional_options_description& positional,
                   po::variables_map& vm) {
  po::options_description all = options;
  all.add_options()("help,h", "show this help");
  try {
    po::store(po::command_line_parser(args).options(all).positional(positional).run(), vm);
    if (vm.count("help")) {
      std::ostringstream help;
      help << all;
      print_usage(*find_command(command), help.str());
      return false;
    }
    po::notify(vm);
  } catch (const po::required_option& e) {
    // Name a missing positional argument as the usage line spells it (SCENARIO), not as --scenario.
    std::string name = e.get_option_name();
    name.erase(0, name.find_first_not_of('-'));
    const unsigned positions = std::min(positional.max_total_count(), 16u);
    for (unsigned i = 0; i < positions; ++i)
      if (positional.name_for_position(i) == name) {
        std::string upper;
        for (char c : name) upper += char(std::toupper(static_cast<unsigned char>(c)));
        throw InputError(fmt::format("moesim {}", command), "",
                         fmt::format("missing the {} argument; usage: {}", upper, find_command(command)->synopsis));
      }
    throw InputError(fmt::format("moesim {}", command), "",
                     fmt::format("missing the option --{} (see 'moesim help {}')", name, command));
  } catch (const po::error& e) {
    throw InputError(fmt::format("moesim {}", command), "",
                     fmt::format("{} (see 'moesim help {}')", e.what(), command));
  }
  return true;
}

int thread_count(const po::variables_map& vm, int def) {
  if (!vm.count("threads")) return def;
  return integer_option<int>(vm, "threads", 1, kMaxThreads);
}

void set_threads(const po::variables_map& vm) {
  if (!vm.count("threads")) return;
  [[maybe_unused]] const int n = thread_count(vm, 1);
#ifdef _OPENMP
  omp_set_num_threads(n);
#endif
}

std::vector<std::string> strings(const po::variables_map& vm, const char* key) {
  return vm.count(key) ? vm[key].as<std::vector<std::string>>() : std::vector<std::string>{};
}

}  // namespace moesim::cli
