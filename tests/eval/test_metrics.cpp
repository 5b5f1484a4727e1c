// Metrics against tests/eval/reference_metrics.py (numpy, written from REFERENCE.md §6).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/files.h"
#include "pipeline/metrics.h"

namespace cnp::pipeline {
namespace {

constexpr double kTolMm = 1e-6;

Joints to_joints(const nlohmann::json& j) {
  Joints out{};
  for (int r = 0; r < data::kNumJoints; ++r) {
    for (int c = 0; c < 3; ++c) out[r][c] = j.at(r).at(c).get<double>();
  }
  return out;
}

void expect_joints_near(const Joints& got, const nlohmann::json& want, const std::string& what) {
  for (int r = 0; r < data::kNumJoints; ++r) {
    for (int c = 0; c < 3; ++c) {
      ASSERT_NEAR(got[r][c], want.at(r).at(c).get<double>(), kTolMm)
          << what << " joint " << r << " axis " << c;
    }
  }
}

data::Sample to_sample(const nlohmann::json& s) {
  data::Sample sample;
  sample.image_id = s.at("image_id").get<int64_t>();
  sample.action_idx = s.at("action_idx").get<int>();
  sample.bbox = s.at("bbox").get<std::array<double, 4>>();
  sample.root_cam = s.at("root_cam").get<std::array<double, 3>>();
  sample.f = s.at("f").get<std::array<double, 2>>();
  sample.c = s.at("c").get<std::array<double, 2>>();
  sample.joints_cam = to_joints(s.at("joints_cam"));
  return sample;
}

class MetricsReference : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const auto dir = std::filesystem::path(CNP_TEST_WORK) / "eval_metrics";
    std::filesystem::create_directories(dir);
    const std::string out = (dir / "fixture.json").string();
    const std::string cmd = std::string(CNP_PYTHON) + " " + CNP_SOURCE_DIR +
                            "/tests/eval/reference_metrics.py " + out + " --seed 11";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    fixture_ = new nlohmann::json(nlohmann::json::parse(read_file(out)));
  }
  static void TearDownTestSuite() {
    delete fixture_;
    fixture_ = nullptr;
  }
  static nlohmann::json* fixture_;
};
nlohmann::json* MetricsReference::fixture_ = nullptr;

TEST_F(MetricsReference, HeatmapToCameraMatchesReference) {
  for (const auto& s : fixture_->at("samples")) {
    std::vector<float> coords;
    for (const auto& joint : s.at("coords")) {
      for (const auto& v : joint) coords.push_back(static_cast<float>(v.get<double>()));
    }
    const Joints cam = heatmap_to_camera(coords.data(), s.at("heatmap_size").get<int>(),
                                         s.at("depth_dim").get<int>(), to_sample(s));
    expect_joints_near(cam, s.at("expected").at("cam"), "sample " + s.at("image_id").dump());
  }
}

TEST_F(MetricsReference, RigidAlignmentIncludingReflections) {
  int reflections = 0;
  for (const auto& c : fixture_->at("align_cases")) {
    reflections += c.at("reflection").get<bool>();
    expect_joints_near(rigid_align(to_joints(c.at("pred")), to_joints(c.at("gt"))), c.at("aligned"),
                       "align case");
  }
  EXPECT_GT(reflections, 0) << "fixture must exercise the reflection fix";
}

