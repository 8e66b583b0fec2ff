// moesim help [COMMAND], and the command table.
#include <fmt/format.h>

#include "commands.hpp"
#include "moesim/error.hpp"
#include "moesim/result.hpp"

namespace moesim::cli {

const std::vector<Command>& commands() {
  static const std::vector<Command> table{
      {"run",
       "moesim run SCENARIO [-o DIR] [--strategy NAME]... [--set PATH=VALUE]... [--seeds LIST] [--threads N] "
       "[--quiet] [--trace-out FILE]",
       "run every strategy of a scenario on the same token stream; write one result JSON each", run_command},
      {"compare",
       "moesim compare RESULT.json... [--metrics a,b,...] [--json | --csv | --markdown] [--per-seed] [--mixed]",
       "side-by-side table of summary metrics, mean ± 95% interval over seeds", compare_command},
      {"sweep",
       "moesim sweep SCENARIO --vary PATH=v1,v2,... [--vary ...] [--shard I/N] [-o DIR] [--strategy NAME]... "
       "[--set PATH=VALUE]... [--threads N] [--quiet]",
       "run the cartesian product of varied values; shards split it, finished configurations are skipped",
       sweep_command},
      {"search",
       "moesim search SCENARIO --param PATH --low A --high B --metric M (--below V | --above V) [--tolerance T] "
       "[--integer] [--seeds LIST] [--strategy NAME]... [--set PATH=VALUE]... [--threads N] [--json] [--quiet]",
       "find by bisection the smallest parameter value at which a summary metric meets a constraint",
       search_command},
      {"validate", "moesim validate SCENARIO... [--set PATH=VALUE]...", "check scenarios without running them",
       validate_command},
      {"place", "moesim place --loads FILE --replicas R --groups G --nodes N --devices D [--report [--json]]",
       "print DeepSeek EPLB's expert placement (phy2log, log2phy, logcnt) for a layers × experts load matrix, or "
       "(--report) each layer's device max/mean with and without it",
       place_command},
      {"fit", "moesim fit DATA -o SCENARIO.json [--format F] [--top-k K] [--seed S] [--nodes N] ...",
       "fit the calibrated stream to a routing trace or per-layer loads; write a scenario, print the fit", fit_command},
      {"stats", "moesim stats DATA [--format F] [--window N] [--seq-len N] [--per-layer]",
       "the routing statistics of a trace or loads file (popularity, batch imbalance, locality, NMI)", stats_command},
      {"list", "moesim list", "every registered component and metric with its parameters", list_command},
      {"help", "moesim help [COMMAND]", "this help, or one command's options", help_command},
  };
  return table;
}

const Command* find_command(const std::string& name) {
  for (const auto& c : commands())
    if (name == c.name) return &c;
  return nullptr;
}

void print_usage(const Command& command, const std::string& options_help) {
  fmt::print("usage: {}\n\n{}.\n\n{}", command.synopsis, command.summary, options_help);
}

int help_command(const Args& args) {
  if (!args.empty()) {
    if (args[0] == "help" || args[0] == "--help" || args[0] == "-h") {  // 'moesim help help'
      print_usage(*find_command("help"), "");
      return 0;
    }
    const Command* c = find_command(args[0]);
    if (!c) throw InputError("moesim help", "", fmt::format("unknown command '{}'; try 'moesim help'", args[0]));
    return c->run({"--help"});
  }
  fmt::print("moesim {}: discrete-event simulator of expert load in mixture-of-experts models\n\ncommands:\n", kVersion);
  for (const auto& c : commands()) fmt::print("  {:<10} {}\n", c.name, c.summary);
  fmt::print("\n'moesim help COMMAND' shows a command's options. Exit codes: 0 success, 2 bad input "
             "(scenario, flag or file), 1 internal error.\n");
  return 0;
}

}  // namespace moesim::cli
