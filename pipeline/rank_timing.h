#pragma once
// Where one rank's wall time goes (run_summary.json "timing"): each part is the
// main thread's time inside that kind of work, so the parts add up to the wall
// time less small bookkeeping. One instance per process (= per rank).
#include <chrono>
#include <string>

namespace cnp::pipeline {

struct RankTiming {
  double checkpoint_read_s = 0;  // reading and hashing checkpoint files
  double model_build_s = 0;      // building a model from its weights
  double data_wait_s = 0;        // loading sample sets, the cache, waiting for a batch
  double forward_s = 0;          // the network's forward passes
  double collective_s = 0;       // MPI collectives, including waiting for other ranks
  double metrics_write_s = 0;    // metrics, result files, reports
  double parts_sum() const {
    return checkpoint_read_s + model_build_s + data_wait_s + forward_s + collective_s +
           metrics_write_s;
  }
};

RankTiming& this_rank_timing();

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
