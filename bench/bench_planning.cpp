// Sweep planning time against the number of jobs: expanding the grid, grouping jobs
// into forward passes, sample sets and the passes to compute. Linear planning shows
// a constant time per job as the sweep grows (it was quadratic: 50,000 jobs took
// 11 s, 100,000 over 130 s).
// Run: bench_planning [--jobs 12500,25000,50000,100000]
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>

#include "jobs/sweep.h"
#include "pipeline/sweep_plan.h"

int main(int argc, char** argv) {
  CLI::App app{"bench_planning: sweep planning time per job"};
  std::vector<int> sizes = {12500, 25000, 50000, 100000};
  app.add_option("--jobs", sizes, "Sweep sizes (jobs; multiples of 16)")->delimiter(',');
  CLI11_PARSE(app, argc, argv);

  std::printf("%10s %10s %12s %14s\n", "jobs", "passes", "plan ms", "us per job");
  for (int jobs : sizes) {
    // 4 variants x epochs x 2 protocols x 2 flips = 16 jobs per epoch.
    const int epochs = std::max(1, jobs / 16);
    cnp::pipeline::Plan plan;
    plan.config = cnp::jobs::parse_sweep(
        "name: bench\ndataset:\n  root: /data\nmodel:\n  checkpoint: "
        "\"/ck/{variant}/snapshot_{epoch}.pth.tar\"\nsweep:\n  variants: [XS, S, M, L]\n"
        "  epochs: \"1-" +
            std::to_string(epochs) + "\"\n  protocols: [1, 2]\n  flip: [false, true]\n",
        "bench.yaml");
    const auto start = std::chrono::steady_clock::now();
    cnp::pipeline::plan_jobs(plan);
    plan.job_current.assign(plan.jobs.size(), 0);
    const auto selection = cnp::pipeline::select_passes(plan);
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    std::printf("%10zu %10zu %12.1f %14.2f\n", plan.jobs.size(), plan.passes.size(), ms,
                1000.0 * ms / static_cast<double>(plan.jobs.size()));
    if (selection.compute.size() != plan.passes.size()) return 1;
  }
  return 0;
}
