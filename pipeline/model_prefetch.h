#pragma once
// The next pass's model, made while the current pass runs, so that the time between
// passes is not spent reading a checkpoint and building a network:
//   1. rank 0 reads the next pass's checkpoint (or takes the one validation kept) and
//      packs it on a background thread, at the start of the current pass (no MPI);
//   2. once that is done, the ranks agree on it in the pass's per-batch check, and the
//      main threads broadcast it (MPI_Bcast or NCCL) between two batches;
//   3. every rank unpacks and builds the model on a background thread while its
//      remaining batches run; the next pass takes it.
// Every MPI call stays on the main thread (MPI is initialised MPI_THREAD_FUNNELED).
// At most one checkpoint is held ahead: one read, one build at a time.
// The first pass (nothing to overlap) and a pass too short to hide the read do the same
// steps at their start, on the main thread.
#include <atomic>
#include <cstddef>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "model/pose_model.h"
#include "pipeline/pass_executor.h"
#include "pipeline/weight_broadcast.h"

namespace cnp::pipeline {

class ModelPrefetch {
 public:
  explicit ModelPrefetch(RunState& state);
  // Joins its threads: a read or a build that is under way finishes first (bounded).
  ~ModelPrefetch();
  ModelPrefetch(const ModelPrefetch&) = delete;
  ModelPrefetch& operator=(const ModelPrefetch&) = delete;

  // Rank 0, no MPI: starts reading pass `pass`'s checkpoint on a background thread.
  // Ignored while a read is held for another pass (one checkpoint ahead at most).
  void start_read(size_t pass);
  // Rank 0: the read for `pass` has finished (non-blocking).
  bool read_done(size_t pass) const;
  // Collective, every rank with the same `pass`: rank 0 waits for its read (starting it
  // if it has not), the checkpoint reaches every rank, and each builds the model, on a
  // background thread when `in_background` (else here). A read, broadcast or build
  // error is kept for take(), identical on every rank where it is rank 0's.
  void send(size_t pass, bool in_background);
  bool sent(size_t pass) const { return slot_pass_ == pass; }
  // No MPI, every rank alike: pass `pass` runs the same weights and variant as `model`.
  void reuse(size_t pass, std::shared_ptr<model::PoseModel> model);
  // Pass `pass`'s model (sent or reused before), waiting for its build; throws the
  // error (one line naming the checkpoint).
  std::shared_ptr<model::PoseModel> take(size_t pass);

 private:
  std::shared_ptr<model::PoseModel> build(size_t pass,
                                          std::shared_ptr<const model::Checkpoint> checkpoint,
                                          std::vector<uint8_t>& packed) const;
  void join_reader();
  void join_builder();

  RunState& state_;
  static constexpr size_t kNone = static_cast<size_t>(-1);
  // Rank 0's read.
  std::thread reader_;
  size_t read_pass_ = kNone;
  std::atomic<bool> read_finished_{false};
  PreparedCheckpoint read_;
  // The model of the pass that was sent (or reused), built or being built.
  std::thread builder_;
  size_t slot_pass_ = kNone;
  std::shared_ptr<model::PoseModel> model_;
  std::string error_;
};

}  // namespace cnp::pipeline
