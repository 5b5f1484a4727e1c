// Human3.6M test sets (3DMPPE layout): the annotation files (read by h36m_files.cpp) turned
// into validated samples, with every bad sample named or, with skip_bad_samples, counted.
#include "data/h36m.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <unordered_map>

#include "common/error.h"
#include "common/files.h"
#include "data/h36m_files.h"
#include "data/preprocess.h"

namespace cnp::data {
namespace {

std::string sample_name(const std::string& file, int64_t image_id, const std::string& image_file) {
  return file + ": image id " + std::to_string(image_id) + " (" + image_file + ")";
}

template <size_t N>
bool all_finite(const std::array<double, N>& values) {
  return std::all_of(values.begin(), values.end(), [](double v) { return std::isfinite(v); });
}

// "[1, 2, 3e+30]": short enough for a one-line message whatever the magnitude.
template <size_t N>
std::string numbers_text(const std::array<double, N>& values) {
  std::string out = "[";
  for (size_t k = 0; k < N; ++k) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.6g", values[k]);
    out += (k ? ", " : "") + std::string(buffer);
  }
  return out + "]";
}

// A detected box larger than this many image sides cannot hold a person in the image;
// RootNet's boxes are about half the image side.
constexpr double kMaxBoxPerImageSide = 4.0;

// Why a detected box (x, y, w, h) is unusable for a width x height image, or "".
std::string detected_box_problem(const std::array<double, 4>& b, int width, int height) {
  if (!all_finite(b)) return "non-finite detected box " + numbers_text(b);
  if (!(b[2] > 0 && b[3] > 0)) return "zero-area detected box " + numbers_text(b);
  if (b[2] > kMaxBoxPerImageSide * width || b[3] > kMaxBoxPerImageSide * height ||
      b[0] + b[2] <= 0 || b[1] + b[3] <= 0 || b[0] >= width || b[1] >= height)
    return "detected box " + numbers_text(b) + " lies outside the " + std::to_string(width) + "x" +
           std::to_string(height) + " image or is far larger than it";
  return "";
}

// Why a camera cannot project (a focal length of 0 divides by zero), or "".
std::string camera_problem(int index, const Camera& c) {
  const std::string name = "camera " + std::to_string(index);
  if (!all_finite(c.f) || !(c.f[0] > 0 && c.f[1] > 0))
    return name + " has focal length " + numbers_text(c.f) + " (must be finite and positive)";
  if (!all_finite(c.c)) return name + " has a non-finite principal point " + numbers_text(c.c);
  if (!all_finite(c.R) || !all_finite(c.t)) return name + " has a non-finite R or t";
  return "";
}

}  // namespace

// ---------------------------------------------------------------------------
const std::array<const char*, kNumJoints>& joint_names() {
  static const std::array<const char*, kNumJoints> names = {
      "Pelvis",  "R_Hip",   "R_Knee",     "R_Ankle", "L_Hip",   "L_Knee",
      "L_Ankle", "Torso",   "Neck",       "Nose",    "Head",    "L_Shoulder",
      "L_Elbow", "L_Wrist", "R_Shoulder", "R_Elbow", "R_Wrist", "Thorax"};
  return names;
}

const std::array<const char*, 15>& action_names() {
  static const std::array<const char*, 15> names = {
      "Directions", "Discussion", "Eating",  "Greeting",    "Phoning",
      "Posing",     "Purchases",  "Sitting", "SittingDown", "Smoking",
      "Photo",      "Waiting",    "Walking", "WalkDog",     "WalkTogether"};
  return names;
}

const std::vector<std::pair<int, int>>& flip_pairs() {
  static const std::vector<std::pair<int, int>> pairs = {{1, 4},   {2, 5},   {3, 6},
                                                         {14, 11}, {15, 12}, {16, 13}};
  return pairs;
}

std::vector<int> protocol_subjects(int protocol) {
  if (protocol == 1) return {11};
  if (protocol == 2) return {9, 11};
  throw Error("protocol " + std::to_string(protocol) + ": unknown (expected 1 or 2)");
}

BoxSource parse_box_source(const std::string& name) {
  if (name == "gt") return BoxSource::GroundTruth;
  if (name == "detected") return BoxSource::Detected;
  throw Error("bbox '" + name + "': expected 'gt' or 'detected'");
}

const char* box_source_name(BoxSource source) {
  return source == BoxSource::GroundTruth ? "gt" : "detected";
}

