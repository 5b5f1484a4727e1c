// Evaluation cost per sample (heatmap -> camera, root-relative, Kabsch alignment,
// 17-joint errors, accumulation) and the cost of writing the predictions JSON, so
// the rank-0 evaluation can be compared with forward-pass throughput.
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include "pipeline/metrics.h"
#include "pipeline/report.h"

int main(int argc, char** argv) {
  using namespace cnp;
  const int n = argc > 1 ? std::atoi(argv[1]) : 20000;
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> uni(0, 1);
  std::vector<data::Sample> samples(n);
  std::vector<float> coords(static_cast<size_t>(n) * data::kNumJoints * 3);
  for (int i = 0; i < n; ++i) {
    auto& s = samples[i];
    s.image_id = i;
    s.action_idx = 2 + i % 15;
    s.bbox = {100 + 100 * uni(rng), 100 + 100 * uni(rng), 500, 500};
    s.root_cam = {0, 0, 4000 + 1000 * uni(rng)};
    s.f = {1145, 1144};
    s.c = {512, 512};
    for (auto& j : s.joints_cam)
      j = {800 * uni(rng) - 400, 800 * uni(rng) - 400, s.root_cam[2] + 300 * uni(rng)};
    for (int k = 0; k < data::kNumJoints * 3; ++k)
      coords[static_cast<size_t>(i) * 54 + k] = 63 * uni(rng);
  }
  const auto t0 = std::chrono::steady_clock::now();
  pipeline::MetricsAccumulator acc;
  std::vector<pipeline::SampleResult> results;
  results.reserve(n);
  for (int i = 0; i < n; ++i) {
    const auto cam = pipeline::heatmap_to_camera(coords.data() + static_cast<size_t>(i) * 54, 64,
                                                 64, samples[i]);
    results.push_back(pipeline::evaluate_sample(cam, samples[i]));
    acc.add(results.back());
  }
  const auto summary = acc.summary();
  const auto t1 = std::chrono::steady_clock::now();
  std::vector<const data::Sample*> ptrs;
  for (const auto& s : samples) ptrs.push_back(&s);
  const std::string json = pipeline::predictions_to_json(results, ptrs, 1);
  const auto t2 = std::chrono::steady_clock::now();
  const double eval_s = std::chrono::duration<double>(t1 - t0).count();
  const double json_s = std::chrono::duration<double>(t2 - t1).count();
  std::printf("bench_metrics: %d samples\n", n);
  std::printf(
      "  evaluate (camera + MPJPE + PA-MPJPE + accumulate): %.3f s, %.0f samples/s, %.2f "
      "us/sample\n",
      eval_s, n / eval_s, 1e6 * eval_s / n);
  std::printf("  predictions JSON: %.3f s, %.1f MB, %.0f samples/s\n", json_s, json.size() / 1e6,
              n / json_s);
  std::printf("  (check) mpjpe %.2f mm, pa_mpjpe %.2f mm\n", summary.overall.at("mpjpe"),
              summary.overall.at("pa_mpjpe"));
  return 0;
}
