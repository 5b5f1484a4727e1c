// write_checkpoint_zip -> torch.load (Debian's python) -> compare, and back
// through read_checkpoint.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "common/error.h"
#include "model/checkpoint.h"
#include "tests/checkpoint/fixtures.h"

namespace cnp::model {
namespace {

TensorData make(DType dtype, std::vector<int64_t> shape, uint32_t seed) {
  TensorData t;
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.bytes.resize(static_cast<size_t>(t.numel()) * dtype_size(dtype));
  for (auto& b : t.bytes) {
    seed = seed * 1103515245u + 12345u;
    b = static_cast<uint8_t>(seed >> 16);
  }
  if (dtype == DType::Bool)
    for (auto& b : t.bytes) b &= 1;
  if (dtype == DType::Float16 || dtype == DType::BFloat16)  // keep the exponent finite
    for (size_t k = 1; k < t.bytes.size(); k += 2) t.bytes[k] &= 0x3F;
  return t;
}

NamedTensors sample_tensors() {
  NamedTensors out;
  const DType all[] = {DType::Float32, DType::Float16, DType::BFloat16, DType::Float64,
                       DType::Int64,   DType::Int32,   DType::Int16,    DType::Int8,
                       DType::UInt8,   DType::Bool};
  uint32_t seed = 1;
  for (DType d : all)
    out.emplace_back(std::string("module.") + dtype_name(d), make(d, {3, 2, 5}, seed++));
  out.emplace_back("module.scalar", make(DType::Float32, {}, 99));
  out.emplace_back("module.empty", make(DType::Float32, {0, 4}, 98));
  out.emplace_back("module.head.final_layer.weight", make(DType::Float32, {1152, 16, 1, 1}, 97));
  return out;
}

void expect_equal(const NamedTensors& a, const NamedTensors& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t k = 0; k < a.size(); ++k) {
    EXPECT_EQ(a[k].first, b[k].first);
    EXPECT_EQ(a[k].second.dtype, b[k].second.dtype) << a[k].first;
    EXPECT_EQ(a[k].second.shape, b[k].second.shape) << a[k].first;
    EXPECT_EQ(a[k].second.bytes, b[k].second.bytes) << a[k].first;
  }
}

TEST(CheckpointRoundTrip, TorchLoadsWhatWeWriteBitForBit) {
  const std::string dir = test::work_dir("checkpoint_roundtrip");
  const std::string path = dir + "/ConvNeXtPose_S.tar";
  const NamedTensors tensors = sample_tensors();
  write_checkpoint_zip(path, tensors, 83, "snapshot_83.pth");
  // Atomic write: only the final file is left behind.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), {}), 1);

  test::run_generator("dump " + path + " " + dir + "/dump");
  nlohmann::json manifest = test::load_manifest(dir + "/dump");
  EXPECT_EQ(manifest["keys"], (nlohmann::json{"epoch", "network"}));
  const auto& entry = manifest["checkpoints"][0];
  EXPECT_EQ(entry["epoch"], 83);
  // What torch.load produced must equal what we wrote, bit for bit.
  Checkpoint written;
  written.tensors = tensors;
  test::expect_tensors_match(written, entry, test::slurp(dir + "/dump/ConvNeXtPose_S.tar.bin"));

  Checkpoint back = read_checkpoint(path);
  EXPECT_EQ(back.format, "zip");
  EXPECT_EQ(back.archive_name, "snapshot_83.pth");
  EXPECT_EQ(back.container_key, "network");
  EXPECT_EQ(back.epoch, std::optional<int64_t>(83));
  expect_equal(back.tensors, tensors);
}

TEST(CheckpointRoundTrip, ContainerVariantsAndLargeEpoch) {
  const std::string dir = test::work_dir("checkpoint_roundtrip_variants");
  const NamedTensors tensors = sample_tensors();
  write_checkpoint_zip(dir + "/a.pth", tensors, int64_t(1) << 40, "archive", "state_dict");
  Checkpoint a = read_checkpoint(dir + "/a.pth");
  EXPECT_EQ(a.container_key, "state_dict");
  EXPECT_EQ(a.epoch, std::optional<int64_t>(int64_t(1) << 40));
  expect_equal(a.tensors, tensors);

  write_checkpoint_zip(dir + "/b.pth", tensors, std::nullopt, "b", "model");
  Checkpoint b = read_checkpoint(dir + "/b.pth");
  EXPECT_EQ(b.container_key, "model");
  EXPECT_FALSE(b.epoch.has_value());

  write_checkpoint_zip(dir + "/c.pth", tensors, std::nullopt, "c", "");
  Checkpoint c = read_checkpoint(dir + "/c.pth");
  EXPECT_EQ(c.container_key, "");
  expect_equal(c.tensors, tensors);
}

TEST(CheckpointRoundTrip, WriterRejectsInconsistentTensors) {
  const std::string dir = test::work_dir("checkpoint_roundtrip_errors");
  NamedTensors bad = sample_tensors();
  bad[0].second.bytes.pop_back();
  EXPECT_THROW(write_checkpoint_zip(dir + "/bad.pth", bad, 1), Error);
  NamedTensors dup = sample_tensors();
  dup.push_back(dup[0]);
  EXPECT_THROW(write_checkpoint_zip(dir + "/dup.pth", dup, 1), Error);
  EXPECT_THROW(write_checkpoint_zip(dir + "/slash.pth", sample_tensors(), 1, "a/b"), Error);
  EXPECT_FALSE(std::filesystem::exists(dir + "/bad.pth"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/dup.pth"));
}

}  // namespace
}  // namespace cnp::model
