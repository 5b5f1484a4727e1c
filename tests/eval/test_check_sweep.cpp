// tests/eval/check_sweep_results.py on hand-made result directories: a tiny
// Human3.6M annotation set, results written by our metrics/report code, then
// tampered copies that the checker must reject.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "common/files.h"
#include "pipeline/report.h"

namespace cnp::pipeline {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr int kSampleEvery = 64;
constexpr int kDetected = 10;  // sets key: protocol (gt boxes) or kDetected + protocol

struct Fixture {
  fs::path dataset;
  fs::path results;
};

std::array<double, 4> process_box(const std::array<double, 4>& b) {
  // The fixture's boxes lie inside the image, so only the squaring and 1.25x apply.
  double w = b[2] - 1, h = b[3] - 1;
  const double cx = b[0] + w / 2, cy = b[1] + h / 2;
  w = h = std::max(w, h);
  return {cx - w * 1.25 / 2, cy - h * 1.25 / 2, w * 1.25, h * 1.25};
}

// Writes annotations for subjects 9 and 11 and returns the samples of each protocol.
std::map<int, std::vector<data::Sample>> write_dataset(const fs::path& root) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> uni(-1, 1);
  std::map<int, std::vector<data::Sample>> samples;
  int64_t next_id = 1;
  for (int subject : {9, 11}) {
    json cams, joints3d, images = json::array(), anns = json::array();
    std::map<int, std::array<std::array<double, 3>, 3>> rot;
    std::map<int, std::array<double, 3>> trans;
    for (int cam : {1, 2}) {
      const double a = 0.3 * cam + 0.1 * subject;  // rotation about the vertical axis
      rot[cam] = {{{std::cos(a), 0, std::sin(a)}, {0, 1, 0}, {-std::sin(a), 0, std::cos(a)}}};
      trans[cam] = {100.0 * cam, -50.0, 4500.0 + 100 * cam};
      cams[std::to_string(cam)] = {{"R", rot[cam]},
                                   {"t", trans[cam]},
                                   {"f", {1145.0 + cam, 1144.0}},
                                   {"c", {512.0, 515.0 - cam}}};
    }
    for (int action = 2; action <= 4; ++action) {
      for (int frame = 0; frame <= 128; frame += 32) {
        std::array<std::array<double, 3>, 17> world{};
        for (auto& j : world) j = {400 * uni(rng), 800 * uni(rng), 300 * uni(rng)};
        joints3d[std::to_string(action)]["1"][std::to_string(frame)] = world;
        for (int cam : {1, 2}) {
          const int64_t id = next_id++;
          std::array<double, 4> box = {200 + 50 * uni(rng), 150 + 50 * uni(rng),
                                       300 + 80 * uni(rng), 500 + 80 * uni(rng)};
          const bool bad_box = subject == 11 && action == 3 && frame == 64 && cam == 2;
          if (bad_box) box[2] = 0;  // unusable: the reference drops the sample
          images.push_back({{"id", id},
                            {"file_name", "x.jpg"},
                            {"width", 1000},
                            {"height", 1002},
                            {"subject", subject},
                            {"action_name", "a"},
                            {"action_idx", action},
                            {"subaction_idx", 1},
                            {"cam_idx", cam},
                            {"frame_idx", frame}});
          anns.push_back(
              {{"id", id}, {"image_id", id}, {"bbox", box}, {"keypoints_vis", json::array()}});
          if (frame % kSampleEvery != 0) continue;
          data::Sample s;
          s.image_id = id;
          s.subject = subject;
          s.action_idx = action;
          s.frame = frame;
          s.bbox = process_box(box);
          s.f = {1145.0 + cam, 1144.0};
          s.c = {512.0, 515.0 - cam};
          for (int j = 0; j < 17; ++j) {
            for (int r = 0; r < 3; ++r) {
              s.joints_cam[j][r] = trans[cam][r];
              for (int c = 0; c < 3; ++c) s.joints_cam[j][r] += rot[cam][r][c] * world[j][c];
            }
          }
          for (int r = 0; r < 3; ++r)
            s.joints_cam[17][r] = (s.joints_cam[11][r] + s.joints_cam[14][r]) / 2;
          s.root_cam = s.joints_cam[0];
          // Detected boxes (RootNet) keep every subsampled frame, whatever its annotation box.
          data::Sample d = s;
          d.bbox = {box[0] - 7, box[1] + 3, 420.5, 420.5};
          d.root_cam = {s.joints_cam[0][0] + 12, s.joints_cam[0][1] - 8, s.joints_cam[0][2] + 55};
          samples[kDetected + 2].push_back(d);
          if (subject == 11) samples[kDetected + 1].push_back(d);
          if (bad_box) continue;
          samples[2].push_back(s);
          if (subject == 11) samples[1].push_back(s);
        }
      }
    }
    const fs::path ann = root / "annotations";
    const std::string prefix = (ann / ("Human36M_subject" + std::to_string(subject))).string();
    write_file_atomic(prefix + "_data.json",
                      json({{"images", images}, {"annotations", anns}}).dump());
    write_file_atomic(prefix + "_camera.json", cams.dump());
    write_file_atomic(prefix + "_joint_3d.json", joints3d.dump());
  }
  return samples;
}

