#pragma once
#include <string>

namespace cnp {

// Level names: trace, debug, info, warn, error, off. An empty level falls back to
// $CNP_LOG_LEVEL, then "info". Throws cnp::Error on an unknown name.
void init_logging(const std::string& level);

// Adds a file sink (each MPI rank logs to its own file) next to the console.
void add_log_file(const std::string& path);

}  // namespace cnp
