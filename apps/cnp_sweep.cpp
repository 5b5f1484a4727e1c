// `cnp_sweep CONFIG.yaml`: the MPI sweep (run as `mpirun -np N cnp_sweep ...` or alone).
#include <mpi.h>

#include "common/cli.h"
#include "pipeline/sweep_runner.h"

int main(int argc, char** argv) {
  // Only the main thread calls MPI; the batch producer threads never do.
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);

  CLI::App app{
      "cnp_sweep: evaluate ConvNeXtPose checkpoints over a sweep (variants x epochs x "
      "protocols x flip) with MPI"};
  app.name("cnp_sweep");
  cnp::CommonOptions common;
  cnp::add_common_options(app, common);
  cnp::pipeline::SweepOptions options;
  app.add_option("config", options.config_path, "Sweep file (YAML)")->required();
  app.add_option("--output", options.output, "Output directory (overrides the file's `output`)");
  app.add_flag("--dry-run", options.dry_run,
               "Validate every input and print the plan (jobs, passes, checkpoints, samples)");
  app.add_flag("--no-resume", options.no_resume, "Recompute jobs whose results already exist");
  app.add_option("--set", options.overrides, "Override one YAML key: KEY=VALUE (repeatable)")
      ->take_all();

  const int code = cnp::run_main(app, common, argc, argv,
                                 [&]() -> int { return cnp::pipeline::run_sweep(options); });
  MPI_Finalize();
  return code;
}
