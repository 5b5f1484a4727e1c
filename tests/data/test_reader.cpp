// The Human3.6M reader on a synthetic set: counts per protocol and sample_every,
// Thorax, world->camera and GT boxes against an independent Python reader, detected
// boxes, and the two real RootNet files.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/files.h"
#include "data/h36m.h"
#include "data/preprocess.h"
#include "data_test_util.h"

namespace cnp::data {
namespace {
using nlohmann::json;

class DataReader : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = testing::work_dir("data_reader_synth");
    write_synthetic_h36m(testing::small_synth_options(root_));
  }
  static TestSetOptions options(int protocol) {
    TestSetOptions o;
    o.root = root_;
    o.protocol = protocol;
    return o;
  }
  static json python_reference(const std::string& subjects, int every, const std::string& name,
                               const std::string& bbox_file = "") {
    const std::string out = root_ + "/" + name + ".json";
    std::string log;
    const int rc = testing::run_command(
        testing::python() + " " + testing::script("reader_ref.py") + " " + root_ + " " + subjects +
            " " + std::to_string(every) + " " + out + (bbox_file.empty() ? "" : " " + bbox_file),
        &log);
    EXPECT_EQ(rc, 0) << log;
    return json::parse(read_file(out));
  }
  static void expect_same(const TestSet& set, const json& ref) {
    ASSERT_EQ(set.samples.size(), ref.size());
    for (size_t i = 0; i < ref.size(); ++i) {
      const Sample& s = set.samples[i];
      const json& r = ref[i];
      SCOPED_TRACE("sample " + std::to_string(i) + " image " + std::to_string(s.image_id));
      ASSERT_EQ(s.image_id, r["image_id"].get<int64_t>());
      EXPECT_EQ(s.image_file, r["image_file"].get<std::string>());
      EXPECT_EQ(s.subject, r["subject"].get<int>());
      EXPECT_EQ(s.action_idx, r["action_idx"].get<int>());
      EXPECT_EQ(s.subaction, r["subaction"].get<int>());
      EXPECT_EQ(s.camera, r["camera"].get<int>());
      EXPECT_EQ(s.frame, r["frame"].get<int>());
      EXPECT_EQ(s.image_width, r["width"].get<int>());
      EXPECT_EQ(s.image_height, r["height"].get<int>());
      for (int k = 0; k < 4; ++k) EXPECT_NEAR(s.bbox[k], r["bbox"][k].get<double>(), 1e-9);
      for (int k = 0; k < 3; ++k) EXPECT_NEAR(s.root_cam[k], r["root_cam"][k].get<double>(), 1e-6);
      for (int k = 0; k < 2; ++k) {
        EXPECT_EQ(s.f[k], r["f"][k].get<double>());
        EXPECT_EQ(s.c[k], r["c"][k].get<double>());
      }
      for (int j = 0; j < kNumJoints; ++j) {
        for (int k = 0; k < 3; ++k) {
          EXPECT_NEAR(s.joints_cam[j][k], r["joints_cam"][j][k].get<double>(), 1e-6);
        }
      }
    }
  }
  static std::string root_;
};
std::string DataReader::root_;

TEST_F(DataReader, CountsPerProtocolAndSampleEvery) {
  const TestSet p1 = load_test_set(options(1));
  const TestSet p2 = load_test_set(options(2));
  EXPECT_EQ(p1.samples.size(), static_cast<size_t>(testing::kKeptPerSubject));
  EXPECT_EQ(p2.samples.size(), static_cast<size_t>(2 * testing::kKeptPerSubject));
  EXPECT_TRUE(p1.skipped.empty());
  for (const auto& s : p1.samples) EXPECT_EQ(s.subject, 11);
  for (const auto& s : p2.samples) EXPECT_EQ(s.frame % 64, 0);
  // Subjects ascending: all of S9 first.
  EXPECT_EQ(p2.samples.front().subject, 9);
  EXPECT_EQ(p2.samples.back().subject, 11);
  EXPECT_EQ(p2.source_files.size(), 6u);

  TestSetOptions every1 = options(2);
  every1.sample_every = 1;  // frames 0, 1, 64, 65 all kept
  EXPECT_EQ(load_test_set(every1).samples.size(),
            static_cast<size_t>(4 * testing::kKeptPerSubject));
  TestSetOptions every2 = options(2);
  every2.sample_every = 2;  // 0 and 64
  EXPECT_EQ(load_test_set(every2).samples.size(),
            static_cast<size_t>(2 * testing::kKeptPerSubject));
  TestSetOptions only9 = options(1);
  only9.subjects = {9};
  const TestSet s9 = load_test_set(only9);
  ASSERT_FALSE(s9.samples.empty());
  EXPECT_EQ(s9.samples.front().subject, 9);
}

TEST_F(DataReader, MatchesIndependentPythonReader) {
  expect_same(load_test_set(options(2)), python_reference("9,11", 64, "ref_p2"));
  TestSetOptions every1 = options(1);
  every1.sample_every = 1;
  expect_same(load_test_set(every1), python_reference("11", 1, "ref_p1_every1"));
}

