// `cnp slurm submit`: run a sweep (or a job array of sweeps) as a Slurm batch job.
#include <iostream>

#include "apps/commands.h"
#include "slurm/submit.h"

namespace {

std::function<int()> setup(CLI::App& slurm) {
  slurm.require_subcommand(1);
  CLI::App* sub = slurm.add_subcommand("submit",
                                       "Write <output>/slurm/<name>.sbatch for a sweep and submit "
                                       "it with sbatch; prints the job id");
  auto options = std::make_shared<cnp::slurm::SubmitOptions>();
  auto& o = *options;
  sub->add_option("CONFIG", o.configs, "Sweep file(s); several need --array")->required();
  sub->add_option("--nodes", o.nodes, "Nodes")->capture_default_str();
  sub->add_option("--ntasks-per-node", o.ntasks_per_node,
                  "MPI ranks per node (default: --gpus-per-node, else 1)");
  sub->add_option("--gpus-per-node", o.gpus_per_node,
                  "GPUs per node (--gres=gpu:N), one rank each");
  sub->add_option("--cpus-per-task", o.cpus_per_task,
                  "CPU threads per rank (default: the node's CPUs shared by its ranks)");
  sub->add_option("--time", o.time, "Time limit (minutes, H:M:S, D-H:M:S)");
  sub->add_option("--partition", o.partition, "Partition");
  sub->add_option("--account", o.account, "Account");
  sub->add_flag("--requeue", o.requeue,
                "Requeue the job when the sweep is preempted; it resumes where it stopped");
  sub->add_option("--signal-seconds", o.signal_seconds,
                  "SIGUSR1 this many seconds before the time limit, so the sweep stops at a batch "
                  "boundary (0: none)")
      ->capture_default_str();
  sub->add_flag("--array", o.array, "Submit the sweep files as one job array, one per index");
  sub->add_flag("--wait", o.wait, "Wait for the job to end; exit non-zero if it failed");
  sub->add_flag("--dry-run", o.dry_run, "Print the script; submit nothing");
  sub->add_option("--set", o.overrides, "KEY=VALUE override, passed to cnp_sweep (repeatable)")
      ->allow_extra_args(false);
  sub->add_option("--sweep-exe", o.sweep_exe, "cnp_sweep to run (default: next to cnp)");
  sub->add_option("--launcher", o.launcher,
                  "auto (srun --mpi=pmix when offered, else mpirun) | srun | mpirun")
      ->capture_default_str();
  return [options, sub]() -> int {
    if (!sub->parsed()) return 2;
    const auto result = cnp::slurm::submit(*options, [&](const std::string& id) {
      std::cout << id << std::endl;  // at once: with --wait the job may run for hours
    });
    if (options->dry_run) {
      std::cout << result.script.text;
      std::cerr << "dry run: would write " << result.script.path << " and submit it\n";
    } else {
      std::cerr << "script " << result.script.path << ", log " << result.script.log_out << "\n";
    }
    return 0;
  };
}

cnp::apps::CommandRegistration registration({"slurm", "Run sweeps on a Slurm cluster", setup});

}  // namespace
