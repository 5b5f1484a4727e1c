// samples.h5, the paired bootstrap, the new metrics and the pictures of `cnp compare`,
// checked against an independent numpy computation (check_comparison.py reads
// samples.h5 with h5py), plus the job-file checks of `cnp compare`.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "common/error.h"
#include "common/files.h"
#include "pipeline/bootstrap.h"
#include "pipeline/report.h"
#include "pipeline/samples_h5.h"
#include "tests/support/test_support.h"

namespace cnp::pipeline {
namespace {
namespace fs = std::filesystem;

// One synthetic job: every sequence of the protocol's subjects with `frames` frames.
// Errors share a per-sequence offset (frames of a sequence are correlated, as in
// Human3.6M) so a frame-level bootstrap would give a visibly narrower interval.
JobSamples make_job(const std::string& variant, int epoch, int protocol, bool flip, double quality,
                    uint32_t seed, int frames = 5) {
  JobSamples job;
  job.variant = variant;
  job.epoch = epoch;
  job.protocol = protocol;
  job.flip = flip;
  std::mt19937 shared(7);  // sequence effects: the same for every job (paired data)
  std::mt19937 own(seed);
  std::normal_distribution<double> seq_effect(0, 25), noise(0, 6), joint_noise(0, 30);
  int64_t id = 0;
  for (int subject : {9, 11}) {
    for (int action = 2; action <= 16; ++action) {
      for (int sub = 1; sub <= 2; ++sub) {
        for (int cam = 1; cam <= 4; ++cam) {
          const double effect = seq_effect(shared);
          const double job_effect = noise(own) * 1.5;  // this job on this sequence
          for (int f = 0; f < frames; ++f) {
            ++id;
            if (protocol == 1 && subject != 11) continue;
            SampleErrors s;
            s.image_id = id;
            s.subject = subject;
            s.action_idx = action;
            s.subaction = sub;
            s.camera = cam;
            const double frame = 90 + effect + quality + job_effect + noise(own);
            for (int k = 0; k < 3; ++k) {
              const double scale = k == kMpjpe ? 1.0 : k == kPaMpjpe ? 0.7 : 0.9;
              for (int j = 0; j < kEvalJoints; ++j) {
                s.joint_error[k][j] =
                    std::max(0.0, scale * (frame + (j - 8) * 4.0 + joint_noise(own)));
              }
            }
            job.samples.push_back(s);
          }
        }
      }
    }
  }
  return job;
}

JobResult result_for(const JobSamples& s) {
  JobResult r;
  r.job.variant = s.variant;
  r.job.epoch = s.epoch;
  r.job.protocol = s.protocol;
  r.job.flip = s.flip;
  r.job.checkpoint = "ck/" + s.variant + "/snapshot_" + std::to_string(s.epoch) + ".pth.tar";
  r.checkpoint_sha256 = std::string(64, 'b');
  r.architecture.depths = {3, 3, 9, 3};
  r.architecture.dims = {48, 96, 192, 384};
  r.architecture.head_channels = 256;
  r.architecture.head_upsample = {true, true, false};
  r.architecture.depth_dim = 32;
  r.settings_key = "key";
  r.metrics = summarize(s.samples);
  return r;
}

// A finished sweep: job files plus samples.h5 for variants XS and S, epochs 69/70,
// both protocols, flip on and off.
void write_sweep(const fs::path& dir) {
  std::map<std::string, JobSamples> all;
  uint32_t seed = 100;
  for (const auto& [variant, quality] : {std::pair<std::string, double>{"XS", 12.0}, {"S", 0.0}}) {
    for (int epoch : {69, 70}) {
      for (int protocol : {1, 2}) {
        for (bool flip : {false, true}) {
          // Epoch 70 is a hair better than 69 (not distinguishable); flip 2 mm better.
          const double q = quality + (epoch == 70 ? -0.2 : 0.0) + (flip ? -2.0 : 0.0);
          JobSamples s = make_job(variant, epoch, protocol, flip, q, ++seed);
          const JobResult r = result_for(s);
          write_file_atomic(jobs::job_result_path(dir.string(), r.job), job_result_to_json(r));
          all[r.job.file_stem()] = std::move(s);
        }
      }
    }
  }
  update_samples_file((dir / kSamplesFile).string(), all);
}

TEST(ComparisonStats, SamplesFileRoundTripsAndUpdatesInPlace) {
  const fs::path dir = test::work_dir("eval_stats_roundtrip");
  const std::string path = (dir / "samples.h5").string();
  const JobSamples a = make_job("M", 70, 2, true, 0, 1, 1);
  const JobSamples b = make_job("M", 69, 1, false, 3, 2, 1);
  update_samples_file(path, {{"M_e70_p2_flip", a}});
  update_samples_file(path, {{"M_e69_p1_noflip", b}});
  JobSamples a2 = a;
  a2.samples.resize(10);
  update_samples_file(path, {{"M_e70_p2_flip", a2}});  // replaces, keeps the other
  const auto stored = read_samples_file(path);
  ASSERT_EQ(stored.size(), 2u);
  const JobSamples& got = stored.at("M_e70_p2_flip");
  ASSERT_EQ(got.samples.size(), 10u);
  EXPECT_EQ(got.variant, "M");
  EXPECT_EQ(got.epoch, 70);
  EXPECT_TRUE(got.flip);
  EXPECT_EQ(got.samples[3].image_id, a.samples[3].image_id);
  EXPECT_EQ(got.samples[3].camera, a.samples[3].camera);
  EXPECT_NEAR(got.samples[3].joint_error[kNMpjpe][5], a.samples[3].joint_error[kNMpjpe][5], 1e-4);
  EXPECT_EQ(stored.at("M_e69_p1_noflip").samples.size(), b.samples.size());
  EXPECT_FALSE(fs::exists(temporary_name(path)));
}

TEST(ComparisonStats, SamplesFileRejectsNegativeErrorsAndOtherFiles) {
  const fs::path dir = test::work_dir("eval_stats_bad");
  const std::string path = (dir / "samples.h5").string();
  JobSamples bad = make_job("M", 70, 2, true, 0, 1, 1);
  bad.samples[4].joint_error[kPaMpjpe][2] = -1.0;
  update_samples_file(path, {{"M_e70_p2_flip", bad}});
  try {
    read_samples_file(path);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("M_e70_p2_flip"), std::string::npos) << msg;
    EXPECT_NE(msg.find("image " + std::to_string(bad.samples[4].image_id)), std::string::npos)
        << msg;
  }
  test::write_file((dir / "text.h5").string(), "not hdf5");
  EXPECT_THROW(read_samples_file((dir / "text.h5").string()), Error);
}

TEST(ComparisonStats, BootstrapIsSeededAndExactOnConstantData) {
  const Resampler r(40, 2000, 5);
  std::vector<double> sums(40), counts(40);
  for (int c = 0; c < 40; ++c) {
    counts[c] = 1 + c % 3;
    sums[c] = 2.5 * counts[c];  // every frame differs by exactly 2.5 mm
  }
  const Interval i = r.mean_ci(sums, counts);
  EXPECT_DOUBLE_EQ(i.mean, 2.5);
  EXPECT_NEAR(i.lo, 2.5, 1e-12);
  EXPECT_NEAR(i.hi, 2.5, 1e-12);
  EXPECT_TRUE(i.excludes_zero());
  for (int c = 0; c < 40; ++c) sums[c] = (c % 2 ? 1.0 : -1.0) * counts[c] + 0.01 * c;
  const Interval x = Resampler(40, 2000, 5).mean_ci(sums, counts);
  const Interval y = Resampler(40, 2000, 5).mean_ci(sums, counts);
  EXPECT_EQ(x.lo, y.lo);
  EXPECT_EQ(x.hi, y.hi);
  EXPECT_LT(x.lo, x.mean);
  EXPECT_GT(x.hi, x.mean);
  const Interval z = Resampler(40, 2000, 6).mean_ci(sums, counts);
  EXPECT_NE(x.lo, z.lo);  // another seed, other draws
  EXPECT_DOUBLE_EQ(percentile_sorted({1, 2, 3, 4}, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(percentile_sorted({0, 10}, 0.025), 0.25);
}

TEST(ComparisonStats, CompareAgreesWithNumpyAndDrawsPictures) {
  const fs::path dir = test::work_dir("eval_stats_compare");
  write_sweep(dir);
  const auto run =
      test::run_sh(std::string(CNP_EXE) + " compare " + dir.string() + " --output " + dir.string(),
                   (dir / "scratch").string());
  ASSERT_EQ(run.code, 0) << run.err;
  EXPECT_NE(run.out.find("95% CI"), std::string::npos) << run.out;
  const auto check = test::run_sh(std::string(CNP_PYTHON) + " " + CNP_SOURCE_DIR +
                                      "/tests/eval/check_comparison.py " + dir.string(),
                                  (dir / "scratch").string());
  EXPECT_EQ(check.code, 0) << check.out << check.err;
  EXPECT_NE(check.out.find("comparison agrees"), std::string::npos) << check.out;
}

// Issue 11: job files that lie about themselves are refused with one line naming them.
TEST(ComparisonStats, CompareRefusesInconsistentJobFiles) {
  const fs::path base = test::work_dir("eval_stats_reject");
  JobResult r = result_for(make_job("M", 70, 2, true, 0, 1, 1));
  const std::string good = job_result_to_json(r);
  struct Case {
    std::string name, file, text, expect;
  };
  nlohmann::json negative = nlohmann::json::parse(good);
  negative["metrics"]["mpjpe"] = -3.0;
  nlohmann::json negative_cell = nlohmann::json::parse(good);
  negative_cell["metrics"]["per_joint"]["R_Hip"]["pck3d_150"] = -1.0;
  nlohmann::json no_variant = nlohmann::json::parse(good);
  no_variant["job"].erase("variant");
  const std::vector<Case> cases = {
      {"negative", "M_e70_p2_flip.json", negative.dump(), "key 'metrics.mpjpe' is negative"},
      {"negative_cell", "M_e70_p2_flip.json", negative_cell.dump(),
       "key 'metrics.per_joint.R_Hip.pck3d_150' is negative"},
      {"epoch", "M_e69_p2_flip.json", good, "key 'job.epoch' is 70 but the file name says 69"},
      {"flip", "M_e70_p2_noflip.json", good, "key 'job.flip' is true but the file name says false"},
      {"variant", "L_e70_p2_flip_gt.json", good, "key 'job.variant' is M but the file name says L"},
      {"bbox", "M_e70_p2_flip_detected.json", good, "key 'job.bbox' is gt but the file name"},
      {"name", "best.json", good, "file name is not"},
      {"missing", "M_e70_p2_flip.json", no_variant.dump(), "missing key 'job.variant'"},
  };
  for (const auto& c : cases) {
    const fs::path dir = base / c.name;
    test::write_file((dir / "jobs" / c.file).string(), c.text);
    const std::string want = (dir / "jobs" / c.file).string() + ": " + c.expect;
    try {
      load_job_results(dir.string());
      ADD_FAILURE() << c.name << ": accepted";
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).rfind(want, 0), 0u) << c.name << ": " << e.what();
    }
  }
  // The command prints that one line and fails.
  const auto run = test::run_sh(std::string(CNP_EXE) + " compare " + (base / "epoch").string(),
                                (base / "scratch").string());
  EXPECT_NE(run.code, 0);
  EXPECT_NE(run.err.find((base / "epoch" / "jobs" / "M_e69_p2_flip.json").string() +
                         ": key 'job.epoch' is 70"),
            std::string::npos)
      << run.err;
  EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << run.err;
  // Both name forms are accepted when they agree with the content.
  for (const std::string name : {"M_e70_p2_flip.json", "M_e70_p2_flip_gt.json"}) {
    const fs::path dir = base / ("ok_" + name);
    test::write_file((dir / "jobs" / name).string(), good);
    EXPECT_EQ(load_job_results(dir.string()).size(), 1u) << name;
  }
}

}  // namespace
}  // namespace cnp::pipeline
