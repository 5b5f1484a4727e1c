#pragma once
// The result writer (rank 0): turns a pass's gathered coordinates into each job's
// metrics, writes <output>/jobs/<stem>.json and its predictions, and at the end the
// comparison table and run_summary.json. Runs on rank 0 only; no collectives.
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "pipeline/pass_executor.h"

namespace cnp::pipeline {

// Metrics and files of every unfinished job of pass `pass_index`; marks them current.
// Throws cnp::Error (the caller agrees on it with the other ranks).
void write_pass_results(RunState& state, size_t pass_index, const PassOutputs& outputs,
                        double seconds);

// Rank 0's result writing off the passes' critical path: the runner hands each pass's
// gathered outputs to this thread and goes on with the next pass. At most one pass
// waits beside the one being written (submit blocks while it is there). The first
// failure stops the writing (nothing more is written) and is reported by error(), which
// the next collective check turns into every rank's failure. Job files are written
// whole (atomically, the job file last), so a stop or failure leaves exactly the
// finished jobs on disk.
class AsyncResultWriter {
 public:
  explicit AsyncResultWriter(RunState& state);
  // Writes what is queued (unless a write failed), then joins.
  ~AsyncResultWriter();
  AsyncResultWriter(const AsyncResultWriter&) = delete;
  AsyncResultWriter& operator=(const AsyncResultWriter&) = delete;

  void submit(size_t pass_index, PassOutputs outputs, double seconds);
  // The first write failure ("" while none); non-blocking.
  std::string error() const;
  // Waits until everything submitted is written (or a write failed); returns error().
  std::string flush();

 private:
  struct Item {
    size_t pass_index;
    PassOutputs outputs;
    double seconds;
  };
  void run();

  RunState& state_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Item> queue_;
  bool busy_ = false;  // the thread is writing an item
  bool closing_ = false;
  std::string error_;
  std::thread thread_;
};

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
