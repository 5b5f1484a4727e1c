#pragma once
// Result files (INTERFACE.md "Outputs"): per-job JSON, predictions in the
// reference's format, and the variant comparison (JSON + Markdown).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "data/h36m.h"
#include "jobs/grid.h"
#include "model/architecture.h"
#include "pipeline/metrics.h"

namespace cnp::pipeline {

struct JobResult {
  jobs::Job job;
  std::string checkpoint_sha256;
  std::optional<int64_t> checkpoint_epoch;  // the checkpoint's own 'epoch' field, if any
  model::Architecture architecture;
  std::string settings_key;  // jobs::job_settings_key(); decides resume
  MetricsAccumulator::Summary metrics;
  int64_t skipped_samples = 0;
  double seconds = 0;
  double images_per_second = 0;
  int ranks = 1;
  // Settings a reader needs to rebuild the sample set (tests/eval/check_sweep_results.py).
  int sample_every = 64;
  std::string dataset_root;
  std::string precision = "fp32";
  std::string source;  // file it was loaded from (load_job_results); not written
  // Per-sample errors from samples.h5 (load_job_results); empty when the sweep has
  // none for this job. When present, `metrics` was recomputed from them.
  std::vector<SampleErrors> samples;
};

// The job fields a result file name carries: <variant>_e<epoch>_p<protocol>_<flip|noflip>
// with an optional _<bbox> (newer names). bbox is "" for the old form.
struct JobStem {
  std::string variant;
  int epoch = 0;
  int protocol = 0;
  bool flip = false;
  std::string bbox;
};
std::optional<JobStem> parse_job_stem(const std::string& stem);

constexpr const char* kSamplesFile = "samples.h5";

std::string job_result_to_json(const JobResult& result);
// Throws cnp::Error naming `source` on malformed content.
JobResult job_result_from_json(const std::string& text, const std::string& source);

// [{image_id, joint_cam (17 x 3 root-relative; rigidly aligned for protocol 1), bbox, root_cam}]
std::string predictions_to_json(const std::vector<SampleResult>& results,
                                const std::vector<const data::Sample*>& samples, int protocol);

// Reads every <dir>/jobs/*.json (throws naming a malformed file, a negative error, or
// a file whose name disagrees with its job) and attaches <dir>/samples.h5.
std::vector<JobResult> load_job_results(const std::string& output_dir);
// Gives each result the samples of its dataset (by file stem) in `samples_path`, if
// that file exists, and recomputes its metrics from them.
void attach_samples(std::vector<JobResult>& results, const std::string& samples_path);

// comparison.json / comparison.md from finished jobs: headline numbers side by side,
// best job per protocol, published value and difference where the registry has one.
std::string comparison_to_json(const std::vector<JobResult>& results,
                               const model::VariantRegistry& registry);
std::string comparison_to_markdown(const std::vector<JobResult>& results,
                                   const model::VariantRegistry& registry);
// Writes <output_dir>/comparison.json and comparison.md atomically.
void write_comparison(const std::string& output_dir, const std::vector<JobResult>& results,
                      const model::VariantRegistry& registry);

}  // namespace cnp::pipeline
