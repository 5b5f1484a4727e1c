#include "pipeline/result_writer.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <new>
#include <nlohmann/json.hpp>
#include <set>

#include "common/error.h"
#include "common/files.h"
#include "common/version.h"
#include "data/preprocess.h"
#include "jobs/grid.h"
#include "pipeline/metrics.h"
#include "pipeline/rank_timing.h"
#include "pipeline/report.h"
#include "pipeline/samples_h5.h"

namespace cnp::pipeline {

namespace fs = std::filesystem;

namespace {

bool finite(const Joints& joints) {
  for (const auto& joint : joints) {
    for (double value : joint) {
      if (!std::isfinite(value)) return false;
    }
  }
  return true;
}

// Empty when every number of the sample is finite; else why not, naming the sample.
std::string non_finite_reason(const float* coords, int count, const Joints& camera,
                              const SampleResult& result, const data::Sample& sample) {
  const std::string who =
      "sample " + std::to_string(sample.image_id) + " (" + sample.image_file + ")";
  for (int k = 0; k < count; ++k) {
    if (!std::isfinite(coords[k]))
      return "the network output for " + who + " is not finite (NaN or infinite weights?)";
  }
  if (!finite(camera)) {
    return "camera coordinates of " + who + " are not finite (focal length " +
           std::to_string(sample.f[0]) + ", " + std::to_string(sample.f[1]) + ", root depth " +
           std::to_string(sample.root_cam[2]) + ")";
  }
  bool errors_finite = true;
  for (const auto& mode : result.joint_error) {
    for (double value : mode) errors_finite = errors_finite && std::isfinite(value);
  }
  if (!errors_finite || !finite(result.pred_relative) || !finite(result.pred_aligned)) {
    return "the errors of " + who + " are not finite";
  }
  return "";
}

// "2026-11-26T12:00:00Z" of a steady-clock instant of this process.
std::string utc_time(Clock::time_point t) {
  const auto wall =
      std::chrono::system_clock::now() -
      std::chrono::duration_cast<std::chrono::system_clock::duration>(Clock::now() - t);
  const std::time_t seconds = std::chrono::system_clock::to_time_t(wall);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}
}  // namespace

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "unknown";
  return name;
}

void write_pass_results(RunState& state, size_t pass_index, const PassOutputs& outputs,
                        double seconds) {
  const auto& plain = outputs.plain;
  const auto& flipped = outputs.flipped;
  const auto& bad = outputs.bad;
  auto& plan = state.plan;
  const auto& pass = plan.passes[pass_index];
  const SampleSet& set = plan.sets[plan.pass_set[pass_index]];
  const auto& arch = plan.registry.get(pass.variant).arch;
  const int heatmap = arch.heatmap_size(data::kInputSize);
  const auto& info = plan.checkpoints.at(pass.checkpoint);
  const int coords_per_sample = plan.coords_per_sample();
  if (arch.joints != plan.joints) {  // validation rejects this; never read past a sample
    throw Error("variant " + pass.variant + " predicts " + std::to_string(arch.joints) +
                " joints but the data set has " + std::to_string(plan.joints));
  }
  for (size_t j : pass.jobs) {
    if (plan.job_current[j]) continue;
    const jobs::Job& job = plan.jobs[j];
    MetricsAccumulator accumulator;
    std::vector<SampleResult> results;
    std::vector<const data::Sample*> kept;
    int64_t skipped = 0;
    std::vector<float> coords(static_cast<size_t>(coords_per_sample));
    std::string non_finite;
    for (int64_t i : protocol_indices(set.set, job.protocol)) {
      if (bad[i]) {
        ++skipped;
        continue;
      }
      const float* p = plain.data() + i * coords_per_sample;
      if (job.flip) {
        const float* f = flipped.data() + i * coords_per_sample;
        for (int k = 0; k < coords_per_sample; ++k) coords[k] = (p[k] + f[k]) / 2.0f;
      } else {
        std::copy(p, p + coords_per_sample, coords.begin());
      }
      const data::Sample& sample = set.set.samples[i];
      const Joints camera = heatmap_to_camera(coords.data(), heatmap, arch.depth_dim, sample);
      results.push_back(evaluate_sample(camera, sample));
      non_finite =
          non_finite_reason(coords.data(), coords_per_sample, camera, results.back(), sample);
      if (!non_finite.empty()) break;
      accumulator.add(results.back());
      kept.push_back(&sample);
    }
    if (!non_finite.empty()) {
      // A null in a job file would break every later rerun and `cnp compare`: the
      // job fails alone, nothing is written for it, the other jobs go on.
      state.job_failures.push_back(pass.checkpoint + ": job " + job.stem() + ": " + non_finite +
                                   "; nothing was written for this job");
      spdlog::error("{}", state.job_failures.back());
      continue;
    }
    // Samples dropped while loading cannot be told apart by subject (SkippedSample has
    // only the image id), so they count for jobs over the whole sample set.
    if (job.protocol == set.key.protocol) skipped += static_cast<int64_t>(set.set.skipped.size());
    if (kept.empty()) {
      throw Error("job " + job.stem() + ": no usable samples (every image was skipped as bad)");
    }
    JobResult result;
    result.job = job;
    result.checkpoint_sha256 = info.sha256;
    result.checkpoint_epoch = info.epoch_field;
    result.architecture = arch;
    result.settings_key = plan.settings_keys[j];
    result.metrics = accumulator.summary();
    result.skipped_samples = skipped;
    result.seconds = seconds;
    result.images_per_second = seconds > 0 ? set.set.samples.size() / seconds : 0.0;
    result.ranks = state.mpi.size;
    result.sample_every = plan.config.dataset.sample_every;
    result.dataset_root = plan.config.dataset.root;
    result.precision = plan.config.runtime.precision;
    // Per-sample errors and predictions first: the job file marks the job finished.
    update_samples_file(
        (fs::path(plan.config.output) / kSamplesFile).string(),
        // Keyed like the job's files (box source included: gt and detected jobs of one sweep
        // must not share a dataset), which is how `cnp compare` finds them.
        {{job.file_stem(),
          {job.variant, job.epoch, job.protocol, job.flip, job.bbox, accumulator.samples()}}});
    write_file_atomic(jobs::job_predictions_path(plan.config.output, job),
                      predictions_to_json(results, kept, job.protocol));
    write_file_atomic(jobs::job_result_path(plan.config.output, job), job_result_to_json(result));
    jobs::remove_legacy_result(plan.config.output, job);
    plan.job_current[j] = 1;
    ++state.jobs_computed;
    ++state.jobs_finished;
    spdlog::info("job {} finished: {} {:.2f} mm over {} samples", job.stem(),
                 headline_metric(job.protocol),
                 result.metrics.overall.count(headline_metric(job.protocol))
                     ? result.metrics.overall.at(headline_metric(job.protocol))
                     : 0.0,
                 result.metrics.num_samples);
  }
}

