// write_pictures in a build without Cairo (cmake/dependencies.cmake: a GPU node's dependency
// bundle has none). The sweep's tables and statistics are complete; the pictures are drawn later
// by `cnp compare` on a machine whose cnp has Cairo, and comparison.md/.html say so.
#include <spdlog/spdlog.h>

#include "pipeline/plots.h"

namespace cnp::pipeline {

bool pictures_available() {
  return false;
}

std::vector<std::string> write_pictures(const nlohmann::ordered_json&, const std::string& dir) {
  spdlog::warn(
      "{}: pictures not drawn: this cnp was built without Cairo (run `cnp compare` "
      "where it was built with Cairo)",
      dir);
  return {};
}

}  // namespace cnp::pipeline
