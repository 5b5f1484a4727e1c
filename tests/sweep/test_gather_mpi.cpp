// Runs under `mpirun -np 3`: the MPI gather puts every rank's block on rank 0 in
// rank order, including ranks with an empty block.
#include <gtest/gtest.h>
#include <mpi.h>

#include <filesystem>

#include "common/error.h"
#include "pipeline/gather.h"
#include "pipeline/runtime.h"
#include "pipeline/weight_broadcast.h"

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

model::TensorData tensor(model::DType dtype, std::vector<int64_t> shape, int seed) {
  model::TensorData t;
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.bytes.resize(static_cast<size_t>(t.numel()) * model::dtype_size(dtype));
  for (size_t i = 0; i < t.bytes.size(); ++i) t.bytes[i] = static_cast<uint8_t>(i * 31 + seed);
  return t;
}

// Rank 0 reads the file; every rank gets the tensors and description rank 0 read, or rank 0's
// error, the same on every rank.
TEST(SweepWeightBroadcast, EveryRankGetsRankZerosCheckpointOrItsError) {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  const std::string dir = std::string(CNP_TEST_WORK) + "/sweep_weight_broadcast";
  const std::string path = dir + "/snapshot_7.pth.tar";
  model::NamedTensors tensors = {
      {"backbone.stem.weight", tensor(model::DType::Float32, {4, 3, 2, 2}, 1)},
      {"head.norm.num_batches_tracked", tensor(model::DType::Int64, {}, 2)},
      {"head.final_layer.bias", tensor(model::DType::Float16, {5}, 3)},
      {"empty", tensor(model::DType::Float32, {0, 3}, 4)}};
  if (rank == 0) {
    std::filesystem::create_directories(dir);
    model::write_checkpoint_zip(path, tensors, 7, "snapshot_7.pth");
  }
  MPI_Barrier(MPI_COMM_WORLD);
  auto transport = make_mpi_broadcast(MPI_COMM_WORLD);
  const model::Checkpoint got = *broadcast_checkpoint(MPI_COMM_WORLD, *transport, path);
  EXPECT_EQ(got.path, path);
  EXPECT_EQ(got.format, "zip");
  EXPECT_EQ(got.archive_name, "snapshot_7.pth");
  EXPECT_EQ(got.container_key, "network");
  ASSERT_TRUE(got.epoch.has_value());
  EXPECT_EQ(*got.epoch, 7);
  ASSERT_EQ(got.tensors.size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    EXPECT_EQ(got.tensors[i].first, tensors[i].first);
    EXPECT_EQ(got.tensors[i].second.dtype, tensors[i].second.dtype);
    EXPECT_EQ(got.tensors[i].second.shape, tensors[i].second.shape);
    EXPECT_EQ(got.tensors[i].second.bytes, tensors[i].second.bytes) << tensors[i].first;
  }

  // What rank 0 already holds travels as it is (the file is not read again).
  auto held = std::make_shared<model::Checkpoint>(got);
  held->tensors.resize(1);
  const auto sent = broadcast_checkpoint(MPI_COMM_WORLD, *transport, dir + "/not_read.pth",
                                         rank == 0 ? held : nullptr);
  EXPECT_EQ(sent->tensors.size(), 1u);
  EXPECT_EQ(sent->tensors[0].second.bytes, tensors[0].second.bytes);

  try {
    broadcast_checkpoint(MPI_COMM_WORLD, *transport, dir + "/missing.pth.tar");
    FAIL() << "no error on rank " << rank;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(dir + "/missing.pth.tar"), std::string::npos) << e.what();
  }
}

TEST(SweepWeightBroadcast, PackedCheckpointsRoundTripAndRefuseDamage) {
  model::Checkpoint ck;
  ck.path = "x.pth";
  ck.format = "legacy";
  ck.tensors = {{"a", tensor(model::DType::BFloat16, {2, 3}, 5)}};
  const std::vector<uint8_t> packed = pack_checkpoint(ck);
  const model::Checkpoint back = unpack_checkpoint(packed);
  EXPECT_FALSE(back.epoch.has_value());
  EXPECT_EQ(back.tensors[0].second.bytes, ck.tensors[0].second.bytes);
  for (size_t cut : {size_t{0}, size_t{5}, packed.size() / 2, packed.size() - 1}) {
    std::vector<uint8_t> truncated(packed.begin(), packed.begin() + cut);
    EXPECT_THROW(unpack_checkpoint(truncated), Error) << "cut at " << cut;
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
