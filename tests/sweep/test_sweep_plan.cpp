// Planning and validation without MPI (pipeline/sweep_plan.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "jobs/sweep.h"
#include "pipeline/sweep_plan.h"
#include "tests/support/test_support.h"

namespace cnp::pipeline {
namespace {

Plan plan_from_yaml(const std::string& root, const std::string& grid) {
  Plan plan;
  plan.config = jobs::parse_sweep("name: t\ndataset:\n  root: " + root +
                                      "\n  bbox: gt\nmodel:\n  checkpoint: \"" + root +
                                      "/ck/{variant}_{epoch}.pth\"\nsweep:\n" + grid,
                                  "t.yaml");
  plan.config.output = root + "/out";
  plan_jobs(plan);
  return plan;
}

const char* kGrid =
    "  variants: [XS]\n  epochs: [1, 2]\n  protocols: [1, 2]\n  flip: [false, true]\n";

TEST(SweepPlan, OnePassPerCheckpointOverOneSampleSet) {
  const Plan plan = plan_from_yaml("/nonexistent", kGrid);
  EXPECT_EQ(plan.jobs.size(), 8u);
  ASSERT_EQ(plan.passes.size(), 2u);  // one per epoch: protocols and flips share it
  ASSERT_EQ(plan.sets.size(), 1u);    // gt boxes, protocol 2 covers protocol 1
  EXPECT_EQ(plan.sets[0].key.protocol, 2);
  EXPECT_EQ(plan.pass_set, (std::vector<int>{0, 0}));
  for (const auto& pass : plan.passes) EXPECT_EQ(pass.jobs.size(), 4u);
}

TEST(SweepPlan, ValidationListsEveryProblem) {
  const std::string dir = test::work_dir("sweep_plan_validate");
  Plan plan = plan_from_yaml(dir + "/no_data", kGrid);
  const auto problems = validate_plan(plan, ValidationOptions{});
  auto has = [&](const std::string& needle) {
    return std::any_of(problems.begin(), problems.end(),
                       [&](const std::string& p) { return p.find(needle) != std::string::npos; });
  };
  EXPECT_TRUE(has("ck/XS_1.pth: checkpoint not found (model.checkpoint for XS)"));
  EXPECT_TRUE(has("ck/XS_2.pth: checkpoint not found"));
  EXPECT_TRUE(has(dir + "/no_data")) << "the data set problem is listed too";
  EXPECT_GE(problems.size(), 3u);
}

TEST(SweepPlan, SelectsPassesWithUnfinishedJobs) {
  Plan plan = plan_from_yaml("/nonexistent", kGrid);
  plan.job_current.assign(plan.jobs.size(), 1);
  PassSelection selection = select_passes(plan);
  EXPECT_EQ(selection.compute, (std::vector<char>{0, 0}));
  // Unfinish one flip job of the second pass: it computes, with the flipped half.
  const auto& second = plan.passes[1].jobs;
  const auto flip_job =
      *std::find_if(second.begin(), second.end(), [&](size_t j) { return plan.jobs[j].flip; });
  plan.job_current[flip_job] = 0;
  selection = select_passes(plan);
  EXPECT_EQ(selection.compute, (std::vector<char>{0, 1}));
  EXPECT_EQ(selection.flip, (std::vector<char>{0, 1}));
  const std::string dry = format_dry_run(plan, 2, selection.compute);
  EXPECT_NE(dry.find("1/2 forward passes to compute"), std::string::npos) << dry;
}

TEST(SweepPlan, OutputFolderProblemsNameTheOutputKey) {
  const std::string dir = test::work_dir("sweep_plan_output");
  test::write_file(dir + "/a_file", "x");
  EXPECT_EQ(check_output_folder(dir + "/a_file"),
            "output: " + dir + "/a_file is a file, not a folder");
  EXPECT_EQ(check_output_folder(dir + "/a_file/sub"), "output: " + dir +
                                                          "/a_file/sub cannot be created: " + dir +
                                                          "/a_file is a file, not a folder");
  // /proc refuses new files even to root (access() would say yes).
  const std::string proc = check_output_folder("/proc/cnp_no_such/out");
  EXPECT_EQ(proc.rfind("output: /proc/cnp_no_such/out is not writable (/proc: ", 0), 0u) << proc;
  EXPECT_EQ(check_output_folder(dir + "/new/nested"), "");
  EXPECT_FALSE(std::filesystem::exists(dir + "/new")) << "the check creates nothing";
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), {}), 1) << "probe removed";
}

TEST(SweepPlan, Fp16OnTheCpuIsAProblem) {
  Plan plan = plan_from_yaml("/nonexistent", kGrid);
  plan.config.runtime.precision = "fp16";
  ValidationOptions options;
  options.device = "cpu";
  const auto problems = validate_plan(plan, options);
  const std::string expected =
      "runtime.precision: fp16 needs a CUDA device, but runtime.device 'auto' resolves to cpu "
      "here (use fp32 or bf16)";
  EXPECT_NE(std::find(problems.begin(), problems.end(), expected), problems.end());
  options.device = "cuda:0";
  for (const auto& problem : validate_plan(plan, options))
    EXPECT_EQ(problem.find("fp16"), std::string::npos) << problem;
}

TEST(SweepPlan, AVariantWithAnotherJointCountIsAProblem) {
  Plan plan;
  plan.config = jobs::parse_sweep(
      "name: t\ndataset:\n  root: /nonexistent\nmodel:\n  checkpoint: "
      "\"/nonexistent/{variant}.pth\"\n"
      "  variants:\n    XS17:\n      depths: [3, 3, 9, 3]\n      dims: [48, 96, 192, 384]\n"
      "      head_channels: 128\n      head_upsample: [true, true, false]\n      depth_dim: 32\n"
      "      joints: 17\nsweep:\n  variants: [XS17, XS]\n  epochs: [1]\n  protocols: [2]\n"
      "  flip: [false]\n",
      "t.yaml");
  plan_jobs(plan);
  EXPECT_EQ(plan.joints, 18);
  EXPECT_EQ(plan.coords_per_sample(), 54);
  const auto problems = validate_plan(plan, ValidationOptions{});
  const std::string expected =
      "variant XS17 predicts 17 joints but the data set has 18 (model.variants.XS17.joints)";
  EXPECT_NE(std::find(problems.begin(), problems.end(), expected), problems.end());
  for (const auto& problem : problems)
    EXPECT_EQ(problem.find("variant XS predicts"), std::string::npos) << problem;
}

}  // namespace
}  // namespace cnp::pipeline
