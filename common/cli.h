#pragma once
// Options every command shares: --version and --log-level (or $CNP_LOG_LEVEL).
#include <CLI/CLI.hpp>
#include <functional>
#include <string>

namespace cnp {

struct CommonOptions {
  std::string log_level;
};

void add_common_options(CLI::App& app, CommonOptions& options);

// Parses argv, sets up logging and runs body; turns cnp::Error and other
// exceptions into a one-line message on stderr and exit code 1.
int run_main(CLI::App& app, CommonOptions& options, int argc, char** argv,
             const std::function<int()>& body);

}  // namespace cnp
