// The packed HDF5 cache: round trip against the reader and the crops, h5py
// readability, atomic writes, rebuild on source change, corrupt JPEGs, `cnp pack`.
#include <gtest/gtest.h>

#include <sys/resource.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/files.h"
#include "data/cache.h"
#include "data/h36m.h"
#include "data/preprocess.h"
#include "data_test_util.h"

namespace cnp::data {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

class DataCache : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = testing::work_dir("data_cache_synth");
    write_synthetic_h36m(testing::small_synth_options(root_));
  }
  static TestSetOptions options(const std::string& root) {
    TestSetOptions o;
    o.root = root;
    o.protocol = 1;
    return o;
  }
  static std::string root_;
};
std::string DataCache::root_;

void expect_same_samples(const std::vector<Sample>& a, const std::vector<Sample>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].image_id, b[i].image_id);
    EXPECT_EQ(a[i].image_file, b[i].image_file);
    EXPECT_EQ(a[i].subject, b[i].subject);
    EXPECT_EQ(a[i].action_idx, b[i].action_idx);
    EXPECT_EQ(a[i].subaction, b[i].subaction);
    EXPECT_EQ(a[i].camera, b[i].camera);
    EXPECT_EQ(a[i].frame, b[i].frame);
    EXPECT_EQ(a[i].image_width, b[i].image_width);
    EXPECT_EQ(a[i].image_height, b[i].image_height);
    EXPECT_EQ(a[i].bbox, b[i].bbox);
    EXPECT_EQ(a[i].root_cam, b[i].root_cam);
    EXPECT_EQ(a[i].f, b[i].f);
    EXPECT_EQ(a[i].c, b[i].c);
    EXPECT_EQ(a[i].joints_cam, b[i].joints_cam);
  }
}

TEST_F(DataCache, RoundTripAndH5py) {
  const std::string dir = testing::work_dir("data_cache_roundtrip");
  const TestSetOptions o = options(root_);
  const TestSet set = load_test_set(o);
  const std::string path = ensure_cache(dir, o, set, 2);
  EXPECT_EQ(path, dir + "/h36m_p1_gt_every64.h5");
  for (const auto& entry : fs::directory_iterator(dir)) {
    EXPECT_EQ(entry.path().string(), path) << "left-over temporary file";
  }
  CacheReader reader(path);
  EXPECT_EQ(reader.fingerprint(), test_set_fingerprint(o, set));
  expect_same_samples(reader.samples(), set.samples);

  const int64_t n = static_cast<int64_t>(set.samples.size());
  std::vector<uint8_t> cached(5 * kCropBytes), direct(kCropBytes);
  for (int64_t begin : {int64_t{0}, n / 2, n - 5}) {
    reader.read_crops(begin, 5, cached.data());
    for (int k = 0; k < 5; ++k) {
      const Sample& s = set.samples[begin + k];
      crop_image_file(image_path(root_, s), s.bbox, direct.data());
      EXPECT_TRUE(std::equal(direct.begin(), direct.end(), cached.begin() + k * kCropBytes))
          << "crop of sample " << begin + k;
    }
  }
  EXPECT_THROW(reader.read_crops(n - 2, 5, cached.data()), Error);
  EXPECT_THROW(reader.read_crops(-1, 1, cached.data()), Error);

  // h5py sees the same metadata and crop.
  json samples = json::array();
  for (const auto& s : set.samples) {
    samples.push_back({{"image_id", s.image_id},
                       {"image_file", s.image_file},
                       {"bbox", s.bbox},
                       {"joints_cam", s.joints_cam}});
  }
  write_file_atomic(dir + "/samples.json", samples.dump());
  const int index = 17;
  crop_image_file(image_path(root_, set.samples[index]), set.samples[index].bbox, direct.data());
  write_file_atomic(dir + "/crop.bin", std::string(direct.begin(), direct.end()));
  std::string out;
  EXPECT_EQ(testing::run_command(testing::python() + " " + testing::script("cache_check.py") + " " +
                                     path + " " + dir + "/samples.json " + std::to_string(index) +
                                     " " + dir + "/crop.bin",
                                 &out),
            0)
      << out;
}

