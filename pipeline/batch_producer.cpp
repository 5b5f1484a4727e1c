#include "pipeline/batch_producer.h"

#include <algorithm>
#include <atomic>
#include <exception>

#include "data/preprocess.h"

namespace cnp::pipeline {

BatchProducer::BatchProducer(int64_t count, int batch_size, bool skip_bad, CropSource source,
                             Describe describe, int threads, int queue_depth, Stage stage)
    : count_(count),
      batch_size_(std::max(1, batch_size)),
      skip_bad_(skip_bad),
      source_(std::move(source)),
      describe_(std::move(describe)),
      stage_(std::move(stage)),
      threads_(std::max(1, threads)),
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

bool BatchProducer::fill(PreparedBatch& batch, std::vector<std::string>& errors) {
  std::atomic<int> next_sample{0};
  std::atomic<bool> stopped{false};
  auto work = [&] {
    std::vector<uint8_t> crop(data::kCropBytes);
    for (int i = next_sample++; i < batch.count; i = next_sample++) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (stop_) {
          stopped = true;
          return;
        }
      }
      try {
        if (stage_) {
          source_(batch.first + i, batch.crops.data() + static_cast<size_t>(i) * data::kCropBytes);
          continue;
        }
        source_(batch.first + i, crop.data());
        data::normalize_crop(crop.data(),
                             batch.input.data() + static_cast<size_t>(i) * data::kInputFloats);
      } catch (const std::exception& e) {
        errors[i] = e.what();
        if (errors[i].empty()) errors[i] = "unknown error";
      }
    }
  };
  std::vector<std::thread> helpers;
  for (int t = 1; t < std::min(threads_, batch.count); ++t) helpers.emplace_back(work);
  work();
  for (auto& helper : helpers) helper.join();
  return !stopped;
}

void BatchProducer::run() {
  bool failed = false;
  for (int64_t first = 0; first < count_ && !failed; first += batch_size_) {
    PreparedBatch batch;
    batch.first = first;
    batch.count = static_cast<int>(std::min<int64_t>(batch_size_, count_ - first));
    if (stage_)
      batch.crops.assign(static_cast<size_t>(batch.count) * data::kCropBytes, 0);
    else
      batch.input.assign(static_cast<size_t>(batch.count) * data::kInputFloats, 0.0f);
    batch.bad.assign(batch.count, 0);
    std::vector<std::string> errors(batch.count);
    if (!fill(batch, errors)) break;
    // The first failing sample in sample order decides, whatever order the workers ran in.
    for (int i = 0; i < batch.count && !failed; ++i) {
      if (errors[i].empty()) continue;
      if (skip_bad_) {
        batch.bad[i] = 1;
        if (!stage_)
          std::fill_n(batch.input.data() + static_cast<size_t>(i) * data::kInputFloats,
                      data::kInputFloats, 0.0f);
        continue;
      }
      batch.error = describe_(batch.first + i) + ": " + errors[i];
      failed = true;
    }
    if (stage_ && !failed) {
      try {
        batch.staged = stage_(batch.crops.data(), batch.count, batch.bad.data());
        batch.crops = {};  // staging copied them
      } catch (const std::exception& e) {
        batch.error = e.what();
        failed = true;
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
