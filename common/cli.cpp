#include "common/cli.h"

#include <spdlog/spdlog.h>

#include <exception>
#include <iostream>

#include "common/error.h"
#include "common/logging.h"
#include "common/version.h"

namespace cnp {

void add_common_options(CLI::App& app, CommonOptions& options) {
  app.set_version_flag("--version", std::string("cnp ") + CNP_VERSION);
  app.add_option("--log-level", options.log_level,
                 "trace|debug|info|warn|error|off (default: $CNP_LOG_LEVEL or info)");
}

int run_main(CLI::App& app, CommonOptions& options, int argc, char** argv,
             const std::function<int()>& body) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    init_logging(options.log_level);
    return body();
  } catch (const std::exception& e) {
    std::cerr << app.get_name() << ": error: " << e.what() << std::endl;
    return 1;
  }
}

}  // namespace cnp
