#pragma once
// `cnp` subcommands register themselves: each apps/cmd_<name>.cpp defines one
// static CommandRegistration, so that adding a command touches no shared file.
#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace cnp::apps {

struct Command {
  std::string name;
  std::string description;
  // Adds options to `sub`; returns the function that runs the command after parsing.
  std::function<std::function<int()>(CLI::App& sub)> setup;
};

std::vector<Command>& command_registry();

struct CommandRegistration {
  explicit CommandRegistration(Command command) {
    command_registry().push_back(std::move(command));
  }
};

}  // namespace cnp::apps
