// MPJPE / PA-MPJPE (REFERENCE.md §6). The 3x3 SVD of the Kabsch step uses OpenCV's
// cv::SVD (a maintained, exact-enough Jacobi SVD in double precision) instead of a
// hand-written routine.
#include "pipeline/metrics.h"

#include <cmath>
#include <opencv2/core.hpp>

#include "common/error.h"

namespace cnp::pipeline {
namespace {

constexpr double kBbox3dDepthMm = 2000.0;  // bbox_3d_shape depth: z spans +-1000 mm

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

namespace {

// N-MPJPE's scale (Rhodin et al. 2018): the least-squares s minimising |s*pred - gt| over
// the evaluated joints; 1 when the prediction is all zeros (nothing to scale).
double n_mpjpe_scale(const Joints& pred, const Joints& gt) {
  double dot = 0, norm = 0;
  for (int j = 0; j < kEvalJoints; ++j) {
    for (int a = 0; a < 3; ++a) {
      dot += pred[j][a] * gt[j][a];
      norm += pred[j][a] * pred[j][a];
    }
  }
  return norm > 0 ? dot / norm : 1.0;
}

double distance(const std::array<double, 3>& a, const std::array<double, 3>& b, double scale) {
  const double dx = scale * a[0] - b[0], dy = scale * a[1] - b[1], dz = scale * a[2] - b[2];
  return std::sqrt(dx * dx + dy * dy + dz * dz);
}

}  // namespace

SampleResult evaluate_sample(const Joints& pred_cam, const data::Sample& sample) {
  SampleResult result;
  result.image_id = sample.image_id;
  result.subject = sample.subject;
  result.action_idx = sample.action_idx;
  result.subaction = sample.subaction;
  result.camera = sample.camera;
  result.pred_relative = root_relative(pred_cam);
  const Joints gt = root_relative(sample.joints_cam);
  const auto& modes = alignment_modes();
  static_assert(std::tuple_size<decltype(result.joint_error)>::value == 2,
                "one error row per mode");
  for (size_t m = 0; m < modes.size(); ++m) {
    const Joints pred = modes[m].align(result.pred_relative, gt);
    if (modes[m].alignment == Alignment::Rigid) result.pred_aligned = pred;
    for (int j = 0; j < kEvalJoints; ++j) result.joint_error[m][j] = distance(pred[j], gt[j], 1.0);
  }
  const double scale = n_mpjpe_scale(result.pred_relative, gt);
  for (int j = 0; j < kEvalJoints; ++j) {
    result.n_joint_error[j] = distance(result.pred_relative[j], gt[j], scale);
  }
  return result;
}

SampleErrors sample_errors(const SampleResult& r) {
  SampleErrors s;
  s.image_id = r.image_id;
  s.subject = r.subject;
  s.action_idx = r.action_idx;
  s.subaction = r.subaction;
  s.camera = r.camera;
  s.joint_error[kMpjpe] = r.joint_error[0];
  s.joint_error[kPaMpjpe] = r.joint_error[1];
  s.joint_error[kNMpjpe] = r.n_joint_error;
  return s;
}

void MetricsAccumulator::add(const SampleResult& result) {
  const int action = result.action_idx - 2;
  if (action < 0 || action >= static_cast<int>(data::action_names().size())) {
    throw Error("sample " + std::to_string(result.image_id) + ": action_idx " +
                std::to_string(result.action_idx) + " is outside 2..16");
  }
  samples_.push_back(sample_errors(result));
}

}  // namespace cnp::pipeline
