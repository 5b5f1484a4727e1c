#pragma once
// Prepares the next batch of normalised network inputs in the background while the model runs
// the current one (decode + crop + normalise overlap inference). A batch's samples are decoded by
// `threads` workers at once, so JPEG decoding uses all of a rank's cores, not one thread.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "model/pose_model.h"

namespace cnp::pipeline {

struct PreparedBatch {
  int64_t first = 0;  // index of the first sample (0-based, within the shard)
  int count = 0;
  std::vector<float> input;                    // count x 3 x 256 x 256, normalised (float batches)
  std::vector<uint8_t> crops;                  // count x 256 x 256 x 3 BGR (staged batches)
  std::shared_ptr<model::StagedCrops> staged;  // ... on their way to the model's device
  std::vector<uint8_t> bad;                    // per sample: 1 when its image could not be used
  std::string error;                           // non-empty: the batch failed (no skipping allowed)
};

class BatchProducer {
 public:
  // Fills `crop` (256x256x3 uint8 BGR) for shard sample i; throws cnp::Error on a
  // missing or corrupt image. Called from several threads at once (distinct indices).
  using CropSource = std::function<void(int64_t index, uint8_t* crop)>;
  // Names sample i in an error message ("sample 123 (s_11_.../..._000001.jpg)").
  using Describe = std::function<std::string(int64_t index)>;
  // Starts moving a batch's crops to the model's device (PoseModel::stage_crops). When set, the
  // producer hands out uint8 crops already in flight to the GPU, normalised there, instead of
  // normalised float batches: 4x fewer bytes, and the transfer overlaps the forward before.
  using Stage = std::function<std::shared_ptr<model::StagedCrops>(const uint8_t* crops, int n,
                                                                  const uint8_t* bad)>;

  // With skip_bad, a failing sample is marked bad (zero input) and the batch goes
  // on; without, the batch carries the first error and production stops.
  BatchProducer(int64_t count, int batch_size, bool skip_bad, CropSource source, Describe describe,
                int threads = 1, int queue_depth = 2, Stage stage = nullptr);
  ~BatchProducer();
  BatchProducer(const BatchProducer&) = delete;
  BatchProducer& operator=(const BatchProducer&) = delete;

  // Next batch in order; false when every batch has been handed out.
  bool next(PreparedBatch& out);
  // True once every sample was produced (and the source saw all of them).
  bool finished() const;

 private:
  void run();
  // Decodes and normalises one batch's samples on threads_ workers; false once stopped.
  bool fill(PreparedBatch& batch, std::vector<std::string>& errors);

  int64_t count_;
  int batch_size_;
  bool skip_bad_;
  CropSource source_;
  Describe describe_;
  Stage stage_;
  int threads_;
  size_t queue_depth_;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<PreparedBatch> queue_;
  bool stop_ = false;
  bool done_ = false;      // producer thread has exited
  bool complete_ = false;  // ... after producing every batch
  std::thread thread_;
};

}  // namespace cnp::pipeline
