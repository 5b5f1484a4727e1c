// Job grid, templates, forward-pass planning, settings key and resume detection.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "common/files.h"
#include "jobs/grid.h"
#include "pipeline/report.h"

namespace cnp::jobs {
namespace {
namespace fs = std::filesystem;

SweepConfig config(const std::vector<std::string>& variants, const std::vector<int>& epochs,
                   const std::vector<int>& protocols, const std::vector<bool>& flips,
                   const std::string& bbox = "gt",
                   const std::string& checkpoint = "ck/{variant}/snapshot_{epoch}.pth.tar",
                   const std::string& bbox_root = "bb/protocol{protocol}.json") {
  SweepConfig c;
  c.source_path = "t.yaml";
  c.name = "t";
  c.dataset.root = "data/h36m";
  c.dataset.bbox = bbox;
  c.dataset.bbox_root = bbox == "detected" ? bbox_root : "";
  c.model.checkpoint = checkpoint;
  c.sweep = {variants, epochs, protocols, flips};
  return c;
}

TEST(Grid, ExpandsInListedOrder) {
  const auto jobs = expand_jobs(config({"M", "L"}, {70, 69}, {2, 1}, {false, true}));
  ASSERT_EQ(jobs.size(), 16u);
  EXPECT_EQ(jobs[0].stem(), "M_e70_p2_noflip");
  EXPECT_EQ(jobs[1].stem(), "M_e70_p2_flip");
  EXPECT_EQ(jobs[2].stem(), "M_e70_p1_noflip");
  EXPECT_EQ(jobs[4].stem(), "M_e69_p2_noflip");
  EXPECT_EQ(jobs[8].stem(), "L_e70_p2_noflip");
  EXPECT_EQ(jobs[15].stem(), "L_e69_p1_flip");
  EXPECT_EQ(jobs[15].checkpoint, "ck/L/snapshot_69.pth.tar");
  EXPECT_EQ(jobs[15].bbox, "gt");
  EXPECT_EQ(jobs[15].bbox_root, "");
  std::set<std::string> stems;
  for (const auto& j : jobs) stems.insert(j.stem());
  EXPECT_EQ(stems.size(), jobs.size());

  const auto det = expand_jobs(config({"S"}, {1}, {1, 2}, {false}, "detected"));
  EXPECT_EQ(det[0].bbox_root, "bb/protocol1.json");
  EXPECT_EQ(det[1].bbox_root, "bb/protocol2.json");
  EXPECT_EQ(det[1].bbox, "detected");
  EXPECT_THROW(expand_jobs(config({}, {1}, {1}, {false})), std::exception);
}

TEST(Grid, Templates) {
  EXPECT_EQ(resolve_template("a/{variant}/{epoch}_{protocol}/{variant}", "XS", 7, 1),
            "a/XS/7_1/XS");
  EXPECT_EQ(resolve_template("plain.pth", "XS", 7, 1), "plain.pth");
  try {
    resolve_template("ck/{variant}/{seed}.pth", "M", 1, 2);
    FAIL();
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("{seed}"), std::string::npos) << e.what();
  }
  EXPECT_THROW(resolve_template("ck/{variant", "M", 1, 2), std::exception);
  EXPECT_THROW(resolve_template("ck/variant}", "M", 1, 2), std::exception);
}

TEST(Grid, GroundTruthBoxesShareOnePassAcrossProtocols) {
  const auto jobs = expand_jobs(config({"M", "L"}, {69, 70}, {1, 2}, {false, true}));
  const auto passes = plan_passes(jobs);
  ASSERT_EQ(passes.size(), 4u);  // one per checkpoint
  size_t covered = 0;
  for (const auto& p : passes) {
    EXPECT_EQ(p.protocols, (std::vector<int>{1, 2}));
    EXPECT_EQ(p.subjects, (std::vector<int>{9, 11}));
    EXPECT_TRUE(p.flip);
    EXPECT_EQ(p.jobs.size(), 4u);
    for (size_t j : p.jobs) EXPECT_EQ(jobs[j].checkpoint, p.checkpoint);
    covered += p.jobs.size();
  }
  EXPECT_EQ(covered, jobs.size());
  // Deterministic order: first appearance in the job list.
  EXPECT_EQ(passes[0].checkpoint, "ck/M/snapshot_69.pth.tar");
  EXPECT_EQ(passes[3].checkpoint, "ck/L/snapshot_70.pth.tar");
  EXPECT_EQ(passes[0].variant, "M");
}

TEST(Grid, ProtocolOneOnlyNeedsS11AndNoFlip) {
  const auto passes = plan_passes(expand_jobs(config({"M"}, {70}, {1}, {false})));
  ASSERT_EQ(passes.size(), 1u);
  EXPECT_EQ(passes[0].subjects, (std::vector<int>{11}));
  EXPECT_FALSE(passes[0].flip);
  const auto flip_only = plan_passes(expand_jobs(config({"M"}, {70}, {2}, {true})));
  ASSERT_EQ(flip_only.size(), 1u);
  EXPECT_TRUE(flip_only[0].flip);
}

TEST(Grid, DetectedBoxesGetOnePassPerRootNetFile) {
  const auto jobs = expand_jobs(config({"M", "L"}, {70}, {1, 2}, {false, true}, "detected"));
  const auto passes = plan_passes(jobs);
  ASSERT_EQ(passes.size(), 4u);  // 2 checkpoints x 2 RootNet files
  EXPECT_EQ(passes[0].bbox_root, "bb/protocol1.json");
  EXPECT_EQ(passes[0].protocols, (std::vector<int>{1}));
  EXPECT_EQ(passes[0].subjects, (std::vector<int>{11}));
  EXPECT_EQ(passes[1].protocols, (std::vector<int>{2}));
  EXPECT_EQ(passes[1].subjects, (std::vector<int>{9, 11}));
  for (const auto& p : passes) {
    EXPECT_EQ(p.jobs.size(), 2u);  // flip and noflip share the pass
    EXPECT_TRUE(p.flip);
    EXPECT_EQ(p.bbox, "detected");
  }
  // One RootNet file for both protocols: one pass again.
  const auto shared =
      plan_passes(expand_jobs(config({"M"}, {70}, {1, 2}, {false}, "detected",
                                     "ck/{variant}/snapshot_{epoch}.pth.tar", "bb/all.json")));
  ASSERT_EQ(shared.size(), 1u);
  EXPECT_EQ(shared[0].protocols, (std::vector<int>{1, 2}));
  EXPECT_FALSE(shared[0].flip);
}

TEST(Grid, ProtocolSpecificCheckpointsSplitPasses) {
  const auto passes = plan_passes(expand_jobs(
      config({"M"}, {70}, {1, 2}, {false}, "gt", "ck/{variant}_p{protocol}_{epoch}.pth")));
  ASSERT_EQ(passes.size(), 2u);
  EXPECT_EQ(passes[0].subjects, (std::vector<int>{11}));
  EXPECT_EQ(passes[1].subjects, (std::vector<int>{9, 11}));
}

TEST(Ledger, SettingsKeyIsStableAndSensitive) {
  const fs::path dir = fs::path(CNP_TEST_WORK) / "jobs_grid_key";
  fs::create_directories(dir);
  write_file_atomic((dir / "a.json").string(), "[1]");
  write_file_atomic((dir / "b.json").string(), "[2]");
  Job job;
  job.variant = "L";
  job.epoch = 70;
  job.protocol = 2;
  DatasetConfig ds;
  ds.root = "data/h36m";
  model::Architecture arch;
  arch.depths = {3, 3, 9, 3};
  arch.dims = {48, 96, 192, 384};
  arch.head_channels = 512;
  arch.head_upsample = {true, true, true};
  arch.depth_dim = 64;
  const std::string sha(64, 'c');
  const std::string base = job_settings_key(job, sha, ds, arch, "fp32");
  EXPECT_EQ(base.size(), 64u);
  EXPECT_EQ(base, job_settings_key(job, sha, ds, arch, "fp32"));
  Job other_epoch = job;
  other_epoch.epoch = 71;  // same weights and settings: same result
  EXPECT_EQ(base, job_settings_key(other_epoch, sha, ds, arch, "fp32"));

  std::set<std::string> keys = {base};
  auto add = [&](const std::string& key, const char* what) {
    EXPECT_TRUE(keys.insert(key).second) << what << " does not change the key";
  };
  add(job_settings_key(job, std::string(64, 'd'), ds, arch, "fp32"), "checkpoint sha");
  add(job_settings_key(job, sha, ds, arch, "bf16"), "precision");
  auto arch2 = arch;
  arch2.head_upsample = {true, true, false};
  add(job_settings_key(job, sha, ds, arch2, "fp32"), "architecture");
  Job j = job;
  j.protocol = 1;
  add(job_settings_key(j, sha, ds, arch, "fp32"), "protocol");
  j = job;
  j.flip = true;
  add(job_settings_key(j, sha, ds, arch, "fp32"), "flip");
  j = job;
  j.variant = "L2";
  add(job_settings_key(j, sha, ds, arch, "fp32"), "variant");
  DatasetConfig d = ds;
  d.sample_every = 32;
  add(job_settings_key(job, sha, d, arch, "fp32"), "sample_every");
  d = ds;
  d.root = "other/h36m";
  add(job_settings_key(job, sha, d, arch, "fp32"), "dataset root");
  d = ds;
  d.skip_bad_samples = true;
  add(job_settings_key(job, sha, d, arch, "fp32"), "skip setting");
  j = job;
  j.bbox = "detected";
  j.bbox_root = (dir / "a.json").string();
  add(job_settings_key(j, sha, ds, arch, "fp32"), "detected boxes");
  j.bbox_root = (dir / "b.json").string();
  add(job_settings_key(j, sha, ds, arch, "fp32"), "RootNet file content");
  // Same content under another name: same boxes, same key.
  write_file_atomic((dir / "c.json").string(), "[2]");
  Job same = j;
  same.bbox_root = (dir / "c.json").string();
  EXPECT_EQ(job_settings_key(same, sha, ds, arch, "fp32"),
            job_settings_key(j, sha, ds, arch, "fp32"));
  // The short overload is a fixed default of the long one.
  EXPECT_EQ(job_settings_key(job, sha, ds),
            job_settings_key(job, sha, ds, model::Architecture{}, "fp32"));
}

TEST(Ledger, ResumeDetection) {
  const fs::path out = fs::path(CNP_TEST_WORK) / "jobs_grid_resume";
  fs::remove_all(out);
  Job job;
  job.variant = "M";
  job.epoch = 70;
  job.protocol = 2;
  job.flip = true;
  EXPECT_EQ(job_result_path(out.string(), job), (out / "jobs" / "M_e70_p2_flip_gt.json").string());
  EXPECT_EQ(job_predictions_path(out.string(), job),
            (out / "predictions" / "M_e70_p2_flip_gt.json").string());
  EXPECT_FALSE(job_result_is_current(out.string(), job, "k1"));  // nothing there

  pipeline::JobResult r;
  r.job = job;
  r.settings_key = "k1";
  r.metrics.num_samples = 10;
  r.metrics.overall = {{"mpjpe", 50.0}, {"pa_mpjpe", 35.0}};
  write_file_atomic(job_result_path(out.string(), job), pipeline::job_result_to_json(r));
  EXPECT_FALSE(job_result_is_current(out.string(), job, "k1"));  // predictions missing
  write_file_atomic(job_predictions_path(out.string(), job), "[]");
  EXPECT_TRUE(job_result_is_current(out.string(), job, "k1"));
  EXPECT_FALSE(job_result_is_current(out.string(), job, "k2"));  // settings changed
  Job noflip = job;
  noflip.flip = false;
  EXPECT_FALSE(job_result_is_current(out.string(), noflip, "k1"));  // other file

  // A file that claims another job under this name is not trusted.
  r.job.epoch = 69;
  write_file_atomic(job_result_path(out.string(), job), pipeline::job_result_to_json(r));
  EXPECT_FALSE(job_result_is_current(out.string(), job, "k1"));
  // Corrupt and truncated files: not current, no exception.
  write_file_atomic(job_result_path(out.string(), job), "{\"settings_key\": \"k1\", \"job\": ");
  EXPECT_FALSE(job_result_is_current(out.string(), job, "k1"));
  write_file_atomic(job_result_path(out.string(), job), "{\"settings_key\": \"k1\"}");
  EXPECT_FALSE(job_result_is_current(out.string(), job, "k1"));
}

// Results written before the box source was in the file name still count for
// resume, but only for the box source they hold; recomputing replaces them.
TEST(Ledger, OldFileNamesStillResume) {
  const fs::path out = fs::path(CNP_TEST_WORK) / "jobs_grid_old_names";
  fs::remove_all(out);
  Job job;
  job.variant = "M";
  job.epoch = 70;
  job.protocol = 2;
  pipeline::JobResult r;
  r.job = job;
  r.settings_key = "k1";
  r.metrics.num_samples = 10;
  r.metrics.overall = {{"mpjpe", 50.0}, {"pa_mpjpe", 35.0}};
  const std::string old_json = (out / "jobs" / "M_e70_p2_noflip.json").string();
  const std::string old_predictions = (out / "predictions" / "M_e70_p2_noflip.json").string();
  write_file_atomic(old_json, pipeline::job_result_to_json(r));
  write_file_atomic(old_predictions, "[]");
  EXPECT_TRUE(job_result_is_current(out.string(), job, "k1"));
  Job detected = job;
  detected.bbox = "detected";
  EXPECT_FALSE(job_result_is_current(out.string(), detected, "k1"));  // holds gt results
  remove_legacy_result(out.string(), detected);                       // not its file
  EXPECT_TRUE(fs::exists(old_json));
  remove_legacy_result(out.string(), job);
  EXPECT_FALSE(fs::exists(old_json));
  EXPECT_FALSE(fs::exists(old_predictions));
}

}  // namespace
}  // namespace cnp::jobs
