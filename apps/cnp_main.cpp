// `cnp`: every command that is not the sweep itself. Subcommands live in cmd_*.cpp.
#include <algorithm>
#include <map>

#include "apps/commands.h"
#include "common/cli.h"

namespace cnp::apps {
std::vector<Command>& command_registry() {
  static std::vector<Command> registry;
  return registry;
}
}  // namespace cnp::apps

int main(int argc, char** argv) {
  CLI::App app{
      "cnp: ConvNeXtPose evaluation tools (inspect, variants, synth, pack, compare, slurm)"};
  cnp::CommonOptions common;
  cnp::add_common_options(app, common);
  app.require_subcommand(1);

  auto& commands = cnp::apps::command_registry();
  std::sort(commands.begin(), commands.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  std::map<CLI::App*, std::function<int()>> runners;
  for (auto& command : commands) {
    CLI::App* sub = app.add_subcommand(command.name, command.description);
    runners[sub] = command.setup(*sub);
  }
  return cnp::run_main(app, common, argc, argv, [&]() -> int {
    for (auto& [sub, run] : runners) {
      if (sub->parsed()) return run();
    }
    return 2;
  });
}