AsyncResultWriter::AsyncResultWriter(RunState& state) : state_(state), thread_([this] { run(); }) {}

AsyncResultWriter::~AsyncResultWriter() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    closing_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

void AsyncResultWriter::submit(size_t pass_index, PassOutputs outputs, double seconds) {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] { return queue_.empty() || !error_.empty(); });
  if (!error_.empty()) return;  // reported by error(); nothing more is written
  queue_.push_back(Item{pass_index, std::move(outputs), seconds});
  changed_.notify_all();
}

std::string AsyncResultWriter::error() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return error_;
}

std::string AsyncResultWriter::flush() {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] { return (queue_.empty() && !busy_) || !error_.empty(); });
  return error_;
}

void AsyncResultWriter::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    changed_.wait(lock, [&] { return !queue_.empty() || closing_; });
    if (queue_.empty() || !error_.empty()) return;  // closing (with nothing left to write)
    Item item = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    changed_.notify_all();  // a submit waiting for room
    lock.unlock();
    std::string failure;
    try {
      BackgroundTimeInto timed(&RankTiming::metrics_write_s);
      write_pass_results(state_, item.pass_index, item.outputs, item.seconds);
    } catch (const std::bad_alloc&) {
      failure =
          "out of memory while writing the results of pass " + std::to_string(item.pass_index + 1);
    } catch (const std::exception& e) {
      failure = e.what();
      if (failure.empty()) failure = "writing the results failed";
    }
    lock.lock();
    busy_ = false;
    if (!failure.empty()) {
      error_ = failure;
      queue_.clear();
    }
    changed_.notify_all();
  }
}

void write_summary(const RunState& state, const SweepCounts& counts, bool preempted,
                   const std::vector<std::string>& rank_timings) {
  nlohmann::json summary;
  summary["passes_total"] = state.plan.passes.size();
  summary["passes_computed"] = counts.passes_computed;
  summary["passes_skipped"] = counts.passes_skipped;
  summary["jobs_total"] = state.plan.jobs.size();
  summary["jobs_computed"] = state.jobs_computed.load();
  summary["jobs_skipped"] = counts.jobs_skipped;
  summary["ranks"] = state.mpi.size;
  summary["seconds"] = std::chrono::duration<double>(Clock::now() - state.start).count();
  summary["preempted"] = preempted;
  summary["device"] = state.device;
  summary["batch_size"] = state.batch_size;
  summary["threads_per_rank"] = state.threads;
  summary["gather"] = state.gather ? state.gather->name() : "mpi";
  summary["weights_broadcast"] = state.weights ? state.weights->name() : "mpi";
  summary["jobs_failed"] = state.job_failures;
  summary["provenance"] = {{"cnp_version", CNP_VERSION},
                           {"git_commit", CNP_GIT_COMMIT},
                           {"libtorch_version", CNP_LIBTORCH_VERSION},
                           {"device", state.device},
                           {"precision", state.plan.config.runtime.precision},
                           {"hosts", state.hosts},
                           {"ranks", state.mpi.size},
                           {"started", utc_time(state.start)},
                           {"finished", utc_time(Clock::now())}};
  nlohmann::json per_rank = nlohmann::json::array();
  for (const auto& text : rank_timings) per_rank.push_back(nlohmann::json::parse(text));
  summary["timing"] = {{"wall_s", per_rank.empty() ? 0.0 : per_rank[0].value("wall_s", 0.0)},
                       {"per_rank", per_rank}};
  write_file_atomic((fs::path(state.plan.config.output) / "run_summary.json").string(),
                    summary.dump(2) + "\n");
}

void write_sweep_comparison(const Plan& plan) {
  // No job finished (every one failed alone): nothing to compare.
  if (!fs::exists(fs::path(plan.config.output) / "jobs")) return;
  std::set<std::string> stems;
  for (const auto& job : plan.jobs) stems.insert(job.file_stem());
  std::vector<JobResult> results;
  for (auto& result : load_job_results(plan.config.output)) {
    if (stems.count(result.job.file_stem())) results.push_back(std::move(result));
  }
  write_comparison(plan.config.output, results, plan.registry);
}

}  // namespace cnp::pipeline