void write_rootnet(const fs::path& file, const std::vector<data::Sample>& samples) {
  json list = json::array();
  for (const auto& s : samples)
    list.push_back({{"image_id", s.image_id}, {"bbox", s.bbox}, {"root_cam", s.root_cam}});
  write_file_atomic(file.string(), list.dump());
}

void write_results(const fs::path& out, const std::map<int, std::vector<data::Sample>>& sets,
                   bool detected) {
  std::mt19937 rng(9);
  std::normal_distribution<double> noise(0, 30);
  for (int protocol : {1, 2}) {
    MetricsAccumulator acc;
    std::vector<SampleResult> results;
    std::vector<const data::Sample*> kept;
    for (const auto& s : sets.at(detected ? kDetected + protocol : protocol)) {
      Joints pred = s.joints_cam;
      for (auto& j : pred) {
        for (auto& v : j) v += noise(rng);
      }
      results.push_back(evaluate_sample(pred, s));
      acc.add(results.back());
      kept.push_back(&s);
    }
    JobResult r;
    r.job.variant = "M";
    r.job.epoch = 70;
    r.job.protocol = protocol;
    r.job.checkpoint = "ck.pth";
    if (detected) {
      r.job.bbox = "detected";
      r.job.bbox_root = "protocol" + std::to_string(protocol) + ".json";
    }
    r.architecture.depth_dim = 64;
    r.metrics = acc.summary();
    r.sample_every = kSampleEvery;
    write_file_atomic(jobs::job_result_path(out.string(), r.job), job_result_to_json(r));
    write_file_atomic(jobs::job_predictions_path(out.string(), r.job),
                      predictions_to_json(results, kept, protocol));
  }
}

class CheckSweep : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    base_ = new fs::path(fs::path(CNP_TEST_WORK) / "eval_check_sweep");
    fs::remove_all(*base_);
    const auto sets = write_dataset(*base_ / "h36m");
    ASSERT_EQ(sets.at(2).size(),
              2u * 3 * 3 * 2 - 1);  // subjects x actions x frames x cams, one bad box
    write_results(*base_ / "good", sets, false);
    write_results(*base_ / "good_det", sets, true);
    for (int protocol : {1, 2}) {
      write_rootnet(
          *base_ / "h36m" / "bbox_root" / ("protocol" + std::to_string(protocol) + ".json"),
          sets.at(kDetected + protocol));
    }
  }
  static void TearDownTestSuite() { delete base_; }

  // Copies the good results, lets `tamper` edit them, runs the checker.
  static int run(const std::string& name, const std::function<void(const fs::path&)>& tamper,
                 std::string* log, const std::string& source = "good",
                 const std::string& extra = "") {
    const fs::path dir = *base_ / name;
    fs::remove_all(dir);
    fs::copy(*base_ / source, dir, fs::copy_options::recursive);
    tamper(dir);
    const std::string log_file = (*base_ / (name + ".log")).string();
    const std::string cmd = std::string(CNP_PYTHON) + " " + CNP_SOURCE_DIR +
                            "/tests/eval/check_sweep_results.py" + " --dataset " +
                            (*base_ / "h36m").string() + " --output " + dir.string() + extra +
                            " > " + log_file + " 2>&1";
    const int status = std::system(cmd.c_str());
    *log = read_file(log_file);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  static void edit_json(const fs::path& file, const std::function<void(json&)>& edit) {
    json j = json::parse(read_file(file.string()));
    edit(j);
    write_file_atomic(file.string(), j.dump());
  }
  static fs::path* base_;
};
fs::path* CheckSweep::base_ = nullptr;

TEST_F(CheckSweep, AcceptsCorrectResults) {
  std::string log;
  EXPECT_EQ(run(
                "ok", [](const fs::path&) {}, &log),
            0)
      << log;
  EXPECT_NE(log.find("OK 2 jobs"), std::string::npos) << log;
}

TEST_F(CheckSweep, RejectsWrongHeadline) {
  std::string log;
  EXPECT_EQ(run(
                "headline",
                [](const fs::path& d) {
                  edit_json(d / "jobs" / "M_e70_p2_noflip_gt.json", [](json& j) {
                    j["metrics"]["mpjpe"] = j["metrics"]["mpjpe"].get<double>() + 0.01;
                  });
                },
                &log),
            1);
  EXPECT_NE(log.find("M_e70_p2_noflip_gt.json: mpjpe is"), std::string::npos) << log;
}

