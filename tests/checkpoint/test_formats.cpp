// Reading checkpoints that Debian's torch wrote: every format, dtype and layout.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "common/error.h"
#include "model/checkpoint.h"
#include "tests/checkpoint/fixtures.h"

namespace cnp::model {
namespace {

class CheckpointFormats : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = test::work_dir("checkpoint_formats");
    test::run_generator("formats " + dir_);
    manifest_ = test::load_manifest(dir_);
  }
  // The fixtures take ~170 MB; the machine's disk is shared.
  static void TearDownTestSuite() { std::filesystem::remove_all(dir_); }
  static std::string dir_;
  static nlohmann::json manifest_;
};
std::string CheckpointFormats::dir_;
nlohmann::json CheckpointFormats::manifest_;

TEST_F(CheckpointFormats, EveryFixtureMatchesTorchBitForBit) {
  ASSERT_GE(manifest_["checkpoints"].size(), 12u);
  for (const auto& e : manifest_["checkpoints"]) {
    const std::string file = e["file"];
    SCOPED_TRACE(file);
    Checkpoint ck = read_checkpoint(dir_ + "/" + file);
    EXPECT_EQ(ck.path, dir_ + "/" + file);
    EXPECT_EQ(ck.format, e["format"].get<std::string>());
    EXPECT_EQ(ck.archive_name, e["archive_name"].get<std::string>());
    EXPECT_EQ(ck.container_key, e["container_key"].get<std::string>());
    if (e["epoch"].is_null())
      EXPECT_FALSE(ck.epoch.has_value());
    else
      EXPECT_EQ(ck.epoch, std::optional<int64_t>(e["epoch"].get<int64_t>()));
    test::expect_tensors_match(ck, e, test::slurp(dir_ + "/" + file + ".bin"));
  }
}

TEST_F(CheckpointFormats, ReleasedLayoutIsAZipNamedTarWithSnapshotFolder) {
  Checkpoint ck = read_checkpoint(dir_ + "/ConvNeXtPose_L.tar");
  EXPECT_EQ(ck.format, "zip");
  EXPECT_EQ(ck.archive_name, "snapshot_83.pth");
  EXPECT_EQ(ck.container_key, "network");
  EXPECT_EQ(ck.epoch, std::optional<int64_t>(83));
  // Variant L: 260 tensors, ~8.4M elements; optimizer state skipped.
  EXPECT_EQ(ck.tensors.size(), 260u);
  EXPECT_GT(ck.total_elements(), 8'000'000);
  EXPECT_LT(ck.total_elements(), 9'000'000);
  for (const auto& [name, t] : ck.tensors) EXPECT_EQ(name.rfind("module.", 0), 0u) << name;
  const TensorData* stem = ck.find("module.backbone.downsample_layers.0.0.weight");
  ASSERT_NE(stem, nullptr);
  EXPECT_EQ(stem->shape, (std::vector<int64_t>{48, 3, 4, 4}));
  const TensorData* tracked = ck.find("module.backbone.downsample_layers.0.1.num_batches_tracked");
  ASSERT_NE(tracked, nullptr);
  EXPECT_EQ(tracked->dtype, DType::Int64);
  EXPECT_TRUE(tracked->shape.empty());
  EXPECT_EQ(tracked->to_double(), std::vector<double>{1234.0});
  const TensorData* final_layer = ck.find("module.head.final_layer.weight");
  ASSERT_NE(final_layer, nullptr);
  EXPECT_EQ(final_layer->shape, (std::vector<int64_t>{18 * 64, 512, 1, 1}));
  EXPECT_EQ(ck.find("state"), nullptr);
  EXPECT_EQ(ck.find("exp_avg"), nullptr);
}