TEST_F(MetricsReference, PerSampleErrorsAndAggregates) {
  MetricsAccumulator acc;
  int reflections = 0;
  for (const auto& s : fixture_->at("samples")) {
    const auto& want = s.at("expected");
    const data::Sample sample = to_sample(s);
    // Evaluate the reference's camera coordinates so this test isolates evaluation.
    const SampleResult r = evaluate_sample(to_joints(want.at("cam")), sample);
    EXPECT_EQ(r.image_id, sample.image_id);
    expect_joints_near(r.pred_relative, want.at("pred_relative"), "pred_relative");
    expect_joints_near(r.pred_aligned, want.at("pred_aligned"), "pred_aligned");
    for (int m = 0; m < 2; ++m) {
      for (int j = 0; j < data::kNumJoints - 1; ++j) {
        ASSERT_NEAR(r.joint_error[m][j], want.at("errors").at(m).at(j).get<double>(), kTolMm);
      }
    }
    reflections += want.at("reflection").get<bool>();
    acc.add(r);
  }
  EXPECT_GT(reflections, 0);
  const auto& want = fixture_->at("expected");
  const auto summary = acc.summary();
  EXPECT_EQ(summary.num_samples, want.at("num_samples").get<int64_t>());
  EXPECT_NEAR(summary.overall.at("mpjpe"), want.at("mpjpe").get<double>(), kTolMm);
  EXPECT_NEAR(summary.overall.at("pa_mpjpe"), want.at("pa_mpjpe").get<double>(), kTolMm);
  EXPECT_LT(summary.overall.at("pa_mpjpe"), summary.overall.at("mpjpe"));
  ASSERT_EQ(summary.per_action.size(), want.at("per_action").size());
  for (const auto& [action, metrics] : want.at("per_action").items()) {
    for (const auto& [metric, value] : metrics.items()) {
      EXPECT_NEAR(summary.per_action.at(action).at(metric), value.get<double>(), kTolMm)
          << action << metric;
    }
  }
  ASSERT_EQ(summary.per_joint.size(), 17u);
  EXPECT_EQ(summary.per_joint.count("Thorax"), 0u);
  for (const auto& [joint, metrics] : want.at("per_joint").items()) {
    for (const auto& [metric, value] : metrics.items()) {
      EXPECT_NEAR(summary.per_joint.at(joint).at(metric), value.get<double>(), kTolMm)
          << joint << metric;
    }
  }
}

TEST(Metrics, ModesTableAndHeadline) {
  const auto& modes = alignment_modes();
  ASSERT_EQ(modes.size(), 2u);
  EXPECT_STREQ(modes[0].metric, "mpjpe");
  EXPECT_EQ(modes[0].alignment, Alignment::None);
  EXPECT_STREQ(modes[1].metric, "pa_mpjpe");
  EXPECT_EQ(modes[1].alignment, Alignment::Rigid);
  EXPECT_STREQ(headline_metric(1), "pa_mpjpe");
  EXPECT_STREQ(headline_metric(2), "mpjpe");
  EXPECT_THROW(headline_metric(3), std::exception);
}

TEST(Metrics, PerfectPredictionAndPureTranslationHaveZeroError) {
  data::Sample sample;
  sample.action_idx = 2;
  for (int j = 0; j < data::kNumJoints; ++j)
    sample.joints_cam[j] = {10.0 * j, -5.0 * j * j, 4000.0 + j};
  Joints shifted = sample.joints_cam;
  for (auto& j : shifted) j[0] += 250.0;  // root-relative evaluation ignores a global shift
  const SampleResult r = evaluate_sample(shifted, sample);
  for (int m = 0; m < 2; ++m) {
    for (double e : r.joint_error[m]) EXPECT_NEAR(e, 0.0, 1e-9);
  }
}

TEST(Metrics, ThoraxIsNotEvaluatedAndScaleIsNotRemoved) {
  data::Sample sample;
  sample.action_idx = 3;
  for (int j = 0; j < data::kNumJoints; ++j)
    sample.joints_cam[j] = {100.0 * (j % 4), 80.0 * (j % 5), 50.0 * j};
  // Thorax wildly wrong: MPJPE must not see it.
  Joints pred = sample.joints_cam;
  pred[data::kThorax] = {1e4, 1e4, 1e4};
  const SampleResult a = evaluate_sample(pred, sample);
  for (int j = 0; j < data::kNumJoints - 1; ++j) EXPECT_NEAR(a.joint_error[0][j], 0.0, 1e-9);
  // A scaled prediction keeps a PA-MPJPE error (rigid, not similarity, alignment).
  Joints scaled = sample.joints_cam;
  for (auto& j : scaled) {
    for (auto& v : j) v *= 1.2;
  }
  const SampleResult b = evaluate_sample(scaled, sample);
  double total = 0;
  for (double e : b.joint_error[1]) total += e;
  EXPECT_GT(total / 17, 1.0);
}

TEST(Metrics, BadActionIsAnError) {
  SampleResult r;
  r.image_id = 42;
  r.action_idx = 17;
  MetricsAccumulator acc;
  try {
    acc.add(r);
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("42"), std::string::npos) << e.what();
  }
  EXPECT_EQ(acc.summary().num_samples, 0);
  EXPECT_TRUE(acc.summary().overall.empty());
}

