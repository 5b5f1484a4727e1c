// Hostile and broken inputs: malicious pickles are refused without running,
// corrupt/truncated/bit-flipped files give cnp::Error (or, when a flip leaves the
// file valid, a normal result) and never crash, hang or allocate wildly.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "common/files.h"
#include "model/checkpoint.h"
#include "model/pickle.h"
#include "model/zip_archive.h"
#include "tests/checkpoint/fixtures.h"

namespace cnp::model {
namespace {

class CheckpointSecurity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = test::work_dir("checkpoint_security");
    test::run_generator("security " + dir_);
    manifest_ = test::load_manifest(dir_);
  }
  static std::string dir_;
  static nlohmann::json manifest_;
};
std::string CheckpointSecurity::dir_;
nlohmann::json CheckpointSecurity::manifest_;

// The one-line error of read_checkpoint(path), or "" if it succeeded.
std::string error_of(const std::string& path) {
  try {
    read_checkpoint(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

TEST_F(CheckpointSecurity, MaliciousPicklesAreRefusedByName) {
  const std::string marker = manifest_["marker"];
  ASSERT_GE(manifest_["malicious"].size(), 7u);
  for (const auto& c : manifest_["malicious"]) {
    const std::string path = dir_ + "/" + c["file"].get<std::string>();
    std::string error = error_of(path);
    EXPECT_NE(error.find(path + ": "), std::string::npos) << error;
    EXPECT_NE(error.find("refusing to unpickle global '" + c["global"].get<std::string>() + "'"),
              std::string::npos)
        << error;
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  }
  EXPECT_FALSE(std::filesystem::exists(marker)) << "a malicious pickle was executed";
}

TEST_F(CheckpointSecurity, NonCheckpointsGiveOneLineErrors) {
  const std::string empty = dir_ + "/empty.pth", text = dir_ + "/notes.txt",
                    noise = dir_ + "/noise.pth", bare_zip = dir_ + "/other.zip";
  write_bytes(empty, "");
  write_bytes(text, "this is not a checkpoint\nsecond line\n");
  write_bytes(noise, std::string("\x80\x02\xff\xfe garbage", 12));
  std::string payload = "hello";
  write_file_atomic(bare_zip, zip::write_stored({{"folder/readme.txt", payload.data(), 5}}));
  const std::pair<std::string, std::string> cases[] = {
      {empty, "empty file"},
      {text, "not a PyTorch checkpoint"},
      {noise, "unsupported pickle opcode"},
      {bare_zip, "data.pkl"},
      {dir_ + "/does_not_exist.pth", "does_not_exist.pth"},
      {dir_, dir_ + ": is a directory, not a file"}};
  for (const auto& [path, expected] : cases) {
    std::string error = error_of(path);
    EXPECT_NE(error.find(expected), std::string::npos) << path << " -> " << error;
    EXPECT_NE(error.find(path), std::string::npos) << error;
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  }
}

TEST_F(CheckpointSecurity, EveryTruncationFails) {
  for (const std::string file : {"valid.pth", "valid_legacy.pth"}) {
    const std::string bytes = read_file(dir_ + "/" + file);
    ASSERT_NO_THROW(read_checkpoint(dir_ + "/" + file));
    const std::string cut = dir_ + "/cut_" + file;
    int tried = 0;
    for (size_t len = 0; len < bytes.size(); len += (len < 400 ? 1 : 487)) {
      write_bytes(cut, bytes.substr(0, len));
      std::string error = error_of(cut);
      EXPECT_FALSE(error.empty()) << file << " cut at " << len << " was accepted";
      EXPECT_EQ(error.rfind(cut + ": ", 0), 0u) << error;
      ++tried;
    }
    EXPECT_GT(tried, 400);
  }
}

// The n-th of a reproducible series of one-bit corruptions of `bytes` (`state`: the series'
// generator). Half the flips hit the first 2 KiB (headers, pickle), half anywhere.
std::string with_bit_flipped(const std::string& bytes, int n, uint32_t& state) {
  state = state * 1664525u + 1013904223u;
  const size_t pos = (n % 2 ? state % bytes.size() : state % std::min<size_t>(2048, bytes.size()));
  std::string copy = bytes;
  copy[pos] = static_cast<char>(copy[pos] ^ (1 << ((state >> 16) % 8)));
  return copy;
}

TEST_F(CheckpointSecurity, BitFlipsFailCleanlyOrReadValidData) {
  for (const std::string file : {"valid.pth", "valid_legacy.pth"}) {
    const std::string bytes = read_file(dir_ + "/" + file);
    const std::string flipped = dir_ + "/flip_" + file;
    int failed = 0, read = 0;
    uint32_t state = 12345;
    for (int n = 0; n < 600; ++n) {
      write_bytes(flipped, with_bit_flipped(bytes, n, state));
      try {
        Checkpoint ck = read_checkpoint(flipped);
        for (const auto& [name, t] : ck.tensors)
          ASSERT_EQ(t.bytes.size(), static_cast<size_t>(t.numel()) * dtype_size(t.dtype)) << name;
        ++read;
      } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()).rfind(flipped + ": ", 0), 0u) << e.what();
        ++failed;
      }
    }
    EXPECT_GT(failed, 0) << file;
    EXPECT_EQ(failed + read, 600);
  }
}

