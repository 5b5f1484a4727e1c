#include "common/logging.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdlib>

#include "common/error.h"

namespace cnp {

void init_logging(const std::string& level) {
  std::string name = level;
  if (name.empty()) {
    const char* env = std::getenv("CNP_LOG_LEVEL");
    name = env && *env ? env : "info";
  }
  const auto parsed = spdlog::level::from_str(name);
  // from_str maps unknown names to "off"; only accept that when asked for.
  if (parsed == spdlog::level::off && name != "off") {
    throw Error("unknown log level '" + name + "' (trace, debug, info, warn, error, off)");
  }
  // Logs go to stderr so that stdout stays clean for --json and --dry-run output.
  auto logger = spdlog::stderr_color_mt("cnp");
  logger->set_level(parsed);
  logger->set_pattern("[%H:%M:%S.%e] [%^%l%$] %v");
  spdlog::set_default_logger(logger);
}

void add_log_file(const std::string& path) {
  auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path, true);
  sink->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %v");
  auto logger = spdlog::default_logger();
  logger->sinks().push_back(sink);
  logger->flush_on(spdlog::level::info);
}

}  // namespace cnp
