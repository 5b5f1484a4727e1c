#pragma once
// MPJPE / PA-MPJPE per REFERENCE.md §6. Accumulate per sample, reduce once.
// Alignment modes are a table (none, rigid), not branches spread over the code.
#include <array>
#include <map>
#include <string>
#include <vector>

#include "data/h36m.h"

namespace cnp::pipeline {

using Joints = std::array<std::array<double, 3>, data::kNumJoints>;

// Heatmap-unit soft-argmax output (x, y, z) of one sample -> camera coordinates (mm),
// absolute (not yet root-relative), using the sample's box, root depth, f and c.
Joints heatmap_to_camera(const float* coords, int heatmap_size, int depth_dim,
                         const data::Sample& sample);

// Rigid (rotation + translation, no scale) Kabsch alignment of pred onto gt over all joints.
Joints rigid_align(const Joints& pred, const Joints& gt);

enum class Alignment { None, Rigid };
struct AlignmentMode {
  const char* metric;  // "mpjpe" | "pa_mpjpe"
  Alignment alignment;
  // Maps a root-relative prediction onto the root-relative ground truth.
  Joints (*align)(const Joints& pred, const Joints& gt);
};
const std::vector<AlignmentMode>& alignment_modes();
const char* headline_metric(int protocol);  // 1 -> "pa_mpjpe", 2 -> "mpjpe"

// Per-sample evaluation: root-relative, aligned per mode, Thorax dropped.
struct SampleResult {
  int64_t image_id = 0;
  int action_idx = 0;
  std::array<std::array<double, data::kNumJoints - 1>, 2> joint_error{};  // [mode][joint] mm
  Joints pred_relative{};  // root-relative prediction (no alignment)
  Joints pred_aligned{};   // after rigid alignment
};
SampleResult evaluate_sample(const Joints& pred_cam, const data::Sample& sample);

class MetricsAccumulator {
 public:
  void add(const SampleResult& result);
  struct Summary {
    std::map<std::string, double> overall;                            // metric -> mm
    std::map<std::string, std::map<std::string, double>> per_action;  // action -> metric -> mm
    std::map<std::string, std::map<std::string, double>> per_joint;   // joint -> metric -> mm
    int64_t num_samples = 0;
  };
  Summary summary() const;

 private:
  struct Sums {
    std::array<double, 2> total{};
    int64_t count = 0;
  };
  std::array<double, 2> total_{};
  std::array<std::array<double, data::kNumJoints - 1>, 2> per_joint_{};
  std::map<int, Sums> per_action_;
  int64_t count_ = 0;
};

}  // namespace cnp::pipeline
