#pragma once
// The MPI sweep (INTERFACE.md `cnp_sweep`): validate everything on rank 0, plan the
// forward passes, shard each pass's samples over ranks, gather raw coordinates to
// rank 0, evaluate and write each job as soon as its pass finishes, resume on rerun.
#include <string>
#include <vector>

namespace cnp::pipeline {

struct SweepOptions {
  std::string config_path;
  std::string output;  // overrides the YAML's `output` when non-empty
  bool dry_run = false;
  bool no_resume = false;
  std::vector<std::string> overrides;  // --set KEY=VALUE
};

// Exit codes of cnp_sweep.
constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitPreempted = 3;

// Collective over MPI_COMM_WORLD (MPI must be initialised). Every rank returns the
// same code; errors are printed on rank 0's stderr, never by MPI_Abort.
int run_sweep(const SweepOptions& options);

}  // namespace cnp::pipeline
