#pragma once
// Paired cluster bootstrap (REFERENCE.md 6a): frames of one video sequence are
// correlated, so the resampling unit is the sequence. A statistic is the mean over
// frames of per-frame values, i.e. sum over drawn sequences of their sums divided by
// the sum of their frame counts.
#include <cstdint>
#include <vector>

namespace cnp::pipeline {

struct Interval {
  double mean = 0;  // the statistic on the original data
  double lo = 0, hi = 0;
  bool excludes_zero() const { return lo > 0 || hi < 0; }
};

// Fixed draws for one set of clusters: `resamples` rows of `clusters` cluster indices
// drawn with replacement from a seeded generator (the same seed gives the same draws
// on every platform). Reusing one Resampler for several statistics over the same
// clusters pairs them (common random numbers).
class Resampler {
 public:
  static constexpr int kDefaultResamples = 10000;
  static constexpr uint64_t kDefaultSeed = 20240611;
  Resampler(int clusters, int resamples = kDefaultResamples, uint64_t seed = kDefaultSeed);

  int clusters() const { return clusters_; }
  int resamples() const { return resamples_; }

  // Mean of the values with a 95% percentile interval (2.5% and 97.5% quantiles of the
  // resampled means, linear interpolation as numpy.percentile). cluster_sums[c] is the
  // sum of the values of cluster c, cluster_counts[c] its number of frames.
  Interval mean_ci(const std::vector<double>& cluster_sums,
                   const std::vector<double>& cluster_counts) const;

 private:
  int clusters_, resamples_;
  // How often each cluster was drawn, resamples x clusters: a resampled mean is then
  // two dot products over contiguous memory instead of `clusters` scattered loads.
  // A multiplicity never exceeds the cluster count, so 8 bits hold it up to 255 clusters.
  std::vector<uint8_t> small_;
  std::vector<uint32_t> large_;
};

// Percentile of sorted values with linear interpolation (numpy's default), q in [0, 1].
double percentile_sorted(const std::vector<double>& sorted, double q);
// The same for unsorted values, by selection (reorders `values`).
double percentile_selected(std::vector<double>& values, double q);

}  // namespace cnp::pipeline
