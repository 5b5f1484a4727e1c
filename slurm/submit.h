#pragma once
// `cnp slurm submit`: renders an sbatch script for one sweep (or a job array of sweeps, one
// sweep file per array index) from the template slurm/sweep.sbatch.in, writes it under
// <output>/slurm/ and submits it with sbatch.
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace cnp::slurm {

struct SubmitOptions {
  std::vector<std::string> configs;  // sweep files; more than one needs `array`
  int nodes = 1;
  // Counts left out take their defaults; a given count must be at least 1 (an explicit 0
  // used to turn silently into the default).
  std::optional<int> ntasks_per_node;  // unset: gpus_per_node when GPUs are asked for, else 1
  std::optional<int> gpus_per_node;    // one rank per GPU; unset: no GPUs
  std::optional<int> cpus_per_task;    // unset: the node's CPUs shared by its ranks (in the job)
  std::string time;                    // Slurm time limit, e.g. "90", "4:00:00", "1-12:00:00"
  std::string partition;
  std::string account;
  bool requeue = false;      // requeue the job when the sweep is preempted (exit code 3)
  int signal_seconds = 120;  // SIGUSR1 to the batch shell this long before the limit; 0: none
  bool array = false;        // one array task per sweep file
  bool wait = false;         // sbatch --wait: return when the job ends, with its exit code
  bool dry_run = false;      // render and print, submit nothing
  std::vector<std::string> overrides;  // --set KEY=VALUE, for load_sweep and cnp_sweep
  std::string sweep_exe;               // default: cnp_sweep next to the running executable
  std::string launcher = "auto";  // auto (srun --mpi=pmix if offered, else mpirun) | srun | mpirun
};

// What the script needs to know about one sweep file.
struct SweepTarget {
  std::string config;  // absolute path of the YAML
  std::string name;    // the sweep's name
  std::string output;  // absolute output directory
};

struct Script {
  std::string path;  // where it is written: <output>/slurm/<job name>.sbatch
  std::string text;  // the script itself
  std::string job_name;
  std::string log_out;  // stdout log pattern (%j / %A_%a)
  std::string log_err;  // stderr log pattern
};

// Throws cnp::Error (one line) on values Slurm would refuse or that cannot go in a script.
void validate_options(const SubmitOptions& options);

// Pure: the script for these sweeps (no files read, nothing written). `working_dir` becomes
// --chdir, so relative paths inside the sweep files resolve as they did at submission.
Script render_script(const SubmitOptions& options, const std::vector<SweepTarget>& sweeps,
                     const std::string& working_dir);

// The template with {{KEY}} placeholders replaced; throws if one is left unreplaced.
std::string fill_template(const std::string& templ,
                          const std::vector<std::pair<std::string, std::string>>& values);

// Single-quoted for bash, safe for any byte string.
std::string shell_quote(const std::string& word);

// Checks a Slurm time limit string (minutes, M:S, H:M:S, D-H, D-H:M, D-H:M:S).
bool valid_time_limit(const std::string& time);

// The cnp_sweep that belongs to this cnp: the sibling of /proc/self/exe.
std::string default_sweep_exe();

struct SubmitResult {
  Script script;
  std::string job_id;  // empty for a dry run
  int exit_code = 0;   // the job's, with --wait
};

// Loads and validates every sweep file (jobs::load_sweep), renders, writes the script
// atomically and runs sbatch (the job id goes to `on_job_id` as soon as sbatch prints it).
// Throws cnp::Error when sbatch is missing, refuses the job, or (with --wait) the job fails.
SubmitResult submit(const SubmitOptions& options,
                    const std::function<void(const std::string&)>& on_job_id = {});

// A child process's exit and output; stdout lines are passed on as they arrive.
struct ProcessResult {
  int exit_code = 0;  // 128+N when killed by signal N
  std::string out;
  std::string err;
};
// Throws cnp::Error naming argv[0] when it cannot be started (e.g. not on PATH).
ProcessResult run_process(const std::vector<std::string>& argv,
                          const std::function<void(const std::string&)>& on_stdout_line = {});

}  // namespace cnp::slurm
