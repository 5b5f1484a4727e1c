#include "pipeline/pass_executor.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <mutex>

#include "common/error.h"
#include "data/h36m.h"
#include "data/preprocess.h"
#include "model/checkpoint.h"
#include "model/pose_model.h"
#include "pipeline/batch_producer.h"
#include "pipeline/rank_timing.h"
#include "pipeline/runtime.h"
#include "pipeline/stop_signals.h"
#include "pipeline/test_hooks.h"

namespace cnp::pipeline {
namespace {

constexpr double kProgressSeconds = 5.0;

std::string sample_name(const data::Sample& sample) {
  return "sample " + std::to_string(sample.image_id) + " (" + sample.image_file + ")";
}

void log_progress(RunState& state, int64_t pass_done, int64_t pass_total, size_t pass_index,
                  bool force) {
  const auto now = Clock::now();
  const double since = std::chrono::duration<double>(now - state.last_progress).count();
  if (!force && since < kProgressSeconds) return;
  state.last_progress = now;
  const double elapsed = std::chrono::duration<double>(now - state.start).count();
  const double pass_elapsed = std::chrono::duration<double>(now - state.pass_start).count();
  const double done = state.work_computed + pass_done * state.pass_cost_per_sample;
  const double work_rate = elapsed > 0 ? done / elapsed : 0.0;
  const double rate = pass_elapsed > 0 ? pass_done / pass_elapsed : 0.0;  // this pass
  const double remaining = std::max(0.0, state.work_to_compute - done);
  const std::string eta = work_rate > 0
                              ? std::to_string(static_cast<int64_t>(remaining / work_rate)) + " s"
                              : std::string("unknown");
  spdlog::info("progress: pass {}/{} samples {}/{}, jobs {}/{} done, {:.1f} samples/s, ETA {}",
               pass_index + 1, state.plan.passes.size(), pass_done, pass_total, state.jobs_finished,
               state.plan.jobs.size(), rate, eta);
}

}  // namespace

double pass_cost_per_sample(const Plan& plan, size_t p, bool flip) {
  const auto& arch = plan.registry.get(plan.passes[p].variant).arch;
  return model::mac_count(arch) * 1e-9 * (flip ? 2 : 1);
}

PassOutcome run_pass(RunState& state, size_t pass_index, bool need_flip, PassOutputs& outputs,
                     std::vector<std::string>& errors) {
  auto& plan = state.plan;
  const auto& mpi = state.mpi;
  const auto& pass = plan.passes[pass_index];
  SampleSet& set = plan.sets[plan.pass_set[pass_index]];
  const auto& samples = set.set.samples;
  const int64_t total = static_cast<int64_t>(samples.size());
  const ShardRange shard = shard_range(total, mpi.rank, mpi.size);

  // Every rank loads the same checkpoint into the variant's architecture.
  std::unique_ptr<model::PoseModel> net;
  std::string local_error;
  try {
    // Rank 0 may still hold what validation read (read once per sweep where it fits); else it
    // reads the file. Either way it sends the weights to every other rank.
    std::shared_ptr<const model::Checkpoint> kept;
    if (mpi.rank == 0) {
      const auto it = plan.checkpoints.find(pass.checkpoint);
      if (it != plan.checkpoints.end()) kept = std::move(it->second.kept);
    }
    std::shared_ptr<const model::Checkpoint> checkpoint;
    {
      TimeInto timed(this_rank_timing().checkpoint_read_s);
      checkpoint = broadcast_checkpoint(mpi.comm, *state.weights, pass.checkpoint, kept);
    }
    model::ModelOptions options;
    options.device = state.device;
    options.precision = plan.config.runtime.precision;
    options.optimize = plan.config.runtime.optimize;
    options.threads = state.threads;
    options.flip_pairs = data::flip_pairs();
    options.variant = pass.variant;
    const auto& arch = plan.registry.get(pass.variant).arch;
    // The output buffers hold the data set's joints x 3 per sample.
    if (arch.joints != plan.joints) {
      throw Error("variant " + pass.variant + " predicts " + std::to_string(arch.joints) +
                  " joints but the data set has " + std::to_string(plan.joints));
    }
    TimeInto timed(this_rank_timing().model_build_s);
    net = model::PoseModel::load(arch, *checkpoint, options);
  } catch (const std::exception& e) {
    local_error = e.what();
  }
  if (!all_ok(mpi, local_error, &errors)) return PassOutcome::Failed;

  SampleSetState& set_state = state.set_state[plan.pass_set[pass_index]];
  CropStore& store = set_state.store;
  if (!store.enabled && state.crop_budget_bytes > 0 &&
      shard.size() * static_cast<int64_t>(data::kCropBytes) <= state.crop_budget_bytes) {
    store.enabled = true;
    store.crops.assign(static_cast<size_t>(shard.size()) * data::kCropBytes, 0);
    store.bad.assign(static_cast<size_t>(shard.size()), 0);
  }
  const bool from_store = store.enabled && store.filled;
  std::mutex cache_mutex;  // HDF5 (Debian's build) is not thread-safe; JPEG decoding is
  auto source = [&](int64_t index, uint8_t* crop) {
    uint8_t* stored = store.enabled ? store.crops.data() + index * data::kCropBytes : nullptr;
    if (from_store) {
      if (store.bad[index]) throw Error("image could not be decoded earlier in this sweep");
      std::memcpy(crop, stored, data::kCropBytes);
      return;
    }
    const data::Sample& sample = samples[shard.begin + index];
    try {
      if (set_state.cache) {
        std::lock_guard<std::mutex> lock(cache_mutex);
        set_state.cache->read_crops(shard.begin + index, 1, crop);
      } else {
        data::crop_image_file(data::image_path(set.options.root, sample), sample.bbox, crop);
      }
    } catch (...) {
      if (stored) store.bad[index] = 1;
      throw;
    }
    if (stored) std::memcpy(stored, crop, data::kCropBytes);
  };
  auto describe = [&](int64_t index) { return sample_name(samples[shard.begin + index]); };

  test_hook(mpi.rank, "alloc");
  const int coords_per_sample = plan.coords_per_sample();
  std::vector<float> local_plain(static_cast<size_t>(shard.size()) * coords_per_sample, 0.0f);
  std::vector<float> local_flipped(need_flip ? local_plain.size() : 0, 0.0f);
  std::vector<uint8_t> local_bad(static_cast<size_t>(shard.size()), 0);

  const int64_t rounds = batch_rounds(total, mpi.size, state.batch_size);
  BatchProducer producer(shard.size(), state.batch_size, plan.config.dataset.skip_bad_samples,
                         source, describe, state.threads);
  bool preempted = false;
  bool failed = false;
  int64_t pass_done = 0;
  for (int64_t round = 0; round < rounds; ++round) {
    PreparedBatch batch;
    int64_t produced = 0;
    bool got_batch = false;
    if (local_error.empty()) {
      TimeInto timed(this_rank_timing().data_wait_s);
      got_batch = producer.next(batch);
    }
    if (got_batch) {
      if (!batch.error.empty()) {
        local_error = batch.error;
      } else {
        try {
          mark_pass_forward_start();
          TimeInto timed(this_rank_timing().forward_s);
          test_hook(mpi.rank, "forward");
          net->predict(
              batch.input.data(), batch.count, local_plain.data() + batch.first * coords_per_sample,
              need_flip ? local_flipped.data() + batch.first * coords_per_sample : nullptr);
          mark_pass_forward_end();
          std::copy(batch.bad.begin(), batch.bad.end(), local_bad.begin() + batch.first);
          produced = batch.count;
        } catch (const std::exception& e) {
          local_error = std::string(pass.checkpoint) + ": inference failed: " + e.what();
        }
      }
    }
    // One cheap collective per batch: stop requests, failures, progress.
    int64_t local[3] = {stop_requested() ? 1 : 0, local_error.empty() ? 0 : 1, produced};
    int64_t summed[3] = {0, 0, 0};
    {
      TimeInto timed(this_rank_timing().collective_s);
      MPI_Allreduce(local, summed, 3, MPI_INT64_T, MPI_SUM, mpi.comm);
    }
    pass_done += summed[2];
    if (mpi.rank == 0 && round + 1 < rounds)
      log_progress(state, pass_done, total, pass_index, false);
    if (summed[1] > 0) {
      failed = true;
      break;
    }
    if (summed[0] > 0 && round + 1 < rounds) {
      preempted = true;
      break;
    }
  }
  if (failed) {
    all_ok(mpi, local_error.empty() ? std::string() : local_error, &errors);
    return PassOutcome::Failed;
  }
  if (preempted) return PassOutcome::Preempted;
  if (store.enabled && !from_store) store.filled = producer.finished();

  test_hook(mpi.rank, "gather");
  // Gather in sample order: contiguous shards in rank order are exactly that.
  std::vector<int64_t> coord_counts(mpi.size), sample_counts(mpi.size);
  for (int r = 0; r < mpi.size; ++r) {
    sample_counts[r] = shard_range(total, r, mpi.size).size();
    coord_counts[r] = sample_counts[r] * coords_per_sample;
  }
  if (mpi.rank == 0) {
    outputs.plain.assign(static_cast<size_t>(total) * coords_per_sample, 0.0f);
    outputs.flipped.assign(need_flip ? outputs.plain.size() : 0, 0.0f);
    outputs.bad.assign(static_cast<size_t>(total), 0);
  }
  TimeInto timed(this_rank_timing().collective_s);
  state.gather->gather(local_plain.data(), coord_counts, outputs.plain.data());
  if (need_flip) state.gather->gather(local_flipped.data(), coord_counts, outputs.flipped.data());
  gather_bytes(mpi.comm, local_bad.data(), sample_counts, outputs.bad.data());
  if (mpi.rank == 0) log_progress(state, total, total, pass_index, true);
  return PassOutcome::Done;
}

}  // namespace cnp::pipeline
