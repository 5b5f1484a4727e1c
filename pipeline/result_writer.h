#pragma once
// The result writer (rank 0): turns a pass's gathered coordinates into each job's
// metrics, writes <output>/jobs/<stem>.json and its predictions, and at the end the
// comparison table and run_summary.json. Runs on rank 0 only; no collectives.
#include <cstddef>
#include <string>
#include <vector>

#include "pipeline/pass_executor.h"

namespace cnp::pipeline {

// Metrics and files of every unfinished job of pass `pass_index`; marks them current.
// Throws cnp::Error (the caller agrees on it with the other ranks).
void write_pass_results(RunState& state, size_t pass_index, const PassOutputs& outputs,
                        double seconds);

struct SweepCounts {
  int passes_computed = 0;
  int passes_skipped = 0;
  int jobs_skipped = 0;
};

// This machine's host name, for the provenance in run_summary.json.
std::string host_name();

// <output>/run_summary.json, with "provenance" (version, commit, LibTorch, device, precision,
// hosts of every rank, start and end times) and "timing": `rank_timings` holds each rank's timing
// as JSON text (rank order), written as {"wall_s" (rank 0's), "per_rank": [...]}.
void write_summary(const RunState& state, const SweepCounts& counts, bool preempted,
                   const std::vector<std::string>& rank_timings);

// comparison.csv/.md over this sweep's jobs (those on disk, including resumed ones).
void write_sweep_comparison(const Plan& plan);

}  // namespace cnp::pipeline
