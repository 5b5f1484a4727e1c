#include "pipeline/report_stats.h"

#include <functional>
#include <tuple>
#include <unordered_map>

namespace cnp::pipeline {
namespace {

using SequenceKey = std::tuple<int, int, int, int>;  // subject, action, subaction, camera

SequenceKey sequence_of(const SampleErrors& s) {
  return {s.subject, s.action_idx, s.subaction, s.camera};
}

// Per-frame values grouped by sequence, in sorted sequence order, so two statistics
// over the same sequences number them alike.
struct Clustered {
  std::map<SequenceKey, std::pair<double, double>> sums;  // sequence -> (sum, frames)
  void add(const SampleErrors& s, double value) {
    auto& cell = sums[sequence_of(s)];
    cell.first += value;
    cell.second += 1;
  }
};

}  // namespace

ResultStatistics::ResultStatistics(int resamples, uint64_t seed)
    : resamples_(resamples), seed_(seed) {}

const Resampler& ResultStatistics::resampler(int clusters) {
  auto& slot = resamplers_[clusters];
  if (!slot) slot = std::make_unique<Resampler>(clusters, resamples_, seed_);
  return *slot;
}

const std::vector<double>& ResultStatistics::headline_errors(const JobResult& job) {
  auto it = errors_.find(&job);
  if (it != errors_.end()) return it->second;
  std::vector<double> errors;
  errors.reserve(job.samples.size());
  for (const auto& s : job.samples) errors.push_back(headline_sample_error(s, job.job.protocol));
  return errors_[&job] = std::move(errors);
}

namespace {
Interval interval_of(const Clustered& c, const std::function<const Resampler&(int)>& get) {
  std::vector<double> sums, counts;
  sums.reserve(c.sums.size());
  counts.reserve(c.sums.size());
  for (const auto& [key, cell] : c.sums) {
    sums.push_back(cell.first);
    counts.push_back(cell.second);
  }
  return get(static_cast<int>(sums.size())).mean_ci(sums, counts);
}
}  // namespace

std::optional<Interval> ResultStatistics::headline_ci(const JobResult& job) {
  if (job.samples.empty()) return std::nullopt;
  const auto& errors = headline_errors(job);
  Clustered c;
  for (size_t i = 0; i < errors.size(); ++i) c.add(job.samples[i], errors[i]);
  return interval_of(c, [this](int n) -> const Resampler& { return resampler(n); });
}

std::optional<PairedDifference> ResultStatistics::paired(const JobResult& best,
                                                         const JobResult& other) {
  if (best.samples.empty() || other.samples.empty()) return std::nullopt;
  const auto& best_errors = headline_errors(best);
  const auto& other_errors = headline_errors(other);
  std::unordered_map<int64_t, size_t> index;
  index.reserve(best.samples.size());
  for (size_t i = 0; i < best.samples.size(); ++i) index[best.samples[i].image_id] = i;
  Clustered overall;
  std::map<int, Clustered> per_action;
  int64_t n = 0;
  for (size_t i = 0; i < other.samples.size(); ++i) {
    const auto it = index.find(other.samples[i].image_id);
    if (it == index.end()) continue;
    const SampleErrors& s = best.samples[it->second];
    const double d = other_errors[i] - best_errors[it->second];
    overall.add(s, d);
    per_action[s.action_idx].add(s, d);
    ++n;
  }
  if (n == 0) return std::nullopt;
  auto get = [this](int k) -> const Resampler& { return resampler(k); };
  PairedDifference out;
  out.num_samples = n;
  out.overall = interval_of(overall, get);
  for (const auto& [action_idx, c] : per_action) {
    out.per_action[data::action_names()[action_idx - 2]] = interval_of(c, get);
  }
  return out;
}

}  // namespace cnp::pipeline