TEST_F(CheckSweep, RejectsWrongPerActionMean) {
  std::string log;
  EXPECT_EQ(run(
                "action",
                [](const fs::path& d) {
                  edit_json(d / "jobs" / "M_e70_p1_noflip_gt.json", [](json& j) {
                    auto& v = j["metrics"]["per_action"]["Eating"]["pa_mpjpe"];
                    v = v.get<double>() + 0.01;
                  });
                },
                &log),
            1);
  EXPECT_NE(log.find("per_action Eating pa_mpjpe"), std::string::npos) << log;
}

TEST_F(CheckSweep, RejectsMissingSampleAndCountMismatch) {
  std::string log;
  EXPECT_EQ(run(
                "missing",
                [](const fs::path& d) {
                  size_t left = 0;
                  edit_json(d / "predictions" / "M_e70_p2_noflip_gt.json", [&](json& j) {
                    j.erase(j.begin());
                    left = j.size();
                  });
                  edit_json(d / "jobs" / "M_e70_p2_noflip_gt.json",
                            [&](json& j) { j["metrics"]["num_samples"] = left; });
                },
                &log),
            1);
  EXPECT_NE(log.find("missing from predictions"), std::string::npos) << log;
  EXPECT_EQ(run(
                "count",
                [](const fs::path& d) {
                  edit_json(d / "jobs" / "M_e70_p1_noflip_gt.json",
                            [](json& j) { j["metrics"]["num_samples"] = 99; });
                },
                &log),
            1);
  EXPECT_NE(log.find("num_samples 99"), std::string::npos) << log;
}

TEST_F(CheckSweep, RejectsWrongSampleEveryAndForeignImages) {
  std::string log;
  EXPECT_EQ(run(
                "every",
                [](const fs::path& d) {
                  edit_json(d / "jobs" / "M_e70_p2_noflip_gt.json",
                            [](json& j) { j["settings"]["sample_every"] = 32; });
                },
                &log),
            1);
  EXPECT_NE(log.find("missing from predictions"), std::string::npos) << log;
  EXPECT_EQ(run(
                "foreign",
                [](const fs::path& d) {
                  edit_json(d / "predictions" / "M_e70_p1_noflip_gt.json",
                            [](json& j) { j[0]["image_id"] = 1; });
                },
                &log),
            1);
  EXPECT_NE(log.find("not in the protocol 1 test set"), std::string::npos) << log;
}

TEST_F(CheckSweep, RejectsUnalignedProtocol1AndWrongRoot) {
  std::string log;
  EXPECT_EQ(run(
                "unaligned",
                [](const fs::path& d) {
                  // Protocol 1 predictions must be the aligned ones: shift one joint.
                  edit_json(d / "predictions" / "M_e70_p1_noflip_gt.json", [](json& j) {
                    j[2]["joint_cam"][5][1] = j[2]["joint_cam"][5][1].get<double>() + 5.0;
                  });
                },
                &log),
            1);
  EXPECT_NE(log.find("pa_mpjpe is"), std::string::npos) << log;
  EXPECT_EQ(run(
                "root",
                [](const fs::path& d) {
                  edit_json(d / "predictions" / "M_e70_p2_noflip_gt.json", [](json& j) {
                    j[0]["root_cam"][2] = j[0]["root_cam"][2].get<double>() + 1.0;
                  });
                },
                &log),
            1);
  EXPECT_NE(log.find("root_cam"), std::string::npos) << log;
}

TEST_F(CheckSweep, DetectedBoxesAgainstRootNetFiles) {
  const std::string boxes =
      " --bbox-root-p1 " + (*base_ / "h36m" / "bbox_root" / "protocol1.json").string() +
      " --bbox-root-p2 " + (*base_ / "h36m" / "bbox_root" / "protocol2.json").string();
  std::string log;
  // With detected boxes the sample with the unusable annotation box stays in.
  EXPECT_EQ(run(
                "det_ok", [](const fs::path&) {}, &log, "good_det", boxes),
            0)
      << log;
  EXPECT_NE(log.find("OK 2 jobs"), std::string::npos) << log;
  EXPECT_EQ(run(
                "det_nofiles", [](const fs::path&) {}, &log, "good_det"),
            0)
      << log;
  EXPECT_EQ(run(
                "det_root",
                [](const fs::path& d) {
                  edit_json(d / "predictions" / "M_e70_p1_noflip_detected.json", [](json& j) {
                    j[3]["root_cam"][2] = j[3]["root_cam"][2].get<double>() - 55;
                  });
                },
                &log, "good_det", boxes),
            1);
  EXPECT_NE(log.find("root_cam"), std::string::npos) << log;
  EXPECT_EQ(run(
                "det_box",
                [](const fs::path& d) {
                  edit_json(d / "predictions" / "M_e70_p2_noflip_detected.json",
                            [](json& j) { j[0]["bbox"][2] = 400.0; });
                },
                &log, "good_det", boxes),
            1);
  EXPECT_NE(log.find("bbox"), std::string::npos) << log;
}

}  // namespace
}  // namespace cnp::pipeline
