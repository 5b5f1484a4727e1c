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

Resampler::Resampler(int clusters, int resamples, uint64_t seed)
    : clusters_(clusters), resamples_(resamples) {
  if (clusters <= 0) throw Error("bootstrap: no sequences to resample");
  if (resamples <= 0) throw Error("bootstrap: resamples must be positive");
  SplitMix64 rng(seed);
  const size_t total = static_cast<size_t>(clusters) * static_cast<size_t>(resamples);
  if (clusters <= 65535) {
    draws_.resize(total);
    for (auto& d : draws_) d = static_cast<uint16_t>(rng.below(static_cast<uint32_t>(clusters)));
  } else {
    wide_draws_.resize(total);
    for (auto& d : wide_draws_) d = rng.below(static_cast<uint32_t>(clusters));
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
  auto run = [&](const auto* draws) {
    for (int b = 0; b < resamples_; ++b) {
      const auto* row = draws + static_cast<size_t>(b) * clusters_;
      double s = 0, k = 0;
      for (int i = 0; i < clusters_; ++i) {
        s += sums[row[i]];
        k += counts[row[i]];
      }
      // A draw of only empty clusters has no frames: its mean is the observed one.
      stats[b] = k > 0 ? s / k : out.mean;
    }
  };
  if (!draws_.empty()) {
    run(draws_.data());
  } else {
    run(wide_draws_.data());
  }
  std::sort(stats.begin(), stats.end());
  out.lo = percentile_sorted(stats, 0.025);
  out.hi = percentile_sorted(stats, 0.975);
  return out;
}

}  // namespace cnp::pipeline
