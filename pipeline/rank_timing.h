#pragma once
// Where one rank's wall time goes (run_summary.json "timing"): each part is the
// main thread's time inside that kind of work, so the parts add up to the wall
// time less small bookkeeping. One instance per process (= per rank).
// Work done on background threads (the next pass's checkpoint and model, rank 0's
// result writer) overlaps the main thread's parts, so it is kept apart
// (background_timing()) and not in their sum; what the main thread waits for it is
// in the main thread's part of the same name.
#include <chrono>
#include <mutex>
#include <string>

namespace cnp::pipeline {

struct RankTiming {
  double checkpoint_read_s = 0;  // reading and hashing checkpoint files
  double model_build_s = 0;      // building a model from its weights
  double data_wait_s = 0;        // loading sample sets, the cache, waiting for a batch
  double forward_s = 0;          // the network's forward passes
  double collective_s = 0;       // MPI collectives, including waiting for other ranks
  double metrics_write_s = 0;    // metrics, result files, reports
  // Not a part (it overlaps them): the main thread's time from the end of one pass's last
  // forward call to the start of the next pass's first, i.e. the device's idle time between
  // passes, summed over the passes, and its largest single gap.
  double between_passes_s = 0;
  double between_passes_max_s = 0;
  double parts_sum() const {
    return checkpoint_read_s + model_build_s + data_wait_s + forward_s + collective_s +
           metrics_write_s;
  }
};

RankTiming& this_rank_timing();

// Marks where forward calls start and end, for RankTiming::between_passes_s: the first forward
// call of a pass adds the time since the previous pass's last one.
void mark_pass_forward_start();
void mark_pass_forward_end();
void mark_pass_end();

// Seconds of background threads, by part (checkpoint_read_s, model_build_s, metrics_write_s).
// Thread-safe; read it once the threads are joined or idle.
RankTiming background_timing();

// Adds the seconds its scope lasts to one part of background_timing(), from any thread.
class BackgroundTimeInto {
 public:
  explicit BackgroundTimeInto(double RankTiming::*part)
      : part_(part), start_(std::chrono::steady_clock::now()) {}
  ~BackgroundTimeInto();
  BackgroundTimeInto(const BackgroundTimeInto&) = delete;
  BackgroundTimeInto& operator=(const BackgroundTimeInto&) = delete;

 private:
  double RankTiming::*part_;
  std::chrono::steady_clock::time_point start_;
};

// Adds the seconds its scope lasts to one part.
class TimeInto {
 public:
  explicit TimeInto(double& part) : part_(part), start_(std::chrono::steady_clock::now()) {}
  ~TimeInto() {
    part_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  TimeInto(const TimeInto&) = delete;
  TimeInto& operator=(const TimeInto&) = delete;

 private:
  double& part_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace cnp::pipeline
