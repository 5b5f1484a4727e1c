#pragma once
// Helpers every test area needs: whole-file reads and writes, shell commands with
// captured output, and per-test work folders under CNP_TEST_WORK.
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace cnp::test {

struct CommandResult {
  int code = -1;
  std::string out;
  std::string err;
};

// The whole file as bytes; "" when it cannot be read (callers compare contents).
inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Replaces `path` with `text`, creating its parent folders.
inline void write_file(const std::string& path, const std::string& text, bool executable = false) {
  namespace fs = std::filesystem;
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  if (executable)
    fs::permissions(path, fs::perms::owner_all | fs::perms::group_read | fs::perms::others_read);
}

namespace detail {
// Runs `command_line` through /bin/sh with stdout and stderr redirected into
// `scratch`/cmd.out and cmd.err; a signal death reads as 128 + signal, like a shell.
inline CommandResult run_redirected(const std::string& command_line, const std::string& scratch) {
  const std::string out = scratch + "/cmd.out", err = scratch + "/cmd.err";
  const int status = std::system((command_line + " >" + out + " 2>" + err).c_str());
  CommandResult result;
  result.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.out = slurp(out);
  result.err = slurp(err);
  return result;
}
}  // namespace detail

// `command` runs in a /bin/sh subshell, so a redirect or `;` inside it stays inside.
inline CommandResult run_sh(const std::string& command, const std::string& scratch) {
  std::filesystem::create_directories(scratch);
  return detail::run_redirected("(" + command + ")", scratch);
}

// `command` is written to `scratch`/cmd.sh and run by bash (bash syntax, no quoting
// through /bin/sh).
inline CommandResult run_bash(const std::string& command, const std::string& scratch) {
  std::filesystem::create_directories(scratch);
  const std::string script = scratch + "/cmd.sh";
  write_file(script, command + "\n");
  return detail::run_redirected("bash " + script, scratch);
}

// CNP_TEST_WORK/<name>, emptied first unless `fresh` is false (for folders that
// cache data between tests of one binary).
inline std::string work_dir(const std::string& name, bool fresh = true) {
  const auto dir = std::filesystem::path(CNP_TEST_WORK) / name;
  if (fresh) std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

}  // namespace cnp::test
