#include "tests/checkpoint/fixtures.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

#include "common/error.h"

namespace cnp::test {

void run_generator(const std::string& args) {
  std::string cmd =
      std::string(CNP_PYTHON) + " " + CNP_SOURCE_DIR + "/tests/checkpoint/make_fixtures.py " + args;
  int rc = std::system(cmd.c_str());
  ASSERT_EQ(rc, 0) << "fixture generator failed: " << cmd;
}

nlohmann::json load_manifest(const std::string& dir) {
  return nlohmann::json::parse(slurp(dir + "/manifest.json"));
}

void expect_tensors_match(const model::Checkpoint& ck, const nlohmann::json& entry,
                          const std::string& bin) {
  const auto& expected = entry["tensors"];
  ASSERT_EQ(ck.tensors.size(), expected.size()) << entry["file"];
  for (size_t k = 0; k < expected.size(); ++k) {
    const auto& e = expected[k];
    const auto& [name, t] = ck.tensors[k];
    SCOPED_TRACE(entry["file"].get<std::string>() + " / " + name);
    EXPECT_EQ(name, e["name"].get<std::string>());
    EXPECT_EQ(model::dtype_name(t.dtype), e["dtype"].get<std::string>());
    EXPECT_EQ(t.shape, e["shape"].get<std::vector<int64_t>>());
    size_t offset = e["offset"], size = e["size"];
    ASSERT_EQ(t.bytes.size(), size);
    EXPECT_TRUE(size == 0 || std::memcmp(t.bytes.data(), bin.data() + offset, size) == 0)
        << "values differ";
    EXPECT_EQ(t.numel() * static_cast<int64_t>(model::dtype_size(t.dtype)),
              static_cast<int64_t>(size));
    if (e.contains("float_offset")) {
      std::vector<float> f = t.to_float();
      size_t fo = e["float_offset"], fs = e["float_size"];
      ASSERT_EQ(f.size() * 4, fs);
      EXPECT_EQ(std::memcmp(f.data(), bin.data() + fo, fs), 0) << "to_float differs from torch";
    }
  }
}

void expect_bytes_reader_agrees(const std::string& path) {
  model::Checkpoint by_path, by_bytes;
  std::string path_error, bytes_error;
  try {
    by_path = model::read_checkpoint(path);
  } catch (const Error& e) {
    path_error = e.what();
  }
  try {
    by_bytes = model::parse_checkpoint(model::read_checkpoint_file(path), path);
  } catch (const Error& e) {
    bytes_error = e.what();
  }
  EXPECT_EQ(bytes_error, path_error) << path;
  if (!path_error.empty() || !bytes_error.empty()) return;
  EXPECT_EQ(by_bytes.path, by_path.path);
  EXPECT_EQ(by_bytes.format, by_path.format) << path;
  EXPECT_EQ(by_bytes.archive_name, by_path.archive_name) << path;
  EXPECT_EQ(by_bytes.container_key, by_path.container_key) << path;
  EXPECT_EQ(by_bytes.epoch, by_path.epoch) << path;
  ASSERT_EQ(by_bytes.tensors.size(), by_path.tensors.size()) << path;
  for (size_t k = 0; k < by_path.tensors.size(); ++k) {
    const auto& [name, t] = by_path.tensors[k];
    EXPECT_EQ(by_bytes.tensors[k].first, name) << path;
    EXPECT_EQ(by_bytes.tensors[k].second.dtype, t.dtype) << path << " / " << name;
    EXPECT_EQ(by_bytes.tensors[k].second.shape, t.shape) << path << " / " << name;
    EXPECT_TRUE(by_bytes.tensors[k].second.bytes == t.bytes) << path << " / " << name;
  }
}

}  // namespace cnp::test
