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
#include "pipeline/model_prefetch.h"
#include "pipeline/rank_timing.h"
#include "pipeline/result_writer.h"
#include "pipeline/runtime.h"
#include "pipeline/samples_h5.h"
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
               pass_index + 1, state.plan.passes.size(), pass_done, pass_total,
               state.jobs_finished.load(), state.plan.jobs.size(), rate, eta);
}

}  // namespace

double pass_cost_per_sample(const Plan& plan, size_t p, bool flip) {
  const auto& arch = plan.registry.get(plan.passes[p].variant).arch;
  return model::mac_count(arch) * 1e-9 * (flip ? 2 : 1);
}

PassOutcome run_pass(RunState& state, size_t pass_index, bool need_flip, const PassLinks& links,
                     PassOutputs& outputs, std::vector<std::string>& errors) {
  auto& plan = state.plan;
  const auto& mpi = state.mpi;
  const auto& pass = plan.passes[pass_index];
  SampleSet& set = plan.sets[plan.pass_set[pass_index]];
  const auto& samples = set.set.samples;
  const int64_t total = static_cast<int64_t>(samples.size());
  const ShardRange shard = shard_range(total, mpi.rank, mpi.size);
  ModelPrefetch& models = *links.models;
  const size_t next = links.next_pass;
  const bool has_next = next != PassLinks::kNoPass;

  // Every rank loads the same checkpoint into the variant's architecture: made during
  // the previous pass where it could be (model_prefetch.h), else now. Rank 0 reads the
  // file, or takes what validation kept, and sends the weights to every other rank.
  std::shared_ptr<model::PoseModel> net;
  std::string local_error;
  const auto model_start = Clock::now();
  const bool prepared = models.sent(pass_index);
  try {
    if (!prepared) models.send(pass_index, /*in_background=*/false);
    net = models.take(pass_index);
  } catch (const std::exception& e) {
    local_error = e.what();
  }
  spdlog::debug("pass {}: model {} in {:.3f} s", pass_index + 1,
                prepared ? "made during the previous pass, taken" : "read and built",
                std::chrono::duration<double>(Clock::now() - model_start).count());
  // The next pass's model: this one again when the weights and variant are the same,
  // else rank 0 starts reading its checkpoint now, beside this pass.
  if (local_error.empty() && has_next) {
    const auto& next_pass = plan.passes[next];
    if (next_pass.checkpoint == pass.checkpoint && next_pass.variant == pass.variant) {
      models.reuse(next, net);
    } else if (mpi.rank == 0) {
      models.start_read(next);
    }
  }
  // Rank 0's writing of earlier passes failed: every rank stops here.
  if (local_error.empty() && links.writer) local_error = links.writer->error();
  bool stop = false;
  if (!all_ok(mpi, local_error, &errors, stop_requested(), &stop)) return PassOutcome::Failed;
  if (stop) return PassOutcome::Preempted;

  SampleSetState& set_state = state.set_state[plan.pass_set[pass_index]];
  CropStore& store = set_state.store;
  if (!store.enabled && state.crop_budget_bytes > 0 &&
      shard.size() * static_cast<int64_t>(data::kCropBytes) <= state.crop_budget_bytes) {
    store.enabled = true;
    store.crops.assign(static_cast<size_t>(shard.size()) * data::kCropBytes, 0);
    store.bad.assign(static_cast<size_t>(shard.size()), 0);
  }
  const bool from_store = store.enabled && store.filled;
  std::mutex cache_mutex;  // one reader of the cache at a time (it shares its HDF5 handles)
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
        const auto hdf5 = hdf5_guard();  // rank 0's result writer may be in HDF5 too
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
  // On a GPU, crops travel as uint8 through pinned memory and are normalised there.
  BatchProducer::Stage stage;
  if (state.device.rfind("cuda", 0) == 0)
    stage = [&net](const uint8_t* crops, int n, const uint8_t* bad) {
      return net->stage_crops(crops, n, bad);
    };
  BatchProducer producer(shard.size(), state.batch_size, plan.config.dataset.skip_bad_samples,
                         source, describe, state.threads, 2, stage);
  bool preempted = false;
  bool failed = false;
  int64_t pass_done = 0;
  // One small collective per batch: stop requests, failures, progress, and whether rank
  // 0 holds the next pass's checkpoint. Non-blocking: it completes while the next batch
  // runs and is acted on after it, so the ranks do not wait for each other at every
  // batch; a stop or failure takes effect one batch later than it is raised.
  int64_t local[4] = {0, 0, 0, 0};
  int64_t summed[4] = {0, 0, 0, 0};
  MPI_Request check = MPI_REQUEST_NULL;
  bool pending = false;
  // Completes the outstanding check; false when the pass ends there. `last`: no batch
  // is left to compute, so a stop lets the pass finish (the next pass start sees it).
  auto settle = [&](bool last) {
    {
      TimeInto timed(this_rank_timing().collective_s);
      MPI_Wait(&check, MPI_STATUS_IGNORE);
    }
    pending = false;
    pass_done += summed[2];
    if (mpi.rank == 0 && !last) log_progress(state, pass_done, total, pass_index, false);
    if (summed[1] > 0) {
      failed = true;
      return false;
    }
    // Rank 0 has read the next checkpoint: it goes to every rank between two batches,
    // and every rank builds the model in the background.
    if (summed[3] > 0 && has_next && !models.sent(next)) models.send(next, /*in_background=*/true);
    if (summed[0] > 0 && !last) {
      preempted = true;
      return false;
    }
    return true;
  };
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
          float* plain = local_plain.data() + batch.first * coords_per_sample;
          float* flipped =
              need_flip ? local_flipped.data() + batch.first * coords_per_sample : nullptr;
          if (batch.staged)
            net->predict_staged(*batch.staged, plain, flipped);
          else
            net->predict(batch.input.data(), batch.count, plain, flipped);
          mark_pass_forward_end();
          std::copy(batch.bad.begin(), batch.bad.end(), local_bad.begin() + batch.first);
          produced = batch.count;
        } catch (const std::exception& e) {
          local_error = std::string(pass.checkpoint) + ": inference failed: " + e.what();
        }
      }
    }
    if (pending && !settle(round + 1 == rounds)) break;
    if (mpi.rank == 0 && local_error.empty() && links.writer) local_error = links.writer->error();
    local[0] = stop_requested() ? 1 : 0;
    local[1] = local_error.empty() ? 0 : 1;
    local[2] = produced;
    local[3] = mpi.rank == 0 && has_next && !models.sent(next) && models.read_done(next) ? 1 : 0;
    {
      TimeInto timed(this_rank_timing().collective_s);
      MPI_Iallreduce(local, summed, 4, MPI_INT64_T, MPI_SUM, mpi.comm, &check);
    }
    pending = true;
  }
  if (pending) settle(/*last=*/true);
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