TEST_F(DataCache, RebuildsOnlyWhenSourcesChange) {
  const std::string root = testing::work_dir("data_cache_rebuild_root");
  fs::copy(root_ + "/annotations", root + "/annotations", fs::copy_options::recursive);
  fs::create_directory_symlink(fs::absolute(root_ + "/images"), root + "/images");
  const std::string dir = testing::work_dir("data_cache_rebuild");
  const TestSetOptions o = options(root);
  const std::string path = ensure_cache(dir, o, load_test_set(o), 2);
  const auto built = fs::last_write_time(path);

  EXPECT_EQ(ensure_cache(dir, o, load_test_set(o), 2), path);
  EXPECT_EQ(fs::last_write_time(path), built) << "rebuilt although nothing changed";

  // A source annotation file changes (new mtime): the fingerprint differs, rebuild.
  const std::string joints = root + "/annotations/Human36M_subject11_joint_3d.json";
  fs::last_write_time(joints, fs::last_write_time(joints) + std::chrono::seconds(5));
  const TestSet changed = load_test_set(o);
  EXPECT_NE(test_set_fingerprint(o, changed), CacheReader(path).fingerprint());
  ensure_cache(dir, o, changed, 2);
  EXPECT_NE(fs::last_write_time(path), built);
  EXPECT_EQ(CacheReader(path).fingerprint(), test_set_fingerprint(o, changed));

  // Options are part of the fingerprint too.
  TestSetOptions every2 = o;
  every2.sample_every = 2;
  EXPECT_NE(test_set_fingerprint(every2, changed), test_set_fingerprint(o, changed));
  EXPECT_NE(cache_file_path(dir, every2), path);

  // A damaged cache file is rebuilt, not trusted.
  write_file_atomic(path, "not an hdf5 file");
  EXPECT_THROW(CacheReader{path}, Error);
  ensure_cache(dir, o, changed, 2);
  EXPECT_EQ(CacheReader(path).samples().size(), changed.samples.size());
}

TEST_F(DataCache, CorruptJpegFailsOrSkips) {
  const std::string root = testing::work_dir("data_cache_corrupt_root");
  fs::copy(root_ + "/annotations", root + "/annotations", fs::copy_options::recursive);
  fs::copy(root_ + "/images", root + "/images", fs::copy_options::recursive);
  TestSetOptions o = options(root);
  const TestSet set = load_test_set(o);
  const Sample& victim = set.samples[10];
  const std::string image = image_path(root, victim);
  const std::string bytes = read_file(image);
  write_file_atomic(image, bytes.substr(0, bytes.size() / 3));

  const std::string dir = testing::work_dir("data_cache_corrupt");
  const std::string path = cache_file_path(dir, o);
  try {
    build_cache(path, o, set, 2);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(image), std::string::npos) << what;
    EXPECT_NE(what.find("image id " + std::to_string(victim.image_id)), std::string::npos) << what;
  }
  EXPECT_TRUE(fs::is_empty(dir)) << "half-written cache left behind";

  o.skip_bad_samples = true;
  build_cache(path, o, set, 2);
  // Every sample keeps its row; the bad one is refused by id when read, naming it.
  CacheReader reader(path);
  ASSERT_EQ(reader.samples().size(), set.samples.size());
  EXPECT_TRUE(reader.rows_match(set.samples));
  EXPECT_EQ(reader.row_of(victim.image_id), 10);
  std::vector<uint8_t> crop(kCropBytes);
  try {
    reader.read_crop(victim.image_id, crop.data());
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path), std::string::npos) << what;
    EXPECT_NE(what.find("image id " + std::to_string(victim.image_id)), std::string::npos) << what;
    EXPECT_NE(what.find("corrupt JPEG"), std::string::npos) << what;
  }
  EXPECT_THROW(reader.read_crops(8, 4, crop.data()), Error);
  // Its neighbour's crop is its own, not shifted by one.
  std::vector<uint8_t> direct(kCropBytes);
  reader.read_crop(set.samples[11].image_id, crop.data());
  crop_image_file(image_path(root, set.samples[11]), set.samples[11].bbox, direct.data());
  EXPECT_EQ(crop, direct);
}

