// Submission for `cnp slurm submit`: sweep validation, writing the script, running sbatch.
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/error.h"
#include "common/files.h"
#include "jobs/sweep.h"
#include "slurm/submit.h"

extern char** environ;

namespace cnp::slurm {
namespace fs = std::filesystem;

std::string default_sweep_exe() {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) throw Error("/proc/self/exe: cannot locate this executable; pass --sweep-exe");
  return (self.parent_path() / "cnp_sweep").string();
}

namespace {

struct Pipe {
  int fd[2] = {-1, -1};
  Pipe() {
    if (::pipe2(fd, O_CLOEXEC) != 0) throw Error(std::string("pipe: ") + std::strerror(errno));
  }
  ~Pipe() {
    for (int f : fd)
      if (f >= 0) ::close(f);
  }
  void close_end(int i) {
    if (fd[i] >= 0) ::close(fd[i]);
    fd[i] = -1;
  }
};

std::string last_line(const std::string& text) {
  std::string t = text;
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.pop_back();
  const auto nl = t.rfind('\n');
  return nl == std::string::npos ? t : t.substr(nl + 1);
}

std::string absolute(const std::string& path) {
  return fs::absolute(fs::path(path)).lexically_normal().string();
}

}  // namespace

ProcessResult run_process(const std::vector<std::string>& argv,
                          const std::function<void(const std::string&)>& on_stdout_line) {
  if (argv.empty()) throw Error("internal: empty command");
  Pipe out, err;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out.fd[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err.fd[1], STDERR_FILENO);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int rc = ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    if (rc == ENOENT)
      throw Error(argv[0] + ": not found on PATH (is the Slurm client installed here?)");
    throw Error(argv[0] + ": cannot start: " + std::strerror(rc));
  }
  out.close_end(1);
  err.close_end(1);

  ProcessResult result;
  std::string pending;  // stdout not yet ended by a newline
  std::array<pollfd, 2> fds{{{out.fd[0], POLLIN, 0}, {err.fd[0], POLLIN, 0}}};
  int open_fds = 2;
  char buffer[4096];
  while (open_fds > 0) {
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
      if (n <= 0) {
        fds[i].fd = -1;
        --open_fds;
        continue;
      }
      if (i == 1) {
        result.err.append(buffer, static_cast<size_t>(n));
        continue;
      }
      result.out.append(buffer, static_cast<size_t>(n));
      pending.append(buffer, static_cast<size_t>(n));
      for (auto nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n')) {
        if (on_stdout_line) on_stdout_line(pending.substr(0, nl));
        pending.erase(0, nl + 1);
      }
    }
  }
  if (!pending.empty() && on_stdout_line) on_stdout_line(pending);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw Error(argv[0] + ": waitpid failed: " + std::strerror(errno));
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

SubmitResult submit(const SubmitOptions& given,
                    const std::function<void(const std::string&)>& on_job_id) {
  SubmitOptions options = given;
  validate_options(options);
  if (options.sweep_exe.empty()) options.sweep_exe = default_sweep_exe();
  options.sweep_exe = absolute(options.sweep_exe);
  if (!options.dry_run && ::access(options.sweep_exe.c_str(), X_OK) != 0)
    throw Error(options.sweep_exe + ": sweep executable not found or not executable (--sweep-exe)");

  std::vector<SweepTarget> sweeps;
  for (const auto& config : options.configs) {
    // Validates the whole file now, so a typo fails here and not after hours in the queue.
    const jobs::SweepConfig sweep = jobs::load_sweep(config, options.overrides);
    const std::string output = sweep.output.empty() ? "results/" + sweep.name : sweep.output;
    sweeps.push_back({absolute(config), sweep.name, absolute(output)});
  }

  SubmitResult result;
  result.script = render_script(options, sweeps, fs::current_path().string());
  if (options.dry_run) return result;

  write_file_atomic(result.script.path, result.script.text);
  std::vector<std::string> argv = {"sbatch", "--parsable"};
  if (options.wait) argv.push_back("--wait");
  argv.push_back(result.script.path);
  const ProcessResult sbatch = run_process(argv, [&](const std::string& line) {
    // --parsable prints "jobid[;cluster]" once the job is accepted, before --wait blocks.
    if (!result.job_id.empty() || line.empty()) return;
    result.job_id = line.substr(0, line.find(';'));
    if (on_job_id) on_job_id(result.job_id);
  });
  if (result.job_id.empty()) {
    const std::string why = last_line(sbatch.err.empty() ? sbatch.out : sbatch.err);
    throw Error("sbatch refused " + result.script.path + ": " +
                (why.empty() ? "exit code " + std::to_string(sbatch.exit_code) : why));
  }
  result.exit_code = sbatch.exit_code;
  if (options.wait && sbatch.exit_code != 0) {
    std::string log = result.script.log_out;
    const auto j = log.find("%j");
    if (j != std::string::npos) log.replace(j, 2, result.job_id);
    throw Error("slurm job " + result.job_id + " ended with exit code " +
                std::to_string(sbatch.exit_code) + " (log: " + log + ")");
  }
  return result;
}

}  // namespace cnp::slurm
