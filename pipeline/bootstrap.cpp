// The generator is hand-written (splitmix64 + Lemire's multiply-shift range reduction)
// because std::uniform_int_distribution differs between standard libraries and the
// intervals must be reproducible from the seed alone.
#include "pipeline/bootstrap.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "common/error.h"

namespace cnp::pipeline {
namespace {

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n) (the bias of 2^-32 * n is far below the Monte Carlo error).
  uint32_t below(uint32_t n) {
    return static_cast<uint32_t>((static_cast<uint64_t>(next() >> 32) * n) >> 32);
  }

 private:
  uint64_t state_;
};

}  // namespace

double percentile_sorted(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) throw Error("percentile of no values");
  const double pos = q * static_cast<double>(sorted.size() - 1);
  const size_t below = static_cast<size_t>(std::floor(pos));
  const size_t above = std::min(below + 1, sorted.size() - 1);
  const double frac = pos - static_cast<double>(below);
  return sorted[below] + (sorted[above] - sorted[below]) * frac;
}

double percentile_selected(std::vector<double>& values, double q) {
  if (values.empty()) throw Error("percentile of no values");
  const double pos = q * static_cast<double>(values.size() - 1);
  const size_t below = static_cast<size_t>(std::floor(pos));
  std::nth_element(values.begin(), values.begin() + below, values.end());
  const double a = values[below];
  if (below + 1 >= values.size()) return a;
  const double b = *std::min_element(values.begin() + below + 1, values.end());
  return a + (b - a) * (pos - static_cast<double>(below));
}

Resampler::Resampler(int clusters, int resamples, uint64_t seed)
    : clusters_(clusters), resamples_(resamples) {
  if (clusters <= 0) throw Error("bootstrap: no sequences to resample");
  if (resamples <= 0) throw Error("bootstrap: resamples must be positive");
  SplitMix64 rng(seed);
  const size_t total = static_cast<size_t>(clusters) * static_cast<size_t>(resamples);
  auto fill = [&](auto& multiplicity) {
    multiplicity.assign(total, 0);
    for (int b = 0; b < resamples; ++b) {
      auto* row = multiplicity.data() + static_cast<size_t>(b) * clusters;
      for (int i = 0; i < clusters; ++i) ++row[rng.below(static_cast<uint32_t>(clusters))];
    }
  };
  if (clusters <= 255) {
    fill(small_);
  } else {
    fill(large_);
  }
}

Interval Resampler::mean_ci(const std::vector<double>& sums,
                            const std::vector<double>& counts) const {
  if (sums.size() != static_cast<size_t>(clusters_) || counts.size() != sums.size()) {
    throw Error("bootstrap: " + std::to_string(sums.size()) + " cluster sums for " +
                std::to_string(clusters_) + " clusters");
  }
  Interval out;
  double total = 0, n = 0;
  for (int c = 0; c < clusters_; ++c) {
    total += sums[c];
    n += counts[c];
  }
  if (n <= 0) throw Error("bootstrap: no frames");
  out.mean = total / n;
  std::vector<double> stats(static_cast<size_t>(resamples_));
  auto run = [&](const auto* multiplicity) {
    for (int b = 0; b < resamples_; ++b) {
      const auto* row = multiplicity + static_cast<size_t>(b) * clusters_;
      double s = 0, k = 0;
      for (int i = 0; i < clusters_; ++i) {
        const double w = row[i];
        s += w * sums[i];
        k += w * counts[i];
      }
      // A draw of only empty clusters has no frames: its mean is the observed one.
      stats[b] = k > 0 ? s / k : out.mean;
    }
  };
  if (!small_.empty()) {
    run(small_.data());
  } else {
    run(large_.data());
  }
  out.lo = percentile_selected(stats, 0.025);
  out.hi = percentile_selected(stats, 0.975);
  return out;
}

}  // namespace cnp::pipeline