TEST_F(CheckpointFormats, ZipAndLegacyGiveTheSameTensors) {
  for (auto [zip, legacy] : {std::pair{"small.pth", "small_legacy.pth.tar"},
                             {"dtypes.pth", "dtypes_legacy.pth"},
                             {"views.pth", "views_legacy.pth"},
                             {"cuda.pth", "cuda_legacy.pth"}}) {
    Checkpoint a = read_checkpoint(dir_ + "/" + zip);
    Checkpoint b = read_checkpoint(dir_ + "/" + legacy);
    ASSERT_EQ(a.tensors.size(), b.tensors.size()) << zip;
    for (size_t k = 0; k < a.tensors.size(); ++k) {
      EXPECT_EQ(a.tensors[k].first, b.tensors[k].first);
      EXPECT_EQ(a.tensors[k].second.bytes, b.tensors[k].second.bytes) << a.tensors[k].first;
    }
  }
}

// The sweep hashes and parses one read of each file (parse_checkpoint); cnp inspect, bench and
// the passes read from the path. Both must give the same checkpoint for every fixture.
TEST_F(CheckpointFormats, BytesInMemoryGiveTheSameCheckpointAsThePath) {
  ASSERT_GE(manifest_["checkpoints"].size(), 12u);
  for (const auto& e : manifest_["checkpoints"]) {
    test::expect_bytes_reader_agrees(dir_ + "/" + e["file"].get<std::string>());
  }
  test::expect_bytes_reader_agrees(dir_ + "/ConvNeXtPose_L.tar");
  const std::string path = dir_ + "/small.pth";
  Checkpoint ck = parse_checkpoint(read_checkpoint_file(path), path);
  EXPECT_EQ(ck.path, path);
  EXPECT_EQ(ck.format, "zip");
  EXPECT_FALSE(ck.tensors.empty());
}

TEST_F(CheckpointFormats, ViewsAreMaterialisedContiguous) {
  Checkpoint ck = read_checkpoint(dir_ + "/views.pth");
  const TensorData* t = ck.find("transposed");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->shape, (std::vector<int64_t>{5, 4, 3}));
  std::vector<float> v = t->to_float();
  // transposed[i][j][k] = base[k][j][i] = 20k + 5j + i
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 4; ++j)
      for (int k = 0; k < 3; ++k) EXPECT_EQ(v[(i * 4 + j) * 3 + k], 20 * k + 5 * j + i);
  const TensorData* expanded = ck.find("expanded");
  ASSERT_NE(expanded, nullptr);
  EXPECT_EQ(expanded->to_float(),
            (std::vector<float>{1.5, 1.5, 1.5, 1.5, 1.5, 1.5, -2.5, -2.5, -2.5, -2.5, -2.5, -2.5}));
  const TensorData* empty = ck.find("empty");
  ASSERT_NE(empty, nullptr);
  EXPECT_EQ(empty->numel(), 0);
  EXPECT_TRUE(empty->bytes.empty());
}

TEST(CheckpointTypes, DTypeNamesAndSizes) {
  const std::pair<DType, std::pair<const char*, size_t>> expected[] = {
      {DType::Float32, {"float32", 4}},   {DType::Float16, {"float16", 2}},
      {DType::BFloat16, {"bfloat16", 2}}, {DType::Float64, {"float64", 8}},
      {DType::Int64, {"int64", 8}},       {DType::Int32, {"int32", 4}},
      {DType::Int16, {"int16", 2}},       {DType::Int8, {"int8", 1}},
      {DType::UInt8, {"uint8", 1}},       {DType::Bool, {"bool", 1}}};
  std::set<std::string> names;
  for (const auto& [dtype, info] : expected) {
    EXPECT_STREQ(dtype_name(dtype), info.first);
    EXPECT_EQ(dtype_size(dtype), info.second);
    names.insert(dtype_name(dtype));
  }
  EXPECT_EQ(names.size(), 10u);
}

TEST(CheckpointTypes, ConversionsOfIntegerTensors) {
  TensorData t;
  t.dtype = DType::Int16;
  t.shape = {3};
  int16_t values[] = {-32768, 7, 32767};
  t.bytes.assign(reinterpret_cast<uint8_t*>(values), reinterpret_cast<uint8_t*>(values) + 6);
  EXPECT_EQ(t.numel(), 3);
  EXPECT_EQ(t.to_double(), (std::vector<double>{-32768, 7, 32767}));
  EXPECT_EQ(t.to_float(), (std::vector<float>{-32768, 7, 32767}));
}

}  // namespace
}  // namespace cnp::model
