#pragma once
// One error type for the whole project: a single line naming the file, key or
// sample at fault. Commands print what() and exit non-zero.
#include <stdexcept>
#include <string>

namespace cnp {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message);
};

// Prefixes a message with its origin, e.g. context_error("a.yaml:3:5", "unknown key 'x'").
Error context_error(const std::string& where, const std::string& what);

}  // namespace cnp