// REFERENCE 6a: N-MPJPE removes a global scale (only), PCK3D counts (sample, joint)
// pairs under 150 mm, AUC averages PCK3D over 0, 5, ..., 150 mm.
TEST(Metrics, NMpjpeRemovesScaleOnly) {
  data::Sample sample;
  sample.action_idx = 4;
  for (int j = 0; j < data::kNumJoints; ++j)
    sample.joints_cam[j] = {30.0 * (j % 5), -40.0 * (j % 3), 5000.0 + 20 * j};
  Joints scaled = sample.joints_cam;
  for (int j = 0; j < data::kNumJoints; ++j) {
    for (int a = 0; a < 3; ++a) {
      const double rel = sample.joints_cam[j][a] - sample.joints_cam[0][a];
      scaled[j][a] = sample.joints_cam[0][a] + 0.8 * rel;
    }
  }
  const SampleResult r = evaluate_sample(scaled, sample);
  double mpjpe = 0;
  for (int j = 0; j < kEvalJoints; ++j) {
    EXPECT_NEAR(r.n_joint_error[j], 0.0, 1e-9) << j;
    mpjpe += r.joint_error[0][j];
  }
  EXPECT_GT(mpjpe / kEvalJoints, 5.0);
  // A rotation is not removed: N-MPJPE stays positive.
  Joints turned = sample.joints_cam;
  for (int j = 0; j < data::kNumJoints; ++j) {
    const double x = turned[j][0] - sample.joints_cam[0][0];
    const double z = turned[j][2] - sample.joints_cam[0][2];
    turned[j][0] = sample.joints_cam[0][0] + z;
    turned[j][2] = sample.joints_cam[0][2] - x;
  }
  const SampleResult t = evaluate_sample(turned, sample);
  double n = 0;
  for (double e : t.n_joint_error) n += e;
  EXPECT_GT(n / kEvalJoints, 1.0);
}

TEST(Metrics, PckAndAucByDefinition) {
  // Two samples; unaligned joint errors 0, 10, 20, ... (joint j of sample k: 10 j + 160 k).
  std::vector<SampleErrors> samples(2);
  for (int k = 0; k < 2; ++k) {
    samples[k].image_id = k;
    samples[k].action_idx = 2 + k;
    for (int j = 0; j < kEvalJoints; ++j) {
      samples[k].joint_error[kMpjpe][j] = 10.0 * j + 160.0 * k;
      samples[k].joint_error[kPaMpjpe][j] = 1.0;
      samples[k].joint_error[kNMpjpe][j] = 2.0 * k;
    }
  }
  const MetricsSummary s = summarize(samples);
  // Under 150 mm: joints 0..14 of sample 0 (15 of 34 pairs).
  EXPECT_NEAR(s.overall.at(kPckMetric), 100.0 * 15 / 34, 1e-9);
  // AUC: for threshold 5 i, sample 0 has ceil(i / 2) joints below (max 17), sample 1
  // has joints with 160 + 10 j < 5 i.
  double below = 0;
  for (int i = 0; i <= 30; ++i) {
    for (int j = 0; j < kEvalJoints; ++j) {
      below += (10.0 * j < 5.0 * i) + (160.0 + 10.0 * j < 5.0 * i);
    }
  }
  EXPECT_NEAR(s.overall.at(kAucMetric), 100.0 * below / (31 * 34), 1e-9);
  EXPECT_NEAR(s.overall.at(kNMpjpeMetric), 1.0, 1e-12);
  EXPECT_NEAR(s.overall.at("pa_mpjpe"), 1.0, 1e-12);
  EXPECT_NEAR(s.per_action.at("Directions").at(kPckMetric), 100.0 * 15 / 17, 1e-9);
  EXPECT_NEAR(s.per_action.at("Discussion").at(kPckMetric), 0.0, 1e-12);
  EXPECT_NEAR(s.per_joint.at("Pelvis").at(kPckMetric), 50.0, 1e-12);
  EXPECT_NEAR(s.per_joint.at("Pelvis").at("mpjpe"), 80.0, 1e-12);
  EXPECT_DOUBLE_EQ(headline_sample_error(samples[1], 1), 1.0);
  EXPECT_DOUBLE_EQ(headline_sample_error(samples[0], 2), 80.0);
}

}  // namespace
}  // namespace cnp::pipeline
