#include <gtest/gtest.h>

#include "common/error.h"
#include "pipeline/runtime.h"

namespace cnp::pipeline {
namespace {

TEST(SweepRuntime, ShardsPartitionSamplesExactly) {
  for (int64_t total = 0; total <= 40; ++total) {
    for (int ranks = 1; ranks <= 7; ++ranks) {
      int64_t expected_begin = 0;
      int64_t smallest = total, largest = 0;
      for (int r = 0; r < ranks; ++r) {
        const ShardRange shard = shard_range(total, r, ranks);
        EXPECT_EQ(shard.begin, expected_begin) << total << " samples, rank " << r << "/" << ranks;
        EXPECT_LE(shard.begin, shard.end);
        expected_begin = shard.end;
        smallest = std::min(smallest, shard.size());
        largest = std::max(largest, shard.size());
        // Every rank's batches fit in the agreed number of rounds.
        for (int batch : {1, 2, 3, 8}) {
          EXPECT_LE((shard.size() + batch - 1) / batch, batch_rounds(total, ranks, batch));
        }
      }
      EXPECT_EQ(expected_begin, total);
      EXPECT_LE(largest - smallest, 1);
      EXPECT_EQ(largest, max_shard_size(total, ranks));
    }
  }
  EXPECT_EQ(shard_range(10, 1, 3).begin, 3);
  EXPECT_EQ(shard_range(10, 2, 3).begin, 6);
  EXPECT_EQ(shard_range(10, 2, 3).end, 10);
  EXPECT_THROW(shard_range(10, 3, 3), Error);
}

TEST(SweepRuntime, ThreadsPerRank) {
  EXPECT_EQ(resolve_threads_per_rank(3, "8", 16, 2), 3);      // configured wins
  EXPECT_EQ(resolve_threads_per_rank(0, "6", 16, 2), 6);      // then Slurm
  EXPECT_EQ(resolve_threads_per_rank(0, nullptr, 16, 4), 4);  // then cores / local ranks
  EXPECT_EQ(resolve_threads_per_rank(0, "", 16, 4), 4);
  EXPECT_EQ(resolve_threads_per_rank(0, "abc", 16, 4), 4);   // junk is ignored
  EXPECT_EQ(resolve_threads_per_rank(0, nullptr, 2, 3), 1);  // never 0
  EXPECT_EQ(resolve_threads_per_rank(0, nullptr, 0, 1), 1);
  EXPECT_EQ(resolve_threads_per_rank(64, nullptr, 16, 1), 64);  // 4 x cores is the limit
  try {
    resolve_threads_per_rank(65, nullptr, 16, 1);
    ADD_FAILURE() << "65 threads on 16 cores accepted";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "runtime.threads_per_rank: 65 threads per rank exceed 4 x the 16 hardware cores "
                 "of this node (64)");
  }
  EXPECT_THROW(resolve_threads_per_rank(0, "1000", 16, 1), Error);  // Slurm's value too
}

// The GPU is the node-local MPI rank; never shared by two ranks.
TEST(SweepRuntime, OneRankPerGpu) {
  EXPECT_EQ(cuda_device_for_rank(0, 1, 1), 0);
  EXPECT_EQ(cuda_device_for_rank(2, 4, 4), 2);
  EXPECT_EQ(cuda_device_for_rank(1, 2, 8), 1);  // spare GPUs are fine
  try {
    cuda_device_for_rank(3, 5, 4);
    FAIL() << "5 ranks on 4 GPUs accepted";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "runtime.device: 5 ranks on this node but only 4 GPU(s); start one rank per GPU");
  }
  EXPECT_THROW(resolve_device("auto", true, 2, 0, 3), Error);
  EXPECT_THROW(cuda_device_for_rank(2, 2, 4), Error);  // not a local rank
}

TEST(SweepRuntime, DeviceAndBatchSize) {
  EXPECT_EQ(resolve_device("auto", false, 0, 0, 1), "cpu");
  EXPECT_EQ(resolve_device("auto", true, 4, 3, 4), "cuda:3");
  EXPECT_EQ(resolve_device("cuda", true, 2, 1, 2), "cuda:1");
  EXPECT_EQ(resolve_device("cpu", true, 2, 0, 8), "cpu");  // CPU ranks need no GPU each
  try {
    resolve_device("cuda", false, 0, 0, 1);
    FAIL() << "cuda without devices must fail";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("runtime.device"), std::string::npos);
  }
  EXPECT_THROW(resolve_device("tpu", false, 0, 0, 1), Error);
  EXPECT_EQ(resolve_batch_size(0, "cpu"), 8);
  EXPECT_EQ(resolve_batch_size(0, "cuda:0"), 64);
  EXPECT_EQ(resolve_batch_size(5, "cuda:0"), 5);
  EXPECT_EQ(cuda_device_index("cuda:3"), 3);
  EXPECT_EQ(cuda_device_index("cuda"), 0);
  EXPECT_TRUE(is_cuda_device("cuda:0"));
  EXPECT_FALSE(is_cuda_device("cpu"));
}

}  // namespace
}  // namespace cnp::pipeline