// Issue 11.13: with skip_bad_samples the cache dropped the bad crop, so every rerun
// failed its sample-count check. Now the same cache serves every rerun, matched by id.
TEST_F(DataCache, SkippedSampleCacheServesEveryRerun) {
  const std::string root = testing::work_dir("data_cache_rerun_root");
  fs::copy(root_ + "/annotations", root + "/annotations", fs::copy_options::recursive);
  fs::copy(root_ + "/images", root + "/images", fs::copy_options::recursive);
  TestSetOptions o = options(root);
  o.skip_bad_samples = true;
  const TestSet first = load_test_set(o);
  const Sample victim = first.samples[3];
  write_file_atomic(image_path(root, victim), "");  // a zero-byte JPEG

  const std::string dir = testing::work_dir("data_cache_rerun");
  const std::string path = ensure_cache(dir, o, first, 2);
  const auto built = fs::last_write_time(path);
  for (int rerun = 0; rerun < 2; ++rerun) {
    const TestSet set = load_test_set(o);
    EXPECT_EQ(ensure_cache(dir, o, set, 2), path);
    EXPECT_EQ(fs::last_write_time(path), built) << "rebuilt on rerun " << rerun;
    CacheReader reader(path);
    ASSERT_EQ(reader.samples().size(), set.samples.size());  // the runner's check
    for (size_t i = 0; i < set.samples.size(); ++i)
      EXPECT_EQ(reader.row_of(set.samples[i].image_id), static_cast<int64_t>(i));
    std::vector<uint8_t> crop(kCropBytes);
    try {
      reader.read_crop(victim.image_id, crop.data());
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {  // one line naming the image, not an OpenCV assertion
      const std::string what = e.what();
      EXPECT_NE(what.find(image_path(root, victim) + ": empty file (0 bytes)"), std::string::npos)
          << what;
      EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    }
    EXPECT_NO_THROW(reader.read_crop(set.samples[4].image_id, crop.data()));
  }
  // A cache whose rows are other samples (same count) is rebuilt, not trusted.
  TestSet shuffled = load_test_set(o);
  std::swap(shuffled.samples[0], shuffled.samples[1]);
  ensure_cache(dir, o, shuffled, 2);
  EXPECT_TRUE(CacheReader(path).rows_match(shuffled.samples));
}

// A write failure while building (here the file-size limit, as a full disk would be) names
// the cache file and the system's reason, and leaves nothing behind.
TEST_F(DataCache, WriteFailureGivesTheReasonAndLeavesNothing) {
  const TestSetOptions o = options(root_);
  const TestSet set = load_test_set(o);
  const std::string dir = testing::work_dir("data_cache_write_failure");
  const std::string path = cache_file_path(dir, o);
  rlimit old{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  auto previous = std::signal(SIGXFSZ, SIG_IGN);
  rlimit small = old;
  small.rlim_cur = 1 << 20;  // the crops need about 23 MB
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string error;
  try {
    build_cache(path, o, set, 2);
  } catch (const Error& e) {
    error = e.what();
  }
  setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, previous);
  EXPECT_NE(error.find(path), std::string::npos) << error;
  EXPECT_NE(error.find("File too large"), std::string::npos) << error;
  EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  EXPECT_TRUE(fs::is_empty(dir)) << "a half-written cache was left";
}

TEST_F(DataCache, PackCommand) {
  const std::string dir = testing::work_dir("data_cache_pack");
  std::string out;
  ASSERT_EQ(testing::run_command(std::string(CNP_EXE) + " pack --root " + root_ +
                                     " --protocol 2 --bbox detected --bbox-root " + root_ +
                                     "/bbox_root/protocol2.json --out " + dir + " --threads 2",
                                 &out),
            0)
      << out;
  const std::string path = dir + "/h36m_p2_detected_every64.h5";
  ASSERT_TRUE(file_exists(path)) << out;
  EXPECT_EQ(CacheReader(path).samples().size(), static_cast<size_t>(2 * testing::kKeptPerSubject));
  EXPECT_NE(out.find("480 samples"), std::string::npos) << out;

  EXPECT_NE(testing::run_command(std::string(CNP_EXE) + " pack --root " + root_ +
                                     " --protocol 1 --bbox rootnet --out " + dir,
                                 &out),
            0);
  EXPECT_NE(out.find("rootnet"), std::string::npos) << out;
  EXPECT_NE(testing::run_command(std::string(CNP_EXE) + " pack --root " + root_ +
                                     " --protocol 1 --bbox detected --out " + dir,
                                 &out),
            0);
  EXPECT_NE(out.find("bbox_root"), std::string::npos) << out;
}

}  // namespace
}  // namespace cnp::data
