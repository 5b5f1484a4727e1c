#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <set>
#include <thread>

#include "common/error.h"
#include "data/preprocess.h"
#include "pipeline/batch_producer.h"

namespace cnp::pipeline {
namespace {

// A crop whose bytes encode the sample index, so order mistakes show.
void fake_crop(int64_t index, uint8_t* crop) {
  for (int i = 0; i < data::kCropBytes; ++i) crop[i] = static_cast<uint8_t>((index * 7 + i) % 251);
}

std::string describe(int64_t index) {
  return "sample " + std::to_string(index);
}

TEST(SweepBatchProducer, BatchesInOrderWithNormalisedInputs) {
  const int64_t count = 11;
  BatchProducer producer(count, 4, false, fake_crop, describe);
  std::vector<uint8_t> crop(data::kCropBytes);
  std::vector<float> expected(data::kInputFloats);
  PreparedBatch batch;
  int64_t next_first = 0;
  std::vector<int> sizes;
  while (producer.next(batch)) {
    ASSERT_TRUE(batch.error.empty());
    EXPECT_EQ(batch.first, next_first);
    sizes.push_back(batch.count);
    for (int i = 0; i < batch.count; ++i) {
      fake_crop(batch.first + i, crop.data());
      data::normalize_crop(crop.data(), expected.data());
      EXPECT_EQ(0, std::memcmp(expected.data(), batch.input.data() + i * data::kInputFloats,
                               sizeof(float) * data::kInputFloats))
          << "sample " << batch.first + i;
      EXPECT_EQ(batch.bad[i], 0);
    }
    next_first += batch.count;
  }
  EXPECT_EQ(sizes, (std::vector<int>{4, 4, 3}));
  EXPECT_TRUE(producer.finished());
}

TEST(SweepBatchProducer, BadSamplesAreSkippedOrFail) {
  auto source = [](int64_t index, uint8_t* crop) {
    if (index == 2 || index == 5) throw Error("img" + std::to_string(index) + ".jpg: corrupt JPEG");
    fake_crop(index, crop);
  };
  {
    BatchProducer producer(7, 3, true, source, describe);
    PreparedBatch batch;
    std::set<int64_t> bad;
    while (producer.next(batch)) {
      EXPECT_TRUE(batch.error.empty());
      for (int i = 0; i < batch.count; ++i) {
        if (batch.bad[i]) bad.insert(batch.first + i);
      }
    }
    EXPECT_EQ(bad, (std::set<int64_t>{2, 5}));
    EXPECT_TRUE(producer.finished());
  }
  {
    BatchProducer producer(7, 3, false, source, describe);
    PreparedBatch batch;
    ASSERT_TRUE(producer.next(batch));
    EXPECT_EQ(batch.error, "sample 2: img2.jpg: corrupt JPEG");
    EXPECT_FALSE(producer.next(batch));  // production stops at the first failure
    EXPECT_FALSE(producer.finished());
  }
}

TEST(SweepBatchProducer, StopsCleanlyWhenAbandoned) {
  std::atomic<int64_t> produced{0};
  {
    BatchProducer producer(
        1000, 2, false,
        [&](int64_t index, uint8_t* crop) {
          ++produced;
          fake_crop(index, crop);
        },
        describe);
    PreparedBatch batch;
    ASSERT_TRUE(producer.next(batch));
  }  // destructor must not wait for all 1000 samples
  EXPECT_LT(produced.load(), 1000);
}

// The GPU data path, run on the CPU: the producer hands out uint8 crops already staged for the
// model, and the model's own normalisation gives exactly the float path's coordinates, bad
// (skipped) samples included.
TEST(SweepBatchProducer, StagedCropsGiveTheFloatPathsCoordinates) {
  model::Architecture arch;
  arch.depths = {1, 1, 2, 1};
  arch.dims = {8, 16, 24, 32};
  arch.head_channels = 16;
  arch.head_upsample = {true, true, false};
  arch.depth_dim = 8;
  model::ModelOptions options;
  options.flip_pairs = {{1, 4}, {2, 5}, {3, 6}, {14, 11}, {15, 12}, {16, 13}};
  const auto net = model::PoseModel::random(arch, 3, options);
  auto source = [](int64_t index, uint8_t* crop) {
    if (index == 4) throw Error("img4.jpg: corrupt JPEG");
    fake_crop(index, crop);
  };
  auto stage = [&net](const uint8_t* crops, int n, const uint8_t* bad) {
    return net->stage_crops(crops, n, bad);
  };
  BatchProducer staged(7, 3, true, source, describe, 2, 2, stage);
  BatchProducer floats(7, 3, true, source, describe, 2, 2);
  PreparedBatch a, b;
  const size_t per_sample = static_cast<size_t>(arch.joints) * 3;
  int batches = 0;
  while (staged.next(a)) {
    ASSERT_TRUE(floats.next(b));
    ASSERT_TRUE(a.error.empty()) << a.error;
    ASSERT_TRUE(a.staged);
    EXPECT_TRUE(a.input.empty());  // no float batch made on this path
    EXPECT_EQ(a.bad, b.bad);
    std::vector<float> pa(a.count * per_sample), fa(pa.size()), pb(pa.size()), fb(pa.size());
    net->predict_staged(*a.staged, pa.data(), fa.data());
    net->predict(b.input.data(), b.count, pb.data(), fb.data());
    EXPECT_EQ(pa, pb) << "batch at " << a.first;
    EXPECT_EQ(fa, fb) << "batch at " << a.first;
    ++batches;
  }
  EXPECT_EQ(batches, 3);
  EXPECT_FALSE(floats.next(b));
}

}  // namespace
}  // namespace cnp::pipeline

namespace cnp::pipeline {
namespace {

// Several decode workers: the same inputs as one, sources really run at once, and the error
// reported is the first failing sample in sample order, not the first to fail in time.
TEST(SweepBatchProducer, DecodeThreadsGiveTheSameBatchesAndTheFirstErrorInOrder) {
  std::atomic<int> running{0}, most_at_once{0};
  auto slow_source = [&](int64_t index, uint8_t* crop) {
    const int now = ++running;
    int seen = most_at_once.load();
    while (now > seen && !most_at_once.compare_exchange_weak(seen, now)) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(index == 9 ? 1 : 20));
    --running;
    if (index == 6 || index == 9) throw Error("img" + std::to_string(index) + ".jpg: corrupt");
    fake_crop(index, crop);
  };
  std::vector<float> single, multi;
  for (int threads : {1, 4}) {
    auto& out = threads == 1 ? single : multi;
    BatchProducer producer(12, 8, true, slow_source, describe, threads);
    PreparedBatch batch;
    while (producer.next(batch)) {
      for (int i = 0; i < batch.count; ++i) {
        const int64_t index = batch.first + i;
        EXPECT_EQ(batch.bad[i], index == 6 || index == 9 ? 1 : 0) << "sample " << index;
      }
      out.insert(out.end(), batch.input.begin(), batch.input.end());
    }
  }
  EXPECT_GE(most_at_once.load(), 2);
  ASSERT_EQ(single.size(), multi.size());
  EXPECT_EQ(0, std::memcmp(single.data(), multi.data(), sizeof(float) * single.size()));

  BatchProducer failing(12, 12, false, slow_source, describe, 4);
  PreparedBatch batch;
  ASSERT_TRUE(failing.next(batch));
  EXPECT_EQ(batch.error, "sample 6: img6.jpg: corrupt");
  EXPECT_FALSE(failing.next(batch));
  EXPECT_FALSE(failing.finished());
}

}  // namespace
}  // namespace cnp::pipeline
