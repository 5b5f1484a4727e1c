#pragma once
// Helpers shared by the slurm_* tests: shell commands with captured output, files, JSON.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace cnp::slurm_test {

namespace fs = std::filesystem;

struct Output {
  int code = -1;
  std::string out;
  std::string err;
};

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write(const std::string& path, const std::string& text, bool executable = false) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  if (executable)
    fs::permissions(path, fs::perms::owner_all | fs::perms::group_read | fs::perms::others_read);
}

// `command` runs under bash; stdout and stderr go to files in `scratch`.
inline Output sh(const std::string& command, const std::string& scratch) {
  fs::create_directories(scratch);
  const std::string script = scratch + "/cmd.sh", out = scratch + "/cmd.out",
                    err = scratch + "/cmd.err";
  write(script, command + "\n");
  const std::string full = "bash " + script + " >" + out + " 2>" + err;
  const int status = std::system(full.c_str());
  Output result;
  result.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.out = slurp(out);
  result.err = slurp(err);
  return result;
}

inline std::string test_dir(const std::string& name) {
  const std::string dir = std::string(CNP_TEST_WORK) + "/" + name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
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