std::string image_file_name(int subject, int action_idx, int subaction, int camera, int frame) {
  char folder[64], frame_part[32];
  std::snprintf(folder, sizeof folder, "s_%02d_act_%02d_subact_%02d_ca_%02d", subject, action_idx,
                subaction, camera);
  std::snprintf(frame_part, sizeof frame_part, "_%06d.jpg", frame + 1);
  return std::string(folder) + "/" + folder + frame_part;
}

std::string annotation_path(const std::string& root, int subject, const std::string& kind) {
  return (std::filesystem::path(root) / "annotations" /
          ("Human36M_subject" + std::to_string(subject) + "_" + kind + ".json"))
      .string();
}

std::string image_path(const std::string& root, const Sample& sample) {
  return (std::filesystem::path(root) / "images" / sample.image_file).string();
}

TestSet load_test_set(const TestSetOptions& options) {
  if (options.sample_every <= 0) {
    throw Error("sample_every " + std::to_string(options.sample_every) + ": must be positive");
  }
  std::vector<int> subjects =
      options.subjects.empty() ? protocol_subjects(options.protocol) : options.subjects;
  std::sort(subjects.begin(), subjects.end());
  subjects.erase(std::unique(subjects.begin(), subjects.end()), subjects.end());

  TestSet set;
  auto bad = [&](int64_t image_id, const std::string& message) {
    if (!options.skip_bad_samples) throw Error(message);
    set.skipped.push_back({image_id, message});
  };

  // RootNet boxes by image id.
  const bool detected = options.box_source == BoxSource::Detected;
  std::unordered_map<int64_t, DetectedBox> detected_boxes;
  if (detected) {
    if (options.bbox_root_file.empty()) {
      throw Error("dataset.bbox_root: required for detected boxes");
    }
    for (const auto& box : read_bbox_root_file(options.bbox_root_file)) {
      if (!detected_boxes.emplace(box.image_id, box).second) {
        throw Error(options.bbox_root_file + ": image id " + std::to_string(box.image_id) +
                    " appears twice");
      }
    }
  }
  std::vector<int64_t> all_ids;

  for (int subject : subjects) {
    const std::string data_file = annotation_path(options.root, subject, "data");
    const std::string camera_file = annotation_path(options.root, subject, "camera");
    const std::string joint_file = annotation_path(options.root, subject, "joint_3d");
    set.source_files.insert(set.source_files.end(), {data_file, camera_file, joint_file});

    const SubjectData data = read_subject_data(data_file, options.sample_every);
    const auto cameras = read_cameras(camera_file);
    const auto joints = read_world_joints(joint_file, options.sample_every);

    std::vector<int64_t> ids = data.all_image_ids;
    std::sort(ids.begin(), ids.end());
    if (std::adjacent_find(ids.begin(), ids.end()) != ids.end()) {
      throw Error(data_file + ": image id " +
                  std::to_string(*std::adjacent_find(ids.begin(), ids.end())) + " appears twice");
    }
    all_ids.insert(all_ids.end(), ids.begin(), ids.end());
    std::unordered_map<int64_t, size_t> kept;
    kept.reserve(data.kept_images.size() * 2);
    for (size_t i = 0; i < data.kept_images.size(); ++i) kept[data.kept_images[i].id] = i;

    for (const auto& ann : data.annotations) {
      auto it = kept.find(ann.image_id);
      if (it == kept.end()) {
        if (!std::binary_search(ids.begin(), ids.end(), ann.image_id)) {
          bad(ann.image_id, data_file + ": annotation " + std::to_string(ann.id) +
                                " refers to unknown image id " + std::to_string(ann.image_id));
        }
        continue;  // a frame the subsampling drops
      }
      const ImageRecord& img = data.kept_images[it->second];
      Sample s;
      s.image_id = img.id;
      s.image_file = img.file_name;
      s.subject = img.subject;
      s.action_idx = img.action_idx;
      s.subaction = img.subaction;
      s.camera = img.camera;
      s.frame = img.frame;
      s.image_width = img.width;
      s.image_height = img.height;

      auto cam = cameras.find(img.camera);
      if (cam == cameras.end()) {
        bad(img.id, sample_name(camera_file, img.id, img.file_name) + ": no camera " +
                        std::to_string(img.camera));
        continue;
      }
      auto joint = joints.find(joint_key(img.action_idx, img.subaction, img.frame));
      if (joint == joints.end()) {
        bad(img.id, sample_name(joint_file, img.id, img.file_name) + ": no joints for action " +
                        std::to_string(img.action_idx) + " subaction " +
                        std::to_string(img.subaction) + " frame " + std::to_string(img.frame));
        continue;
      }
      if (const std::string problem = camera_problem(img.camera, cam->second); !problem.empty()) {
        bad(img.id, sample_name(camera_file, img.id, img.file_name) + ": " + problem);
        continue;
      }
      if (!all_finite(joint->second)) {
        bad(img.id, sample_name(joint_file, img.id, img.file_name) +
                        ": non-finite ground-truth joint coordinates");
        continue;
      }
      if (img.width <= 0 || img.height <= 0) {
        bad(img.id, sample_name(data_file, img.id, img.file_name) + ": image size " +
                        std::to_string(img.width) + "x" + std::to_string(img.height) +
                        " is not positive");
        continue;
      }
      if (img.action_idx < 2 || img.action_idx > 16) {
        bad(img.id, sample_name(data_file, img.id, img.file_name) + ": action_idx " +
                        std::to_string(img.action_idx) + " outside 2..16");
        continue;
      }
      // Thorax in world coordinates, then world -> camera: X_cam = R X_world + t.
      std::array<std::array<double, 3>, kNumJoints> world{};
      for (int j = 0; j < 17; ++j) {
        for (int k = 0; k < 3; ++k) world[j][k] = joint->second[j * 3 + k];
      }
      for (int k = 0; k < 3; ++k) world[kThorax][k] = (world[11][k] + world[14][k]) * 0.5;
      const Camera& c = cam->second;
      for (int j = 0; j < kNumJoints; ++j) {
        for (int r = 0; r < 3; ++r) {
          s.joints_cam[j][r] = c.R[r * 3 + 0] * world[j][0] + c.R[r * 3 + 1] * world[j][1] +
                               c.R[r * 3 + 2] * world[j][2] + c.t[r];
        }
      }
      s.f = c.f;
      s.c = c.c;

      if (detected) {
        auto box = detected_boxes.find(img.id);
        if (box == detected_boxes.end()) {
          bad(img.id, sample_name(options.bbox_root_file, img.id, img.file_name) +
                          ": no detected box for this sample");
          continue;
        }
        s.bbox = box->second.bbox;
        s.root_cam = box->second.root_cam;
        const std::string problem = detected_box_problem(s.bbox, img.width, img.height);
        if (!problem.empty()) {
          bad(img.id, sample_name(options.bbox_root_file, img.id, img.file_name) + ": " + problem);
          continue;
        }
        if (!all_finite(s.root_cam) || !(s.root_cam[2] > 0)) {
          bad(img.id, sample_name(options.bbox_root_file, img.id, img.file_name) + ": root_cam " +
                          numbers_text(s.root_cam) + " needs a finite, positive depth (mm)");
          continue;
        }
      } else {
        if (!all_finite(ann.bbox)) {
          bad(img.id, sample_name(data_file, img.id, img.file_name) + ": non-finite bbox " +
                          numbers_text(ann.bbox));
          continue;
        }
        if (!process_gt_bbox(ann.bbox, img.width, img.height, s.bbox)) {
          bad(img.id, sample_name(data_file, img.id, img.file_name) +
                          ": zero-area or empty bbox [" + std::to_string(ann.bbox[0]) + ", " +
                          std::to_string(ann.bbox[1]) + ", " + std::to_string(ann.bbox[2]) + ", " +
                          std::to_string(ann.bbox[3]) + "] (the reference drops it)");
          continue;
        }
        s.root_cam = s.joints_cam[kRootJoint];
        if (!(s.root_cam[2] > 0)) {
          bad(img.id, sample_name(joint_file, img.id, img.file_name) +
                          ": ground-truth root depth " + numbers_text(s.root_cam) + " in camera " +
                          std::to_string(img.camera) + " is not positive (mm)");
          continue;
        }
      }
      if (options.check_images) {
        const std::string file = image_path(options.root, s);
        if (!file_exists(file)) {
          bad(img.id,
              sample_name(data_file, img.id, img.file_name) + ": image file missing: " + file);
          continue;
        }
      }
      set.samples.push_back(std::move(s));
    }
  }

  if (detected) {
    set.source_files.push_back(options.bbox_root_file);
    std::sort(all_ids.begin(), all_ids.end());
    std::vector<int64_t> unknown;
    for (const auto& [id, box] : detected_boxes) {
      if (!std::binary_search(all_ids.begin(), all_ids.end(), id)) unknown.push_back(id);
    }
    std::sort(unknown.begin(), unknown.end());
    for (int64_t id : unknown) {
      bad(id, options.bbox_root_file + ": image id " + std::to_string(id) +
                  " is not in the annotations of the selected subjects");
    }
  }
  return set;
}

}  // namespace cnp::data