TEST_F(DataReader, ThoraxAndRootAndBoxes) {
  const TestSet set = load_test_set(options(2));
  for (const auto& s : set.samples) {
    for (int k = 0; k < 3; ++k) {
      // world->camera is affine, so the camera-space Thorax is the shoulder mean too.
      EXPECT_NEAR(s.joints_cam[kThorax][k], (s.joints_cam[11][k] + s.joints_cam[14][k]) / 2, 1e-6);
      EXPECT_EQ(s.root_cam[k], s.joints_cam[kRootJoint][k]);
    }
    EXPECT_GT(s.root_cam[2], 3000);  // a few metres in front of the camera
    EXPECT_NEAR(s.bbox[2], s.bbox[3], 1e-9);
    // The person's projected pelvis lies inside the box.
    const double u = s.joints_cam[0][0] / s.joints_cam[0][2] * s.f[0] + s.c[0];
    const double v = s.joints_cam[0][1] / s.joints_cam[0][2] * s.f[1] + s.c[1];
    EXPECT_GT(u, s.bbox[0]);
    EXPECT_LT(u, s.bbox[0] + s.bbox[2]);
    EXPECT_GT(v, s.bbox[1]);
    EXPECT_LT(v, s.bbox[1] + s.bbox[3]);
    EXPECT_TRUE(file_exists(image_path(root_, s)));
  }
  // Limb lengths stay fixed within a subject (rigid skeleton): R thigh.
  const auto thigh = [](const Sample& s) {
    double d = 0;
    for (int k = 0; k < 3; ++k) d += std::pow(s.joints_cam[1][k] - s.joints_cam[2][k], 2);
    return std::sqrt(d);
  };
  EXPECT_NEAR(thigh(set.samples.front()), thigh(set.samples[set.samples.size() / 4]), 1e-6);
  EXPECT_GT(thigh(set.samples.front()), 350);
  EXPECT_LT(thigh(set.samples.front()), 550);
}

TEST_F(DataReader, DetectedBoxesFromTheBoxFile) {
  for (int protocol : {1, 2}) {
    TestSetOptions o = options(protocol);
    o.box_source = BoxSource::Detected;
    o.bbox_root_file = root_ + "/bbox_root/protocol" + std::to_string(protocol) + ".json";
    const TestSet set = load_test_set(o);
    expect_same(set,
                python_reference(protocol == 1 ? "11" : "9,11", 64,
                                 "ref_detected_p" + std::to_string(protocol), o.bbox_root_file));
    EXPECT_EQ(set.source_files.back(), o.bbox_root_file);
    // RootNet roots differ from the GT pelvis, but not by much.
    double diff = 0;
    for (const auto& s : set.samples) diff += std::abs(s.root_cam[2] - s.joints_cam[0][2]);
    EXPECT_GT(diff, 0);
    EXPECT_LT(diff / set.samples.size(), 300);
  }
}

TEST_F(DataReader, RealRootNetFilesParse) {
  // The released RootNet files, kept in the repository as test data (MIT, see its README).
  const std::string dir = std::string(CNP_SOURCE_DIR) + "/tests/data/h36m_bbox_root/";
  const auto p1 = read_bbox_root_file(dir + "protocol1_S11.json");
  const auto p2 = read_bbox_root_file(dir + "protocol2_S9_S11.json");
  EXPECT_EQ(p1.size(), 3683u);
  EXPECT_EQ(p2.size(), 8695u);
  EXPECT_EQ(p1.front().image_id, 1877420);
  EXPECT_NEAR(p1.front().bbox[2], 458.9939498901367, 1e-9);
  EXPECT_NEAR(p1.front().root_cam[2], 5426.8798828125, 1e-9);
  for (const auto& b : p2) {
    EXPECT_GT(b.bbox[2], 0);
    EXPECT_GT(b.root_cam[2], 1000);
  }
  // Every protocol-1 entry (S11) is in the protocol-2 file too.
  std::set<int64_t> ids2;
  for (const auto& b : p2) ids2.insert(b.image_id);
  for (const auto& b : p1) EXPECT_TRUE(ids2.count(b.image_id)) << b.image_id;

  // The real file against the synthetic set: its ids are unknown there, and the
  // synthetic samples have no box in it; both are named.
  TestSetOptions o = options(1);
  o.box_source = BoxSource::Detected;
  o.bbox_root_file = dir + "protocol1_S11.json";
  try {
    load_test_set(o);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("protocol1_S11.json"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("no detected box"), std::string::npos) << e.what();
  }
  o.skip_bad_samples = true;
  const TestSet skipped = load_test_set(o);
  EXPECT_TRUE(skipped.samples.empty());
  EXPECT_EQ(skipped.skipped.size(), static_cast<size_t>(testing::kKeptPerSubject) + 3683u);
}

TEST(DataNames, TablesAndFileNames) {
  EXPECT_STREQ(joint_names()[kThorax], "Thorax");
  EXPECT_STREQ(joint_names()[14], "R_Shoulder");
  EXPECT_STREQ(action_names()[0], "Directions");
  EXPECT_STREQ(action_names()[14], "WalkTogether");
  EXPECT_EQ(flip_pairs().size(), 6u);
  EXPECT_EQ(protocol_subjects(1), std::vector<int>({11}));
  EXPECT_EQ(protocol_subjects(2), std::vector<int>({9, 11}));
  EXPECT_THROW(protocol_subjects(3), Error);
  EXPECT_EQ(parse_box_source("detected"), BoxSource::Detected);
  EXPECT_THROW(parse_box_source("rootnet"), Error);
  EXPECT_EQ(image_file_name(9, 2, 1, 1, 0),
            "s_09_act_02_subact_01_ca_01/s_09_act_02_subact_01_ca_01_000001.jpg");
  EXPECT_EQ(image_file_name(11, 16, 2, 4, 64),
            "s_11_act_16_subact_02_ca_04/s_11_act_16_subact_02_ca_04_000065.jpg");
}

}  // namespace
}  // namespace cnp::data
