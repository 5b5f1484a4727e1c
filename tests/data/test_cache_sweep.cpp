// Issue 11.13 end to end: a sweep with dataset.cache and skip_bad_samples, where one image
// is a zero-byte JPEG, succeeds on the first run and on every rerun, from one cache file
// (before, the cache dropped the bad crop and every rerun failed its sample-count check).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <vector>

#include "tests/sweep/sweep_fixture.h"

namespace cnp::sweep_test {
namespace {

TEST(DataCacheSweep, SkippedSampleCacheServesEveryRerun) {
  const std::string dir = test_dir("data_cache_sweep");
  const std::string data = make_dataset(dir);
  // A zero-byte JPEG: the first protocol-2 image in file-name order.
  std::vector<fs::path> images;
  for (const auto& e : fs::recursive_directory_iterator(data + "/images"))
    if (e.path().extension() == ".jpg") images.push_back(e.path());
  std::sort(images.begin(), images.end());
  for (const auto& image : images) {
    if (image.filename().string().rfind("s_09_act_02_", 0) != 0) continue;
    spit(image.string(), "");
    break;
  }
  const std::string cache = dir + "/cache";
  fs::remove_all(cache);
  const std::string config =
      write_sweep(dir + "/sweep.yaml", data,
                  "  variants: [XS]\n  epochs: [1]\n  protocols: [2]\n  flip: [false]\n", "",
                  "  cache: " + cache + "\n  skip_bad_samples: true\n");
  const std::string out = dir + "/out";
  fs::file_time_type built{};
  for (int attempt = 0; attempt < 3; ++attempt) {
    const auto r = run(sweep_command(1, config, "--output " + out + " --no-resume"),
                       dir + "/run" + std::to_string(attempt));
    ASSERT_EQ(r.code, 0) << "run " << attempt << ": " << r.err;
    const auto job = read_json(out + "/jobs/XS_e1_p2_noflip_gt.json");
    EXPECT_EQ(job.at("metrics").at("num_samples").get<int>(), 7) << "run " << attempt;
    const std::string file = cache + "/h36m_p2_gt_every64.h5";
    ASSERT_TRUE(fs::exists(file));
    if (attempt == 0) built = fs::last_write_time(file);
    EXPECT_EQ(fs::last_write_time(file), built) << "cache rebuilt on run " << attempt;
  }
}

}  // namespace
}  // namespace cnp::sweep_test
