#pragma once
// The pass executor: runs one forward pass (one checkpoint over one sample set) on
// every rank: loads the model, decodes/crops this rank's shard (from the images,
// the HDF5 cache or the in-memory crop store), predicts, and gathers the raw
// coordinates to rank 0 in sample order.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/cache.h"
#include "pipeline/collective_step.h"
#include "pipeline/gather.h"
#include "pipeline/sweep_plan.h"
#include "pipeline/weight_broadcast.h"

namespace cnp::pipeline {

using Clock = std::chrono::steady_clock;

// Decoded crops kept per rank and sample set across passes when they fit the budget.
struct CropStore {
  bool enabled = false;
  bool filled = false;  // every crop of this rank's shard is present
  std::vector<uint8_t> crops;
  std::vector<uint8_t> bad;
};

// Per sample set, what a rank holds while executing passes over it.
struct SampleSetState {
  std::string cache_path;
  std::unique_ptr<data::CacheReader> cache;
  CropStore store;
};

struct RunState {
  Mpi mpi;
  Plan plan;
  std::vector<SampleSetState> set_state;  // parallel to plan.sets
  std::string device;
  int threads = 1;
  int batch_size = 8;
  int64_t crop_budget_bytes = 0;
  std::unique_ptr<FloatGather> gather;
  std::unique_ptr<ByteBroadcast> weights;  // checkpoints: read on rank 0, sent to every rank
  // Progress (rank 0).
  Clock::time_point start;
  Clock::time_point pass_start;
  // ETA in units of work (GMACs): passes differ ~5x in cost per sample (XS vs L, flip).
  double work_to_compute = 0;
  double work_computed = 0;
  double pass_cost_per_sample = 0;
  // Counted by rank 0's result writer thread, read by the main thread's progress lines.
  std::atomic<int> jobs_finished{0};
  std::atomic<int> jobs_computed{0};
  // Rank 0: jobs that failed alone (a non-finite result); the sweep goes on, exits 1.
  // Written by the result writer thread: read it once the writer is flushed.
  std::vector<std::string> job_failures;
  std::vector<std::string> hosts;  // rank 0: every rank's host name, by rank (provenance)
  Clock::time_point last_progress;
};

// What a pass leaves on rank 0 (empty elsewhere): per sample, plan.coords_per_sample() floats of
// the plain half and (when needed) the flipped half, and 1 where the image was bad.
struct PassOutputs {
  std::vector<float> plain;
  std::vector<float> flipped;
  std::vector<uint8_t> bad;
};

// GMACs one sample of pass p costs: the variant's MACs, twice with the flip test.
double pass_cost_per_sample(const Plan& plan, size_t p, bool flip);

enum class PassOutcome { Done, Preempted, Failed };

class ModelPrefetch;
class AsyncResultWriter;

// What a pass works with besides its own samples: where its model comes from (and where
// the next pass's is made meanwhile), and rank 0's writer of earlier passes' results,
// whose failure fails the sweep at this pass's next check.
struct PassLinks {
  static constexpr size_t kNoPass = static_cast<size_t>(-1);
  ModelPrefetch* models = nullptr;
  size_t next_pass = kNoPass;                 // the next pass to compute, if any
  const AsyncResultWriter* writer = nullptr;  // rank 0
};

// Collective. On Failed, rank 0's `errors` holds every rank's message. A stop request
// seen at the pass's start, or before its last batch, gives Preempted.
PassOutcome run_pass(RunState& state, size_t pass_index, bool need_flip, const PassLinks& links,
                     PassOutputs& outputs, std::vector<std::string>& errors);

}  // namespace cnp::pipeline
