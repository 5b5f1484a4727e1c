#pragma once
// Readers of one subject's Human3.6M annotation files into compact records (used by
// load_test_set in h36m.cpp; split out because the streaming JSON handlers are long).
// Every reader throws cnp::Error naming the file (and the record) on bad content.
#include <array>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/h36m.h"

namespace cnp::data {

struct ImageRecord {
  int64_t id = 0;
  std::string file_name, action_name;
  int width = 0, height = 0, subject = 0, action_idx = 0, subaction = 0, camera = 0, frame = 0;
};
struct AnnotationRecord {
  int64_t id = 0, image_id = 0;
  std::array<double, 4> bbox{};
};

// Human36M_subject{S}_data.json: images with frame_idx % sample_every == 0, every image id
// (for unknown-id checks) and the annotations in file order.
struct SubjectData {
  std::vector<ImageRecord> kept_images;
  std::vector<int64_t> all_image_ids;
  std::vector<AnnotationRecord> annotations;
};
SubjectData read_subject_data(const std::string& path, int sample_every);

// Human36M_subject{S}_joint_3d.json: {"action": {"subaction": {"frame": 17x3}}}, frames
// with frame % sample_every == 0, by joint_key(action, subaction, frame).
using WorldJoints = std::array<double, 17 * 3>;
uint64_t joint_key(int action, int subaction, int frame);
std::unordered_map<uint64_t, WorldJoints> read_world_joints(const std::string& path,
                                                            int sample_every);

// Human36M_subject{S}_camera.json: {"cam_idx": {"R", "t", "f", "c"}}.
struct Camera {
  std::array<double, 9> R{};
  std::array<double, 3> t{};
  std::array<double, 2> f{}, c{};
};
std::unordered_map<int, Camera> read_cameras(const std::string& path);

}  // namespace cnp::data
