#pragma once
// Internal to pipeline/report*: bootstrap intervals of job results, with the video
// sequence (subject, action, subaction, camera) as the resampling unit.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pipeline/bootstrap.h"
#include "pipeline/report.h"

namespace cnp::pipeline {

struct PairedDifference {
  Interval overall;                            // mean of (other - best) headline errors, mm
  std::map<std::string, Interval> per_action;  // action name -> the same within that action
  int64_t num_samples = 0;                     // samples both jobs evaluated
};

class ResultStatistics {
 public:
  explicit ResultStatistics(int resamples = Resampler::kDefaultResamples,
                            uint64_t seed = Resampler::kDefaultSeed);
  // 95% interval of a job's headline error; nullopt without stored samples.
  std::optional<Interval> headline_ci(const JobResult& job);
  // Paired difference other - best over the samples both evaluated (matched by image
  // id); nullopt when either has no stored samples or they share none.
  std::optional<PairedDifference> paired(const JobResult& best, const JobResult& other);

  int resamples() const { return resamples_; }
  uint64_t seed() const { return seed_; }

 private:
  const Resampler& resampler(int clusters);
  const std::vector<double>& headline_errors(const JobResult& job);

  int resamples_;
  uint64_t seed_;
  // One set of draws per cluster count: every statistic over the same sequences uses
  // the same draws, and draws are made once.
  std::map<int, std::unique_ptr<Resampler>> resamplers_;
  std::map<const JobResult*, std::vector<double>> errors_;
};

}  // namespace cnp::pipeline
