// MPJPE / PA-MPJPE (REFERENCE.md §6). The 3x3 SVD of the Kabsch step uses OpenCV's
// cv::SVD (a maintained, exact-enough Jacobi SVD in double precision) instead of a
// hand-written routine.
#include "pipeline/metrics.h"

#include <cmath>
#include <opencv2/core.hpp>

#include "common/error.h"

namespace cnp::pipeline {
namespace {

constexpr double kBbox3dDepthMm = 2000.0;          // bbox_3d_shape depth: z spans +-1000 mm
constexpr int kEvalJoints = data::kNumJoints - 1;  // Thorax is not evaluated

Joints no_alignment(const Joints& pred, const Joints&) {
  return pred;
}

Joints root_relative(const Joints& joints) {
  Joints out = joints;
  for (auto& j : out) {
    for (int a = 0; a < 3; ++a) j[a] -= joints[data::kRootJoint][a];
  }
  return out;
}

}  // namespace

Joints heatmap_to_camera(const float* coords, int heatmap_size, int depth_dim,
                         const data::Sample& sample) {
  if (heatmap_size <= 0 || depth_dim <= 0) {
    throw Error("heatmap_to_camera: bad heatmap size " + std::to_string(heatmap_size) +
                " / depth " + std::to_string(depth_dim));
  }
  Joints out{};
  const auto& box = sample.bbox;
  for (int j = 0; j < data::kNumJoints; ++j) {
    const double x = coords[3 * j], y = coords[3 * j + 1], z = coords[3 * j + 2];
    const double u = x / heatmap_size * box[2] + box[0];
    const double v = y / heatmap_size * box[3] + box[1];
    const double depth = (z / depth_dim * 2.0 - 1.0) * (kBbox3dDepthMm / 2.0) + sample.root_cam[2];
    out[j] = {(u - sample.c[0]) / sample.f[0] * depth, (v - sample.c[1]) / sample.f[1] * depth,
              depth};
  }
  return out;
}

Joints rigid_align(const Joints& pred, const Joints& gt) {
  const int n = data::kNumJoints;
  std::array<double, 3> mp{}, mg{};
  for (int j = 0; j < n; ++j) {
    for (int a = 0; a < 3; ++a) {
      mp[a] += pred[j][a] / n;
      mg[a] += gt[j][a] / n;
    }
  }
  // Cross-covariance H = sum (p - mp)(g - mg)^T; H = U S V^T; R = V U^T.
  cv::Matx33d h = cv::Matx33d::zeros();
  for (int j = 0; j < n; ++j) {
    for (int r = 0; r < 3; ++r) {
      for (int c = 0; c < 3; ++c) h(r, c) += (pred[j][r] - mp[r]) * (gt[j][c] - mg[c]);
    }
  }
  cv::Matx33d u, vt;
  cv::Matx31d w;
  cv::SVD::compute(h, w, u, vt, cv::SVD::FULL_UV);
  cv::Matx33d rot = vt.t() * u.t();
  if (cv::determinant(rot) < 0) {
    // Reflection: flip the singular vector of the smallest singular value.
    for (int c = 0; c < 3; ++c) vt(2, c) = -vt(2, c);
    rot = vt.t() * u.t();
  }
  const cv::Vec3d t = cv::Vec3d(mg[0], mg[1], mg[2]) - rot * cv::Vec3d(mp[0], mp[1], mp[2]);
  Joints out{};
  for (int j = 0; j < n; ++j) {
    const cv::Vec3d p = rot * cv::Vec3d(pred[j][0], pred[j][1], pred[j][2]) + t;
    out[j] = {p[0], p[1], p[2]};
  }
  return out;
}

const std::vector<AlignmentMode>& alignment_modes() {
  static const std::vector<AlignmentMode> modes = {
      {"mpjpe", Alignment::None, &no_alignment},
      {"pa_mpjpe", Alignment::Rigid, &rigid_align},
  };
  return modes;
}

const char* headline_metric(int protocol) {
  if (protocol == 1) return "pa_mpjpe";
  if (protocol == 2) return "mpjpe";
  throw Error("unknown protocol " + std::to_string(protocol) + " (expected 1 or 2)");
}

SampleResult evaluate_sample(const Joints& pred_cam, const data::Sample& sample) {
  SampleResult result;
  result.image_id = sample.image_id;
  result.action_idx = sample.action_idx;
  result.pred_relative = root_relative(pred_cam);
  const Joints gt = root_relative(sample.joints_cam);
  const auto& modes = alignment_modes();
  static_assert(std::tuple_size<decltype(result.joint_error)>::value == 2,
                "one error row per mode");
  for (size_t m = 0; m < modes.size(); ++m) {
    const Joints pred = modes[m].align(result.pred_relative, gt);
    if (modes[m].alignment == Alignment::Rigid) result.pred_aligned = pred;
    for (int j = 0; j < kEvalJoints; ++j) {
      const double dx = pred[j][0] - gt[j][0], dy = pred[j][1] - gt[j][1],
                   dz = pred[j][2] - gt[j][2];
      result.joint_error[m][j] = std::sqrt(dx * dx + dy * dy + dz * dz);
    }
  }
  return result;
}

void MetricsAccumulator::add(const SampleResult& result) {
  const int action = result.action_idx - 2;
  if (action < 0 || action >= static_cast<int>(data::action_names().size())) {
    throw Error("sample " + std::to_string(result.image_id) + ": action_idx " +
                std::to_string(result.action_idx) + " is outside 2..16");
  }
  Sums& sums = per_action_[result.action_idx];
  for (size_t m = 0; m < total_.size(); ++m) {
    double sample_sum = 0;
    for (int j = 0; j < kEvalJoints; ++j) {
      sample_sum += result.joint_error[m][j];
      per_joint_[m][j] += result.joint_error[m][j];
    }
    total_[m] += sample_sum / kEvalJoints;
    sums.total[m] += sample_sum / kEvalJoints;
  }
  ++sums.count;
  ++count_;
}

MetricsAccumulator::Summary MetricsAccumulator::summary() const {
  Summary s;
  s.num_samples = count_;
  if (count_ == 0) return s;  // nothing measured: no numbers rather than 0 mm
  const auto& modes = alignment_modes();
  for (size_t m = 0; m < modes.size(); ++m) {
    s.overall[modes[m].metric] = total_[m] / static_cast<double>(count_);
    for (int j = 0; j < kEvalJoints; ++j) {
      s.per_joint[data::joint_names()[j]][modes[m].metric] =
          per_joint_[m][j] / static_cast<double>(count_);
    }
    for (const auto& [action_idx, sums] : per_action_) {
      s.per_action[data::action_names()[action_idx - 2]][modes[m].metric] =
          sums.total[m] / static_cast<double>(sums.count);
    }
  }
  return s;
}

}  // namespace cnp::pipeline
