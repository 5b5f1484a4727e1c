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

constexpr int kEvalJoints = data::kNumJoints - 1;  // Thorax is not evaluated
using JointErrors = std::array<double, kEvalJoints>;

// Per-sample evaluation: root-relative, aligned per mode, Thorax dropped.
struct SampleResult {
  int64_t image_id = 0;
  int subject = 0, action_idx = 0, subaction = 0, camera = 0;  // the video sequence
  std::array<JointErrors, 2> joint_error{};                    // [mode][joint] mm
  JointErrors n_joint_error{};  // N-MPJPE (scale-aligned, REFERENCE 6a) mm
  Joints pred_relative{};       // root-relative prediction (no alignment)
  Joints pred_aligned{};        // after rigid alignment
};
SampleResult evaluate_sample(const Joints& pred_cam, const data::Sample& sample);

// The per-joint errors of one sample in every alignment: what samples.h5 stores and
// every table of a job is computed from.
struct SampleErrors {
  int64_t image_id = 0;
  int subject = 0, action_idx = 0, subaction = 0, camera = 0;
  std::array<JointErrors, 3> joint_error{};  // [kMpjpe, kPaMpjpe, kNMpjpe][joint] mm
};
enum ErrorKind { kMpjpe = 0, kPaMpjpe = 1, kNMpjpe = 2 };
SampleErrors sample_errors(const SampleResult& result);

// Metric names beside the alignment modes (REFERENCE 6a). PCK3D and AUC are in
// percent and use the unaligned root-relative joint errors, like MPJPE.
constexpr const char* kNMpjpeMetric = "n_mpjpe";
constexpr const char* kPckMetric = "pck3d_150";
constexpr const char* kAucMetric = "auc_0_150";
// Every metric of a job table, in the order reports show them.
const std::vector<std::string>& metric_names();

// Mean error of one sample over the 17 joints in the protocol's headline alignment.
double headline_sample_error(const SampleErrors& s, int protocol);

struct MetricsSummary {
  std::map<std::string, double> overall;                            // metric -> value
  std::map<std::string, std::map<std::string, double>> per_action;  // action -> metric -> value
  std::map<std::string, std::map<std::string, double>> per_joint;   // joint -> metric -> value
  int64_t num_samples = 0;
};
// Every metric of metric_names() overall, per action and per joint. Throws naming the
// sample on an action_idx outside 2..16; empty summary for no samples.
MetricsSummary summarize(const std::vector<SampleErrors>& samples);

class MetricsAccumulator {
 public:
  void add(const SampleResult& result);
  using Summary = MetricsSummary;
  Summary summary() const { return summarize(samples_); }
  const std::vector<SampleErrors>& samples() const { return samples_; }

 private:
  std::vector<SampleErrors> samples_;
};

}  // namespace cnp::pipeline
