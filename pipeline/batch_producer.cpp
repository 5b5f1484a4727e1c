#include "pipeline/batch_producer.h"

#include <algorithm>
#include <exception>

#include "data/preprocess.h"

namespace cnp::pipeline {

BatchProducer::BatchProducer(int64_t count, int batch_size, bool skip_bad, CropSource source,
                             Describe describe, int queue_depth)
    : count_(count),
      batch_size_(std::max(1, batch_size)),
      skip_bad_(skip_bad),
      source_(std::move(source)),
      describe_(std::move(describe)),
      queue_depth_(static_cast<size_t>(std::max(1, queue_depth))) {
  thread_ = std::thread([this] { run(); });
}

BatchProducer::~BatchProducer() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

void BatchProducer::run() {
  std::vector<uint8_t> crop(data::kCropBytes);
  bool failed = false;
  for (int64_t first = 0; first < count_ && !failed; first += batch_size_) {
    PreparedBatch batch;
    batch.first = first;
    batch.count = static_cast<int>(std::min<int64_t>(batch_size_, count_ - first));
    batch.input.assign(static_cast<size_t>(batch.count) * data::kInputFloats, 0.0f);
    batch.bad.assign(batch.count, 0);
    for (int i = 0; i < batch.count; ++i) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (stop_) break;
      }
      const int64_t index = first + i;
      try {
        source_(index, crop.data());
        data::normalize_crop(crop.data(),
                             batch.input.data() + static_cast<size_t>(i) * data::kInputFloats);
      } catch (const std::exception& e) {
        if (skip_bad_) {
          batch.bad[i] = 1;
          continue;
        }
        batch.error = describe_(index) + ": " + e.what();
        failed = true;
        break;
      }
    }
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [this] { return stop_ || queue_.size() < queue_depth_; });
    if (stop_) break;
    queue_.push_back(std::move(batch));
    changed_.notify_all();
  }
  std::lock_guard<std::mutex> lock(mutex_);
  complete_ = !failed && !stop_;
  done_ = true;
  changed_.notify_all();
}

bool BatchProducer::next(PreparedBatch& out) {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [this] { return !queue_.empty() || done_; });
  if (queue_.empty()) return false;
  out = std::move(queue_.front());
  queue_.pop_front();
  changed_.notify_all();
  return true;
}

bool BatchProducer::finished() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return complete_ && queue_.empty();
}

}  // namespace cnp::pipeline
