#pragma once
// Inputs and comparisons shared by the whole-model tests that compare two ways of running a
// network (model_cuda_parity: GPU against CPU; model_cpu_bf16: bf16 against fp32).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace cnp::model::test_inputs {

inline const std::vector<std::pair<int, int>> kFlipPairs = {{1, 4},   {2, 5},   {3, 6},
                                                            {14, 11}, {15, 12}, {16, 13}};

// Blocky image-like input, normalised without /255 as the reference does: heatmaps stay
// peaky, as with real images.
inline std::vector<float> images(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> pixel(0.f, 255.f);
  const float mean[3] = {0.485f, 0.456f, 0.406f}, stdev[3] = {0.229f, 0.224f, 0.225f};
  constexpr int kSide = 256, kBlock = 16;
  std::vector<float> out(static_cast<size_t>(n) * 3 * kSide * kSide);
  for (int i = 0; i < n; ++i)
    for (int c = 0; c < 3; ++c)
      for (int by = 0; by < kSide / kBlock; ++by)
        for (int bx = 0; bx < kSide / kBlock; ++bx) {
          const float v = (pixel(rng) - mean[c]) / stdev[c];
          for (int y = by * kBlock; y < (by + 1) * kBlock; ++y)
            for (int x = bx * kBlock; x < (bx + 1) * kBlock; ++x)
              out[((static_cast<size_t>(i) * 3 + c) * kSide + y) * kSide + x] = v;
        }
  return out;
}

struct Diff {
  double max = 0, mean = 0;
};

// Largest and mean |a - b|; a non-finite difference counts as 1e30.
inline Diff compare(const std::vector<float>& a, const std::vector<float>& b) {
  Diff d;
  for (size_t i = 0; i < a.size(); ++i) {
    const double e = std::fabs(double{a[i]} - b[i]);
    d.max = std::max(d.max, std::isfinite(e) ? e : 1e30);
    d.mean += e / a.size();
  }
  return d;
}

}  // namespace cnp::model::test_inputs