// parse_checkpoint on the bytes of a broken file fails exactly as read_checkpoint on the file
// (the sweep's validation uses the one, cnp inspect and the passes the other): every
// truncation, the bit flips above, the non-checkpoints and the hostile files.
TEST_F(CheckpointSecurity, BytesInMemoryFailAsThePathDoes) {
  for (const std::string file : {"valid.pth", "valid_legacy.pth"}) {
    const std::string bytes = read_file(dir_ + "/" + file);
    test::expect_bytes_reader_agrees(dir_ + "/" + file);
    const std::string cut = dir_ + "/bytes_cut_" + file;
    for (size_t len = 0; len < bytes.size(); len += (len < 400 ? 1 : 487)) {
      write_bytes(cut, bytes.substr(0, len));
      test::expect_bytes_reader_agrees(cut);
    }
    const std::string flipped = dir_ + "/bytes_flip_" + file;
    uint32_t state = 12345;
    for (int n = 0; n < 600; ++n) {
      write_bytes(flipped, with_bit_flipped(bytes, n, state));
      test::expect_bytes_reader_agrees(flipped);
    }
  }
  for (const char* group : {"malicious", "inflating"}) {
    for (const auto& c : manifest_[group])
      test::expect_bytes_reader_agrees(dir_ + "/" + c["file"].get<std::string>());
  }
  write_bytes(dir_ + "/bytes_empty.pth", "");
  write_bytes(dir_ + "/bytes_notes.txt", "this is not a checkpoint\n");
  for (const std::string& path :
       {dir_ + "/bytes_empty.pth", dir_ + "/bytes_notes.txt", dir_ + "/does_not_exist.pth", dir_}) {
    test::expect_bytes_reader_agrees(path);
  }
}

// read_checkpoint_file refuses a file larger than its limit with one line naming the file:
// a regular file by its size before reading, a pipe once the read passes the limit.
TEST_F(CheckpointSecurity, FileReadIsBounded) {
  const std::string path = dir_ + "/bytes_1000.pth";
  write_bytes(path, std::string(1000, 'x'));
  EXPECT_EQ(read_checkpoint_file(path, 1000).size(), 1000u);
  try {
    read_checkpoint_file(path, 999);
    ADD_FAILURE() << "a file over the limit was read";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), path + ": 1000 bytes, more than a checkpoint may hold (999)");
  }
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const std::string data(2000, 'y');
  ASSERT_EQ(::write(fds[1], data.data(), data.size()), 2000);
  ::close(fds[1]);
  const std::string pipe_path = "/proc/self/fd/" + std::to_string(fds[0]);
  try {
    read_checkpoint_file(pipe_path, 1000);
    ADD_FAILURE() << "a pipe over the limit was read";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              pipe_path + ": more than 1000 bytes, more than a checkpoint may hold (1000)");
  }
  ::close(fds[0]);
}

// Storage bytes are bounded by the declared elements: a small zip entry that would
// inflate far past them (or a legacy element count that disagrees) is refused
// before any inflating, so reading stays within a few MB.
TEST_F(CheckpointSecurity, StoragesLargerThanDeclaredAreRefusedBeforeInflating) {
  ASSERT_EQ(manifest_["inflating"].size(), 3u);
  for (const auto& c : manifest_["inflating"]) {
    const std::string path = dir_ + "/" + c["file"].get<std::string>();
    const std::string error = error_of(path);
    EXPECT_NE(error.find(path + ": "), std::string::npos) << error;
    EXPECT_NE(error.find(c["expected"].get<std::string>()), std::string::npos) << error;
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  }
  // The untouched original reads.
  EXPECT_EQ(error_of(dir_ + "/four_floats.pth"), "");
}

// Crafted archives: a zip holding the given data.pkl and storages.
std::string crafted(const std::string& name, const std::string& pkl,
                    const std::vector<std::pair<std::string, std::string>>& storages = {}) {
  std::vector<zip::Entry> entries{{"a/data.pkl", pkl.data(), pkl.size()}};
  for (const auto& [key, data] : storages)
    entries.push_back({"a/data/" + key, data.data(), data.size()});
  std::string path = std::filesystem::path(CNP_TEST_WORK) / "checkpoint_security" / name;
  write_file_atomic(path, zip::write_stored(entries));
  return path;
}

