#pragma once
// Helpers shared by the slurm_* tests: shell commands with captured output, files, JSON.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "tests/support/test_support.h"

namespace cnp::slurm_test {

namespace fs = std::filesystem;

using Output = test::CommandResult;
using test::slurp;

inline void write(const std::string& path, const std::string& text, bool executable = false) {
  test::write_file(path, text, executable);
}

// `command` runs under bash; stdout and stderr go to files in `scratch`.
inline Output sh(const std::string& command, const std::string& scratch) {
  return test::run_bash(command, scratch);
}

inline std::string test_dir(const std::string& name) {
  return test::work_dir(name);
}

inline int count_lines(const std::string& text) {
  int n = 0;
  for (char c : text) n += c == '\n';
  return n;
}

// Polls `ready` every 100 ms for up to `seconds`.
template <class F>
bool wait_until(F ready, double seconds) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    if (ready()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return ready();
}

}  // namespace cnp::slurm_test
