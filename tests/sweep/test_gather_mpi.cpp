// Runs under `mpirun -np 3`: the MPI gather puts every rank's block on rank 0 in
// rank order, including ranks with an empty block.
#include <gtest/gtest.h>
#include <mpi.h>

#include "pipeline/gather.h"
#include "pipeline/runtime.h"

namespace cnp::pipeline {
namespace {

TEST(SweepGather, BlocksArriveInRankOrder) {
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  for (int64_t total : {0, 2, 7, 100}) {  // 2 samples over 3 ranks leaves rank 0 empty
    std::vector<int64_t> counts(size), byte_counts(size);
    for (int r = 0; r < size; ++r) {
      byte_counts[r] = shard_range(total, r, size).size();
      counts[r] = byte_counts[r] * 3;
    }
    const ShardRange mine = shard_range(total, rank, size);
    std::vector<float> local;
    std::vector<uint8_t> local_bytes;
    for (int64_t i = mine.begin; i < mine.end; ++i) {
      for (int k = 0; k < 3; ++k) local.push_back(static_cast<float>(i * 10 + k) + 0.25f);
      local_bytes.push_back(static_cast<uint8_t>(i % 256));
    }
    std::vector<float> all(rank == 0 ? total * 3 : 0, -1.0f);
    std::vector<uint8_t> all_bytes(rank == 0 ? total : 0, 255);
    auto gather = make_mpi_gather(MPI_COMM_WORLD);
    gather->gather(local.data(), counts, all.data());
    gather_bytes(MPI_COMM_WORLD, local_bytes.data(), byte_counts, all_bytes.data());
    if (rank == 0) {
      for (int64_t i = 0; i < total; ++i) {
        for (int k = 0; k < 3; ++k) {
          ASSERT_EQ(all[i * 3 + k], static_cast<float>(i * 10 + k) + 0.25f) << "sample " << i;
        }
        ASSERT_EQ(all_bytes[i], static_cast<uint8_t>(i % 256));
      }
    }
  }
}

}  // namespace
}  // namespace cnp::pipeline

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  // Only rank 0 prints; every rank's failure counts through the reduction.
  if (rank != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int failed = RUN_ALL_TESTS() != 0 ? 1 : 0, any_failed = 0;
  MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  return any_failed;
}