// {'network': OrderedDict(w=tensor)} with one float storage '0' of `numel` elements.
std::string tensor_pickle(int64_t numel, int64_t offset, const std::vector<int64_t>& shape,
                          const std::vector<int64_t>& stride, const std::string& tag = "storage") {
  std::string out;
  pickle::Writer w(&out);
  w.proto();
  w.empty_dict();
  w.mark();
  w.unicode("network");
  w.global("collections", "OrderedDict");
  w.empty_tuple();
  w.reduce();
  w.mark();
  w.unicode("w");
  w.global("torch._utils", "_rebuild_tensor_v2");
  w.mark();
  w.mark();
  w.unicode(tag);
  w.global("torch", "FloatStorage");
  w.unicode("0");
  w.unicode("cpu");
  w.integer(numel);
  w.tuple();
  w.binpersid();
  w.integer(offset);
  w.mark();
  for (int64_t d : shape) w.integer(d);
  w.tuple();
  w.mark();
  for (int64_t s : stride) w.integer(s);
  w.tuple();
  w.boolean(false);
  w.global("collections", "OrderedDict");
  w.empty_tuple();
  w.reduce();
  w.tuple();
  w.reduce();
  w.setitems();
  w.setitems();
  w.stop();
  return out;
}

TEST_F(CheckpointSecurity, LyingLengthsAndShapesAreRejected) {
  const std::string four_floats(16, '\0');
  const std::pair<std::string, std::string> cases[] = {
      {crafted("ok.pth", tensor_pickle(4, 0, {2, 2}, {2, 1}), {{"0", four_floats}}), ""},
      {crafted("outside.pth", tensor_pickle(4, 0, {1000}, {1}), {{"0", four_floats}}),
       "outside its storage"},
      {crafted("offset.pth", tensor_pickle(4, 3, {2}, {1}), {{"0", four_floats}}),
       "outside its storage"},
      {crafted("huge_offset.pth", tensor_pickle(4, int64_t(1) << 62, {2}, {1}),
               {{"0", four_floats}}),
       "impossible offset"},
      {crafted("huge_stride.pth", tensor_pickle(4, 0, {2, 2}, {int64_t(1) << 62, 1}),
               {{"0", four_floats}}),
       "outside its storage"},
      {crafted("expand.pth", tensor_pickle(4, 0, {1 << 30, 1 << 10}, {0, 0}), {{"0", four_floats}}),
       "more data than the file can hold"},
      {crafted("numel_lie.pth", tensor_pickle(1 << 30, 0, {4}, {1}), {{"0", four_floats}}),
       "holds 16 bytes but declares 1073741824 float32 elements"},
      {crafted("numel_short.pth", tensor_pickle(2, 0, {2}, {1}), {{"0", four_floats}}),
       "holds 16 bytes but declares 2 float32 elements"},
      {crafted("missing.pth", tensor_pickle(4, 0, {4}, {1})), "storage '0' is missing"},
      {crafted("module_pid.pth", tensor_pickle(4, 0, {4}, {1}, "module"), {{"0", four_floats}}),
       "unsupported persistent id 'module'"},
  };
  for (const auto& [path, expected] : cases) {
    std::string error = error_of(path);
    if (expected.empty()) {
      EXPECT_EQ(error, "");
    } else {
      EXPECT_NE(error.find(expected), std::string::npos) << path << " -> " << error;
    }
  }
}

TEST_F(CheckpointSecurity, HostilePicklesFailWithoutCrashing) {
#define BYTES(literal) std::string(literal, sizeof(literal) - 1)
  const std::string proto = BYTES("\x80\x02");
  std::string nested = proto;  // 300k nested lists: no recursion, no deep destructor chain
  nested += std::string(300000, ']') + std::string(299999, 'a') + ".";
  std::string marks = proto + std::string(1000000, '(') + ".";
  std::string big_string = proto + BYTES("X\xff\xff\xff\xff") + "abc.";
  std::string big_long = proto + BYTES("\x8b\xff\xff\xff\x7f") + "abc.";
  std::string memo_miss = proto + BYTES("j\xff\xff\xff\xff.");
  std::string many = proto + std::string(size_t(3) << 20, 'N') + ".";  // 3M values
  std::string memo_put = proto + BYTES("}r\xff\xff\xff\xff.");  // a huge memo index is just a key
  // OrderedDict(list) through the memo, again and again: amplification is capped.
  std::string amplify = proto + BYTES("ccollections\nOrderedDict\nq\x00]q\x01(");
  for (int k = 0; k < 2000; ++k) amplify += BYTES("X\x01\x00\x00\x00kK\x01\x86");
  amplify += "e";
  for (int k = 0; k < 20000; ++k) amplify += BYTES("h\x00h\x01\x85R0");
  amplify += "}.";
  // Pickle-level errors name the entry; the last two pickles are valid but hold no state dict.
  const std::tuple<std::string, std::string, bool> cases[] = {
      {marks, "stack at STOP", true},     {big_string, "truncated", true},
      {big_long, "truncated", true},      {memo_miss, "memo entry", true},
      {amplify, "too much data", true},   {nested, "not a dict", false},
      {memo_put, "no state dict", false},
  };
  int k = 0;
  for (const auto& [pkl, expected, names_entry] : cases) {
    std::string path = crafted("hostile" + std::to_string(k++) + ".pth", pkl);
    std::string error = error_of(path);
    EXPECT_NE(error.find(expected), std::string::npos) << path << " -> " << error;
    EXPECT_EQ(error.find("a/data.pkl") != std::string::npos, names_entry) << error;
  }
}

}  // namespace
}  // namespace cnp::model
