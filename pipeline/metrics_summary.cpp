// Job tables from per-sample joint errors: MPJPE, PA-MPJPE, N-MPJPE, PCK3D@150 mm and
// AUC 0-150 mm (REFERENCE.md 6a) overall, per action and per joint. The sweep and
// `cnp compare` (from samples.h5) both go through summarize(), so they agree.
#include <string>

#include "common/error.h"
#include "pipeline/metrics.h"

namespace cnp::pipeline {
namespace {

constexpr double kPckThresholdMm = 150.0;
constexpr int kAucThresholds = 31;  // 0, 5, ..., 150 mm
constexpr double kAucStepMm = 5.0;

// Sums of one table cell; turned into means/percentages at the end.
struct Cell {
  std::array<double, 3> error{};  // per ErrorKind, summed over (sample, joint)
  double below_pck = 0;           // (sample, joint) pairs under 150 mm
  double below_auc = 0;           // pairs under each AUC threshold, summed over thresholds
  double pairs = 0;               // (sample, joint) pairs

  void add(const SampleErrors& s, int joint) {
    for (int k = 0; k < 3; ++k) error[k] += s.joint_error[k][joint];
    const double e = s.joint_error[kMpjpe][joint];
    below_pck += e < kPckThresholdMm;
    // Thresholds t_i = 5 i; e < t_i for every i > e / 5.
    for (int i = 0; i < kAucThresholds; ++i) below_auc += e < kAucStepMm * i;
    pairs += 1;
  }
  std::map<std::string, double> values() const {
    return {{"mpjpe", error[kMpjpe] / pairs},
            {"pa_mpjpe", error[kPaMpjpe] / pairs},
            {kNMpjpeMetric, error[kNMpjpe] / pairs},
            {kPckMetric, 100.0 * below_pck / pairs},
            {kAucMetric, 100.0 * below_auc / (pairs * kAucThresholds)}};
  }
};

}  // namespace

const std::vector<std::string>& metric_names() {
  static const std::vector<std::string> names = {"mpjpe", "pa_mpjpe", kNMpjpeMetric, kPckMetric,
                                                 kAucMetric};
  return names;
}

double headline_sample_error(const SampleErrors& s, int protocol) {
  const auto& joints = s.joint_error[protocol == 1 ? kPaMpjpe : kMpjpe];
  double sum = 0;
  for (double e : joints) sum += e;
  return sum / kEvalJoints;
}

MetricsSummary summarize(const std::vector<SampleErrors>& samples) {
  MetricsSummary out;
  if (samples.empty()) return out;  // nothing measured: no numbers rather than 0 mm
  Cell overall;
  std::array<Cell, kEvalJoints> per_joint{};
  std::map<int, Cell> per_action;
  for (const auto& s : samples) {
    if (s.action_idx < 2 || s.action_idx - 2 >= static_cast<int>(data::action_names().size())) {
      throw Error("sample " + std::to_string(s.image_id) + ": action_idx " +
                  std::to_string(s.action_idx) + " is outside 2..16");
    }
    Cell& action = per_action[s.action_idx];
    for (int j = 0; j < kEvalJoints; ++j) {
      overall.add(s, j);
      per_joint[j].add(s, j);
      action.add(s, j);
    }
  }
  // Every sample has all 17 joints, so the pair means equal the means of per-sample means.
  out.num_samples = static_cast<int64_t>(samples.size());
  out.overall = overall.values();
  for (int j = 0; j < kEvalJoints; ++j)
    out.per_joint[data::joint_names()[j]] = per_joint[j].values();
  for (const auto& [action_idx, cell] : per_action) {
    out.per_action[data::action_names()[action_idx - 2]] = cell.values();
  }
  return out;
}

}  // namespace cnp::pipeline
