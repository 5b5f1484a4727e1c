#pragma once
// Human3.6M test sets in the 3DMPPE layout (REFERENCE.md §5): annotations, boxes,
// cameras and ground truth, turned into a flat list of samples.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace cnp::data {

constexpr int kNumJoints = 18;  // 17 Human3.6M joints + Thorax
constexpr int kRootJoint = 0;   // Pelvis
constexpr int kThorax = 17;
const std::array<const char*, kNumJoints>& joint_names();
const std::array<const char*, 15>& action_names();     // index = action_idx - 2
const std::vector<std::pair<int, int>>& flip_pairs();  // (1,4) (2,5) (3,6) (14,11) (15,12) (16,13)
std::vector<int> protocol_subjects(int protocol);      // 1 -> {11}, 2 -> {9, 11}

enum class BoxSource { GroundTruth, Detected };
BoxSource parse_box_source(const std::string& name);  // "gt" | "detected"
const char* box_source_name(BoxSource source);

struct Sample {
  int64_t image_id = 0;
  std::string image_file;  // relative to <root>/images
  int subject = 0, action_idx = 0, subaction = 0, camera = 0, frame = 0;
  int image_width = 0, image_height = 0;
  std::array<double, 4> bbox{};      // processed box x, y, w, h: crop and back-projection use it
  std::array<double, 3> root_cam{};  // root used for depth: GT pelvis or RootNet root_cam (mm)
  std::array<double, 2> f{}, c{};
  std::array<std::array<double, 3>, kNumJoints>
      joints_cam{};  // GT camera coords (mm), Thorax added
};

struct TestSetOptions {
  std::string root;           // holds images/ and annotations/
  int protocol = 2;           // selects subjects
  std::vector<int> subjects;  // when non-empty, overrides protocol_subjects(protocol)
  BoxSource box_source = BoxSource::GroundTruth;
  std::string bbox_root_file;     // RootNet output, required for Detected
  int sample_every = 64;          // keep frame_idx % sample_every == 0
  bool skip_bad_samples = false;  // skip samples with bad data instead of failing
  bool check_images = true;       // fail (or skip) when an image file is missing
};

struct SkippedSample {
  int64_t image_id;
  std::string reason;
};

struct TestSet {
  // Subjects ascending, then annotation-file order (the reference's order; for the
  // released files that is (action, subaction, camera, frame)).
  std::vector<Sample> samples;
  std::vector<SkippedSample> skipped;
  std::vector<std::string> source_files;  // every JSON file read, for cache invalidation
};

// One entry of a RootNet output file.
struct DetectedBox {
  int64_t image_id = 0;
  std::array<double, 4> bbox{};
  std::array<double, 3> root_cam{};
};
// Reads a RootNet output file (list of {image_id, bbox, root_cam}); throws cnp::Error
// naming the file and the entry on malformed content or a duplicate image id.
std::vector<DetectedBox> read_bbox_root_file(const std::string& path);

// "s_09_act_02_subact_01_ca_01/s_09_act_02_subact_01_ca_01_000001.jpg" (frame + 1).
std::string image_file_name(int subject, int action_idx, int subaction, int camera, int frame);

// Annotation file paths of one subject under <root>/annotations.
std::string annotation_path(const std::string& root, int subject, const std::string& kind);

// Throws cnp::Error naming the file and the sample on bad data unless skip_bad_samples.
TestSet load_test_set(const TestSetOptions& options);

std::string image_path(const std::string& root, const Sample& sample);

}  // namespace cnp::data
