#include "pipeline/model_prefetch.h"

#include <new>

#include "common/error.h"
#include "data/h36m.h"
#include "pipeline/rank_timing.h"

namespace cnp::pipeline {

ModelPrefetch::ModelPrefetch(RunState& state) : state_(state) {}

ModelPrefetch::~ModelPrefetch() {
  join_reader();
  join_builder();
}

void ModelPrefetch::join_reader() {
  if (reader_.joinable()) reader_.join();
}

void ModelPrefetch::join_builder() {
  if (builder_.joinable()) builder_.join();
}

void ModelPrefetch::start_read(size_t pass) {
  if (read_pass_ != kNone) return;
  const auto& path = state_.plan.passes[pass].checkpoint;
  // Validation may have kept this checkpoint (taken here, on the main thread: the
  // plan is not touched from the reader).
  std::shared_ptr<const model::Checkpoint> kept;
  const auto it = state_.plan.checkpoints.find(path);
  if (it != state_.plan.checkpoints.end()) kept = std::move(it->second.kept);
  read_pass_ = pass;
  read_finished_ = false;
  const bool pack = state_.mpi.size > 1;
  reader_ = std::thread([this, path, kept = std::move(kept), pack]() mutable {
    {
      BackgroundTimeInto timed(&RankTiming::checkpoint_read_s);
      read_ = prepare_checkpoint(path, std::move(kept), pack);
    }
    read_finished_ = true;
  });
}

bool ModelPrefetch::read_done(size_t pass) const {
  return read_pass_ == pass && read_finished_.load();
}

std::shared_ptr<model::PoseModel> ModelPrefetch::build(
    size_t pass, std::shared_ptr<const model::Checkpoint> checkpoint,
    std::vector<uint8_t>& packed) const {
  const auto& plan = state_.plan;
  const auto& p = plan.passes[pass];
  if (!checkpoint) {
    checkpoint = std::make_shared<const model::Checkpoint>(unpack_checkpoint(packed));
    std::vector<uint8_t>().swap(packed);
  }
  const auto& arch = plan.registry.get(p.variant).arch;
  // The output buffers hold the data set's joints x 3 per sample.
  if (arch.joints != plan.joints) {
    throw Error("variant " + p.variant + " predicts " + std::to_string(arch.joints) +
                " joints but the data set has " + std::to_string(plan.joints));
  }
  model::ModelOptions options;
  options.device = state_.device;
  options.precision = plan.config.runtime.precision;
  options.optimize = plan.config.runtime.optimize;
  options.threads = state_.threads;
  options.flip_pairs = data::flip_pairs();
  options.variant = p.variant;
  return model::PoseModel::load(arch, *checkpoint, options);
}

void ModelPrefetch::send(size_t pass, bool in_background) {
  join_builder();  // a model that was never taken (a preempted pass) is dropped
  model_.reset();
  error_.clear();
  slot_pass_ = pass;
  PreparedCheckpoint prepared;
  std::vector<uint8_t> packed;
  std::shared_ptr<const model::Checkpoint> checkpoint;
  {
    TimeInto timed(this_rank_timing().checkpoint_read_s);
    if (state_.mpi.rank == 0) {
      if (read_pass_ != pass) {
        join_reader();  // a read for another pass (none in the runner's order) is dropped
        read_pass_ = kNone;
        start_read(pass);
      }
      join_reader();
      prepared = std::move(read_);
      read_ = PreparedCheckpoint();
      read_pass_ = kNone;
    }
    try {
      checkpoint =
          broadcast_prepared(state_.mpi.comm, *state_.weights, std::move(prepared), &packed);
    } catch (const std::exception& e) {
      error_ = e.what();  // rank 0's read error, on every rank
      return;
    }
  }
  auto make = [this, pass, checkpoint = std::move(checkpoint),
               packed = std::move(packed)]() mutable {
    try {
      model_ = build(pass, std::move(checkpoint), packed);
    } catch (const std::bad_alloc&) {
      error_ = state_.plan.passes[pass].checkpoint + ": out of memory while building the model";
    } catch (const std::exception& e) {
      error_ = e.what();
      if (error_.empty()) error_ = state_.plan.passes[pass].checkpoint + ": model build failed";
    }
  };
  if (in_background) {
    builder_ = std::thread([make = std::move(make)]() mutable {
      BackgroundTimeInto timed(&RankTiming::model_build_s);
      make();
    });
  } else {
    TimeInto timed(this_rank_timing().model_build_s);
    make();
  }
}

void ModelPrefetch::reuse(size_t pass, std::shared_ptr<model::PoseModel> model) {
  join_builder();
  error_.clear();
  slot_pass_ = pass;
  model_ = std::move(model);
}

std::shared_ptr<model::PoseModel> ModelPrefetch::take(size_t pass) {
  if (slot_pass_ != pass)
    throw Error("internal: the model of pass " + std::to_string(pass + 1) + " was never sent");
  {
    TimeInto timed(this_rank_timing().model_build_s);
    join_builder();
  }
  slot_pass_ = kNone;
  if (!error_.empty()) {
    model_.reset();
    throw Error(error_);
  }
  return std::move(model_);
}

}  // namespace cnp::pipeline
