// Result files: job JSON round trip and field names (INTERFACE.md "Outputs"),
// predictions in the reference's format, comparison report and `cnp compare`.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/files.h"
#include "pipeline/report.h"
#include "tests/support/test_support.h"

namespace cnp::pipeline {
namespace {
namespace fs = std::filesystem;

fs::path work_dir(const std::string& name) {
  return test::work_dir("eval_report_" + name);
}

JobResult make_result(const std::string& variant, int epoch, int protocol, bool flip, double mpjpe,
                      double pa_mpjpe) {
  JobResult r;
  r.job.variant = variant;
  r.job.epoch = epoch;
  r.job.protocol = protocol;
  r.job.flip = flip;
  r.job.checkpoint = "ck/" + variant + "/snapshot_" + std::to_string(epoch) + ".pth.tar";
  r.checkpoint_sha256 = std::string(64, 'a');
  r.architecture.depths = {3, 3, 9, 3};
  r.architecture.dims = {48, 96, 192, 384};
  r.architecture.head_channels = 512;
  r.architecture.head_upsample = {true, true, true};
  r.architecture.depth_dim = 64;
  r.settings_key = "key-" + r.job.stem();
  r.metrics.num_samples = 8695;
  r.metrics.overall = {{"mpjpe", mpjpe}, {"pa_mpjpe", pa_mpjpe}};
  r.metrics.per_action["Directions"] = {{"mpjpe", mpjpe + 1}, {"pa_mpjpe", pa_mpjpe + 1}};
  r.metrics.per_action["WalkTogether"] = {{"mpjpe", mpjpe - 1}, {"pa_mpjpe", pa_mpjpe - 1}};
  r.metrics.per_joint["R_Hip"] = {{"mpjpe", 20.5}, {"pa_mpjpe", 18.25}};
  r.skipped_samples = 3;
  r.seconds = 12.5;
  r.images_per_second = 695.6;
  r.ranks = 2;
  r.sample_every = 32;
  r.dataset_root = "/data/h36m";
  return r;
}

TEST(Report, JobJsonHasTheInterfaceFields) {
  const auto j =
      nlohmann::json::parse(job_result_to_json(make_result("L", 70, 2, true, 49.8, 33.1)));
  EXPECT_EQ(j["job"]["variant"], "L");
  EXPECT_EQ(j["job"]["epoch"], 70);
  EXPECT_EQ(j["job"]["protocol"], 2);
  EXPECT_EQ(j["job"]["flip"], true);
  EXPECT_EQ(j["job"]["bbox"], "gt");
  EXPECT_EQ(j["checkpoint"]["path"], "ck/L/snapshot_70.pth.tar");
  EXPECT_EQ(j["checkpoint"]["architecture"]["dims"], nlohmann::json({48, 96, 192, 384}));
  EXPECT_EQ(j["checkpoint"]["architecture"]["head_upsample"], nlohmann::json({true, true, true}));
  EXPECT_EQ(j["checkpoint"]["architecture"]["joints"], 18);
  EXPECT_DOUBLE_EQ(j["metrics"]["mpjpe"].get<double>(), 49.8);
  EXPECT_DOUBLE_EQ(j["metrics"]["pa_mpjpe"].get<double>(), 33.1);
  EXPECT_EQ(j["metrics"]["headline"], "mpjpe");
  EXPECT_EQ(j["metrics"]["num_samples"], 8695);
  EXPECT_DOUBLE_EQ(j["metrics"]["per_action"]["Directions"]["mpjpe"].get<double>(), 50.8);
  EXPECT_DOUBLE_EQ(j["metrics"]["per_joint"]["R_Hip"]["pa_mpjpe"].get<double>(), 18.25);
  EXPECT_EQ(j["timing"]["ranks"], 2);
  EXPECT_EQ(j["settings"]["sample_every"], 32);
  EXPECT_EQ(j["settings_key"], "key-L_e70_p2_flip");
  EXPECT_EQ(j["skipped_samples"], 3);
  EXPECT_TRUE(j.contains("cnp_version"));
  const auto p1 =
      nlohmann::json::parse(job_result_to_json(make_result("L", 70, 1, false, 49.8, 33.1)));
  EXPECT_EQ(p1["metrics"]["headline"], "pa_mpjpe");
}

TEST(Report, JobJsonRoundTrips) {
  const JobResult a = make_result("M", 69, 1, false, 51.2, 34.9);
  const JobResult b = job_result_from_json(job_result_to_json(a), "x.json");
  EXPECT_EQ(b.job.stem(), a.job.stem());
  EXPECT_EQ(b.job.checkpoint, a.job.checkpoint);
  EXPECT_EQ(b.checkpoint_sha256, a.checkpoint_sha256);
  EXPECT_TRUE(b.architecture == a.architecture);
  EXPECT_EQ(b.metrics.overall, a.metrics.overall);
  EXPECT_EQ(b.metrics.per_action, a.metrics.per_action);
  EXPECT_EQ(b.metrics.per_joint, a.metrics.per_joint);
  EXPECT_EQ(b.metrics.num_samples, a.metrics.num_samples);
  EXPECT_EQ(b.settings_key, a.settings_key);
  EXPECT_EQ(b.skipped_samples, a.skipped_samples);
  EXPECT_EQ(b.ranks, a.ranks);
  EXPECT_EQ(b.sample_every, a.sample_every);
  EXPECT_EQ(b.dataset_root, a.dataset_root);
  EXPECT_DOUBLE_EQ(b.seconds, a.seconds);
}

TEST(Report, MalformedJobJsonNamesFileAndKey) {
  auto j = nlohmann::json::parse(job_result_to_json(make_result("M", 69, 2, false, 51.2, 34.9)));
  auto expect_error = [](const std::string& text, const std::string& needle) {
    try {
      job_result_from_json(text, "res/jobs/M_e69_p2_noflip.json");
      ADD_FAILURE() << "no error for " << needle;
    } catch (const std::exception& e) {
      const std::string msg = e.what();
      EXPECT_EQ(msg.rfind("res/jobs/M_e69_p2_noflip.json: ", 0), 0u) << msg;
      EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    }
  };
  expect_error("{not json", "not valid JSON");
  auto missing = j;
  missing["metrics"].erase("mpjpe");
  expect_error(missing.dump(), "metrics.mpjpe");
  auto wrong = j;
  wrong["job"]["epoch"] = "seventy";
  expect_error(wrong.dump(), "job.epoch");
  auto arch = j;
  arch["checkpoint"]["architecture"]["dims"] = {1, 2};
  expect_error(arch.dump(), "checkpoint.architecture.dims");
  auto action = j;
  action["metrics"]["per_action"]["Directions"]["mpjpe"] = "x";
  expect_error(action.dump(), "metrics.per_action.Directions.mpjpe");
}

TEST(Report, EmptyResultIsRefused) {
  JobResult r = make_result("M", 69, 2, false, 1, 1);
  r.metrics = {};
  EXPECT_THROW(job_result_to_json(r), std::exception);
}

TEST(Report, PredictionsInReferenceFormat) {
  data::Sample s1, s2;
  s1.image_id = 7;
  s1.bbox = {1, 2, 300, 300};
  s1.root_cam = {10, 20, 5000};
  s2.image_id = 9;
  s2.bbox = {4, 5, 200, 200};
  s2.root_cam = {-10, 0, 4000};
  SampleResult r1, r2;
  r1.image_id = 7;
  r2.image_id = 9;
  for (int j = 0; j < data::kNumJoints; ++j) {
    r1.pred_relative[j] = {1.0 * j, 2.0 * j, 3.0 * j};
    r1.pred_aligned[j] = {-1.0 * j, 0.5, 0.25};
    r2.pred_relative[j] = {0.125, 0, 0};
    r2.pred_aligned[j] = {0, 0, 0};
  }
  for (int protocol : {1, 2}) {
    const auto j = nlohmann::json::parse(predictions_to_json({r1, r2}, {&s1, &s2}, protocol));
    ASSERT_EQ(j.size(), 2u);
    EXPECT_EQ(j[0]["image_id"], 7);
    ASSERT_EQ(j[0]["joint_cam"].size(), 17u);  // Thorax dropped
    EXPECT_EQ(j[0]["joint_cam"][16].size(), 3u);
    const double x16 = j[0]["joint_cam"][16][0].get<double>();
    EXPECT_DOUBLE_EQ(x16, protocol == 1 ? -16.0 : 16.0);
    EXPECT_EQ(j[0]["bbox"], nlohmann::json({1, 2, 300, 300}));
    EXPECT_EQ(j[1]["root_cam"], nlohmann::json({-10, 0, 4000}));
  }
  EXPECT_THROW(predictions_to_json({r1}, {&s1, &s2}, 2), std::exception);
  EXPECT_THROW(predictions_to_json({r2, r1}, {&s1, &s2}, 2), std::exception);
}

std::vector<JobResult> sweep_results() {
  return {make_result("M", 70, 2, false, 52.0, 36.0), make_result("M", 70, 2, true, 51.0, 35.5),
          make_result("L", 70, 2, false, 50.5, 34.0), make_result("L", 70, 2, true, 49.5, 33.0),
          make_result("L", 70, 1, true, 48.0, 32.5),  make_result("M", 70, 1, true, 50.0, 34.0)};
}

TEST(Report, ComparisonBestPublishedAndFlipGain) {
  const auto registry = model::VariantRegistry::with_builtins();
  const auto j = nlohmann::json::parse(comparison_to_json(sweep_results(), registry));
  ASSERT_EQ(j["jobs"].size(), 6u);
  // Rows sorted by protocol first.
  EXPECT_EQ(j["jobs"][0]["protocol"], 1);
  EXPECT_EQ(j["best"]["2"]["job"], "L_e70_p2_flip");
  EXPECT_DOUBLE_EQ(j["best"]["2"]["value"].get<double>(), 49.5);
  EXPECT_EQ(j["best"]["2"]["runner_up"]["job"], "L_e70_p2_noflip");
  EXPECT_NEAR(j["best"]["2"]["margin"].get<double>(), 1.0, 1e-9);
  EXPECT_EQ(j["best"]["1"]["job"], "L_e70_p1_flip");
  EXPECT_DOUBLE_EQ(j["best"]["1"]["value"].get<double>(),
                   32.5);  // PA-MPJPE is protocol 1's headline
  // Published numbers from the registry: L p2 49.75, L p1 32.8.
  const auto* l = registry.find("L");
  ASSERT_TRUE(l && l->published_mpjpe && l->published_pa_mpjpe);
  bool saw_l2 = false, saw_l1 = false;
  for (const auto& p : j["published"]) {
    if (p["variant"] == "L" && p["protocol"] == 2) {
      saw_l2 = true;
      EXPECT_NEAR(p["difference"].get<double>(), 49.5 - *l->published_mpjpe, 1e-9);
    }
    if (p["variant"] == "L" && p["protocol"] == 1) {
      saw_l1 = true;
      EXPECT_NEAR(p["difference"].get<double>(), 32.5 - *l->published_pa_mpjpe, 1e-9);
    }
  }
  EXPECT_TRUE(saw_l2 && saw_l1);
  for (const auto& row : j["jobs"]) {
    if (row["job"] == "M_e70_p2_noflip") {
      EXPECT_NEAR(row["difference"].get<double>(), 52.0 - *registry.find("M")->published_mpjpe,
                  1e-9);
    }
  }
  ASSERT_EQ(j["flip_gain"].size(), 2u);
  for (const auto& g : j["flip_gain"]) EXPECT_NEAR(g["gain"].get<double>(), 1.0, 1e-9);

  const std::string md = comparison_to_markdown(sweep_results(), registry);
  EXPECT_NE(md.find("| L_e70_p2_flip | L | 70 | 2 | yes | gt | 49.50 | 33.00 | **49.50** |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("best is L_e70_p2_flip at 49.50 mm, 1.00 mm better than L_e70_p2_noflip"),
            std::string::npos)
      << md;
  EXPECT_THROW(comparison_to_json({}, registry), std::exception);
}

TEST(Report, CompareCommandReadsResultDirs) {
  const fs::path dir = work_dir("compare");
  for (const auto& r : sweep_results()) {
    write_file_atomic((dir / "a" / "jobs" / (r.job.stem() + ".json")).string(),
                      job_result_to_json(r));
  }
  JobResult other = make_result("S", 60, 2, false, 60.0, 40.0);
  write_file_atomic((dir / "b" / "jobs" / (other.job.stem() + ".json")).string(),
                    job_result_to_json(other));

  const auto loaded = load_job_results((dir / "a").string());
  ASSERT_EQ(loaded.size(), 6u);
  EXPECT_EQ(loaded[0].source, (dir / "a" / "jobs" / "L_e70_p1_flip.json").string());

  const std::string out = (dir / "out").string();
  const std::string cmd = std::string(CNP_EXE) + " compare " + (dir / "a").string() + " " +
                          (dir / "b").string() + " --output " + out + " > " +
                          (dir / "stdout.md").string();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const std::string md = read_file((dir / "stdout.md").string());
  EXPECT_NE(md.find("S_e60_p2_noflip"), std::string::npos) << md;
  EXPECT_EQ(read_file(out + "/comparison.md"), md);
  const auto j = nlohmann::json::parse(read_file(out + "/comparison.json"));
  EXPECT_EQ(j["jobs"].size(), 7u);

  // A broken job file: one line naming the file, non-zero exit.
  write_file_atomic((dir / "b" / "jobs" / "broken.json").string(), "{\"job\": 1}");
  const std::string bad = std::string(CNP_EXE) + " compare " + (dir / "b").string() + " 2> " +
                          (dir / "stderr.txt").string();
  EXPECT_NE(std::system(bad.c_str()), 0);
  const std::string err = read_file((dir / "stderr.txt").string());
  EXPECT_NE(err.find("broken.json"), std::string::npos) << err;
  EXPECT_NE(
      std::system((std::string(CNP_EXE) + " compare " + (dir / "missing").string() + " 2>/dev/null")
                      .c_str()),
      0);
}

}  // namespace
}  // namespace cnp::pipeline
