// `cnp synth`: the layout as plain Python sees it (json, cv2, torch.load of a
// checkpoint), determinism per seed, and the option checks.
#include <gtest/gtest.h>

#include <filesystem>

#include "common/error.h"
#include "common/files.h"
#include "data/h36m.h"
#include "data/synth.h"
#include "data_test_util.h"

namespace cnp::data {
namespace {
namespace fs = std::filesystem;

TEST(DataSynth, CommandWritesTheLayoutPythonReads) {
  const std::string dir = testing::work_dir("data_synth_command");
  std::string out;
  ASSERT_EQ(testing::run_command(std::string(CNP_EXE) + " synth " + dir +
                                     " --image-size 200 --kept-frames 1 --dropped-per-kept 2"
                                     " --variants XS --epochs 3 --seed 5 --threads 2",
                                 &out),
            0)
      << out;
  EXPECT_NE(out.find("images: 720"), std::string::npos) << out;  // 2 x 15 x 2 x 4 x 3 frames
  EXPECT_NE(out.find("protocol 1: 120, protocol 2: 240"), std::string::npos) << out;
  const std::string checkpoint = dir + "/checkpoints/XS/snapshot_3.pth.tar";
  ASSERT_TRUE(file_exists(checkpoint)) << out;
  ASSERT_EQ(testing::run_command(testing::python() + " " + testing::script("synth_check.py") + " " +
                                     dir + " 200 0,1,2 " + checkpoint + " 3",
                                 &out),
            0)
      << out;
  EXPECT_NE(out.find("OK"), std::string::npos);
}

TEST(DataSynth, DeterministicPerSeed) {
  const std::string a = testing::work_dir("data_synth_seed_a");
  const std::string b = testing::work_dir("data_synth_seed_b");
  const std::string c = testing::work_dir("data_synth_seed_c");
  SynthOptions o = testing::small_synth_options(a);
  o.kept_frames = 1;
  const SynthSummary sa = write_synthetic_h36m(o);
  o.out_dir = b;
  o.threads = 1;  // thread count must not matter
  write_synthetic_h36m(o);
  o.out_dir = c;
  o.seed = 8;
  write_synthetic_h36m(o);
  ASSERT_EQ(sa.files.size(), 8u);
  for (const auto& file : sa.files) {
    const std::string rel = fs::relative(file, a).string();
    EXPECT_EQ(sha256_file(a + "/" + rel), sha256_file(b + "/" + rel)) << rel;
    EXPECT_NE(sha256_file(a + "/" + rel), sha256_file(c + "/" + rel)) << rel;
  }
  const std::string image = "/images/" + image_file_name(11, 7, 2, 3, 0);
  EXPECT_EQ(sha256_file(a + image), sha256_file(b + image));
  EXPECT_NE(sha256_file(a + image), sha256_file(c + image));
  EXPECT_EQ(sa.images, 2 * 15 * 2 * 4 * 2);
  EXPECT_EQ(sa.protocol1_samples, 120);
  EXPECT_EQ(sa.protocol2_samples, 240);
}

TEST(DataSynth, FrameIndicesAndOptionErrors) {
  SynthOptions o;
  o.kept_frames = 3;
  o.dropped_per_kept = 2;
  EXPECT_EQ(synth_frame_indices(o), std::vector<int>({0, 1, 2, 64, 65, 66, 128, 129, 130}));
  o.frames = 4;
  EXPECT_EQ(synth_frame_indices(o), std::vector<int>({0, 1, 2, 3}));
  o.frames = 0;
  o.kept_frames = 0;
  EXPECT_THROW(synth_frame_indices(o), Error);
  o.kept_frames = 1;
  o.out_dir = testing::work_dir("data_synth_bad_size");
  o.image_size = 10;
  EXPECT_THROW(write_synthetic_h36m(o), Error);
  std::string out;
  EXPECT_NE(testing::run_command(std::string(CNP_EXE) + " synth", &out), 0);
}

}  // namespace
}  // namespace cnp::data
