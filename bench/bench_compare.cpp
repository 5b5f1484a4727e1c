// `cnp compare` statistics at the scale: 100 jobs x 8,695 protocol-2 samples
// (240 video sequences). Times the samples.h5 round trip, the paired sequence
// bootstrap (10,000 resamples; best job against every other job, per action, and
// each variant's best epoch against its other epochs) and the pictures.
// usage: bench_compare [jobs] [samples]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "common/files.h"
#include "model/architecture.h"
#include "pipeline/plots.h"
#include "pipeline/report.h"
#include "pipeline/samples_h5.h"

namespace {
double since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}
// CPU seconds of this process: on a shared machine wall time also counts other users.
double cpu_seconds() {
  return static_cast<double>(std::clock()) / CLOCKS_PER_SEC;
}
}  // namespace

int main(int argc, char** argv) {
  using namespace cnp::pipeline;
  const int num_jobs = argc > 1 ? std::atoi(argv[1]) : 100;
  const int num_samples = argc > 2 ? std::atoi(argv[2]) : 8695;
  const char* variants[] = {"XS", "S", "M", "L"};
  std::mt19937 rng(11);
  std::normal_distribution<double> noise(0, 8);
  std::vector<JobResult> results(num_jobs);
  std::map<std::string, JobSamples> stored;
  for (int k = 0; k < num_jobs; ++k) {
    JobResult& r = results[k];
    r.job.variant = variants[k % 4];
    r.job.epoch = 40 + k / 4;
    r.job.protocol = 2;
    r.job.flip = true;
    r.samples.resize(num_samples);
    for (int i = 0; i < num_samples; ++i) {
      SampleErrors& s = r.samples[i];
      const int seq = i % 240;  // S9/S11 x 15 actions x 2 subactions x 4 cameras
      s.image_id = i;
      s.subject = seq < 120 ? 9 : 11;
      s.action_idx = 2 + (seq / 8) % 15;
      s.subaction = 1 + (seq / 4) % 2;
      s.camera = 1 + seq % 4;
      for (int m = 0; m < 3; ++m) {
        for (int j = 0; j < kEvalJoints; ++j)
          s.joint_error[m][j] = std::abs(60 + (k % 4) * 3 + noise(rng));
      }
    }
    r.metrics = summarize(r.samples);
    stored[r.job.stem()] = {r.job.variant, r.job.epoch, r.job.protocol,
                            r.job.flip,    r.job.bbox,  r.samples};
  }
  const auto dir = std::filesystem::temp_directory_path() / "cnp_bench_compare";
  std::filesystem::create_directories(dir);
  const std::string h5 = (dir / "samples.h5").string();
  std::filesystem::remove(h5);

  auto t = std::chrono::steady_clock::now();
  update_samples_file(h5, stored);
  const double write_s = since(t);
  t = std::chrono::steady_clock::now();
  const auto back = read_samples_file(h5);
  const double read_s = since(t);
  // One more job added to the full file: the per-pass cost during a sweep.
  t = std::chrono::steady_clock::now();
  update_samples_file(h5, {{"extra", stored.begin()->second}});
  const double update_s = since(t);

  const auto registry = cnp::model::VariantRegistry::with_builtins();
  t = std::chrono::steady_clock::now();
  const double cpu0 = cpu_seconds();
  const auto json = nlohmann::ordered_json::parse(comparison_to_json(results, registry));
  const double stats_s = since(t), stats_cpu = cpu_seconds() - cpu0;
  t = std::chrono::steady_clock::now();
  const auto pictures = write_pictures(json, dir.string());
  const double plots_s = since(t);

  std::printf("jobs %d, samples per job %d, paired comparisons %zu (+%zu variant-epoch)\n",
              num_jobs, num_samples, json["paired"].size(),
              json["variants"].size() * static_cast<size_t>(num_jobs / 4 - 1));
  std::printf(
      "samples.h5: write all %.3f s, read all %.3f s (%zu datasets, %.1f MB), add one "
      "job %.3f s\n",
      write_s, read_s, back.size(), static_cast<double>(std::filesystem::file_size(h5)) / 1e6,
      update_s);
  std::printf("comparison incl. bootstrap (%d resamples): %.3f s wall, %.3f s CPU\n",
              json["bootstrap"]["resamples"].get<int>(), stats_s, stats_cpu);
  std::printf("pictures (%zu files): %.3f s\n", pictures.size(), plots_s);
  cnp::remove_tree(dir);
  return 0;
}
