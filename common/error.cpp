#include "common/error.h"

namespace cnp {

namespace {
// Errors are one line: a newline inside would break log parsing and scripts.
std::string one_line(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return s;
}
}  // namespace

Error::Error(const std::string& message) : std::runtime_error(one_line(message)) {}

Error context_error(const std::string& where, const std::string& what) {
  return Error(where + ": " + what);
}

}  // namespace cnp
