// moesim: command dispatch and the exit-code contract (0 ok, 2 bad input, 1 internal error).
#include <fmt/format.h>

#include <exception>

#include "cli/commands.hpp"
#include "moesim/atomic_file.hpp"
#include "moesim/error.hpp"
#include "moesim/result.hpp"

int main(int argc, char** argv) {
  using namespace moesim;
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    install_cleanup_handlers();
    if (args.empty()) return cli::help_command({}) == 0 ? 2 : 2;
    if (args[0] == "--version" || args[0] == "-V") {
      fmt::print("moesim {}\n", kVersion);
      return 0;
    }
    if (args[0] == "--help" || args[0] == "-h") return cli::help_command({});
    const cli::Command* command = cli::find_command(args[0]);
    if (!command) throw InputError("moesim", "", fmt::format("unknown command '{}'; try 'moesim help'", args[0]));
    return command->run({args.begin() + 1, args.end()});
  } catch (const InputError& e) {
    fmt::print(stderr, "moesim: error: {}\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "moesim: internal error: {}\n", e.what());
    return 1;
  }
}
