// comparison.md from the comparison JSON.
#include <sstream>

#include "pipeline/report_internal.h"

namespace cnp::pipeline {
namespace {
using ojson = nlohmann::ordered_json;

std::string yes_no(const ojson& v) {
  if (!v.is_boolean()) return "-";
  return v.get<bool>() ? "**yes**" : "no";
}

std::string epochs_list(const ojson& epochs) {
  if (epochs.empty()) return "none";
  std::string s;
  for (const auto& e : epochs) s += (s.empty() ? "" : ", ") + std::to_string(e.get<int>());
  return s;
}
}  // namespace

std::string markdown_from_comparison(const Comparison& c) {
  const ojson& j = c.json;
  std::ostringstream md;
  md << "# ConvNeXtPose sweep comparison\n\n"
     << "Errors in mm. Headline metric: PA-MPJPE (rigid alignment, no scale) for protocol 1, "
        "MPJPE for protocol 2; 95% CI from a bootstrap over video sequences. N-MPJPE is "
        "scale-aligned; PCK3D (150 mm) and AUC (0-150 mm) are in percent, on unaligned "
        "root-relative joints. Paper = published headline value; diff = ours - paper.\n\n"
     << "| job | variant | epoch | protocol | flip | bbox | MPJPE | PA-MPJPE | headline | 95% CI | "
        "N-MPJPE | PCK3D | AUC | paper | diff | samples |\n"
     << "|---|---|---:|---:|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& row : j["jobs"]) {
    md << "| " << row["job"].get<std::string>() << " | " << row["variant"].get<std::string>()
       << " | " << row["epoch"].get<int>() << " | " << row["protocol"].get<int>() << " | "
       << (row["flip"].get<bool>() ? "yes" : "no") << " | " << row["bbox"].get<std::string>()
       << " | " << fmt_cell(row["mpjpe"]) << " | " << fmt_cell(row["pa_mpjpe"]) << " | **"
       << fmt(row["value"].get<double>()) << "** | " << fmt_interval(row["value_ci95"]) << " | "
       << fmt_cell(row[kNMpjpeMetric]) << " | " << fmt_cell(row[kPckMetric]) << " | "
       << fmt_cell(row[kAucMetric]) << " | "
       << (row.contains("paper") ? fmt(row["paper"].get<double>()) : "-") << " | "
       << (row.contains("difference") ? fmt_signed(row["difference"].get<double>()) : "-") << " | "
       << row["num_samples"].get<int64_t>() << " |\n";
  }
  md << "\n## Summary\n\n";
  for (const auto& line : c.summary) md << "- " << line << "\n";
  if (!j["paired"].empty()) {
    md << "\n## Against the best job (paired, same samples)\n\n"
       << "diff = other - best in mm (positive: the best job is better); significant = the 95% "
          "CI excludes 0.\n\n"
       << "| protocol | best | other | diff | 95% CI | significant | samples |\n"
       << "|---:|---|---|---:|---|---|---:|\n";
    for (const auto& p : j["paired"]) {
      md << "| " << p["protocol"].get<int>() << " | " << p["best"].get<std::string>() << " | "
         << p["other"].get<std::string>() << " | " << fmt_signed(p["diff_mm"].get<double>())
         << " | " << fmt_interval(p["ci95"]) << " | " << yes_no(p["significant"]) << " | "
         << (p["num_samples"].is_number() ? std::to_string(p["num_samples"].get<int64_t>()) : "-")
         << " |\n";
    }
  }
  if (!j["variants"].empty()) {
    md << "\n## Best epoch per variant\n\n"
       << "| variant | protocol | best epoch | headline | indistinguishable epochs |\n"
       << "|---|---:|---:|---:|---|\n";
    for (const auto& v : j["variants"]) {
      md << "| " << v["variant"].get<std::string>() << " | " << v["protocol"].get<int>() << " | "
         << v["best_epoch"].get<int>() << " | " << fmt(v["value"].get<double>()) << " | "
         << epochs_list(v["indistinguishable_epochs"]) << " |\n";
    }
  }
  if (!j["published"].empty()) {
    md << "\n## Against the paper\n\n| variant | protocol | metric | paper | ours (best job) | "
          "diff |\n"
       << "|---|---:|---|---:|---:|---:|\n";
    for (const auto& p : j["published"]) {
      md << "| " << p["variant"].get<std::string>() << " | " << p["protocol"].get<int>() << " | "
         << p["metric"].get<std::string>() << " | " << fmt(p["paper"].get<double>()) << " | "
         << fmt(p["ours"].get<double>()) << " (" << p["job"].get<std::string>() << ") | "
         << fmt_signed(p["difference"].get<double>()) << " |\n";
    }
  }
  return md.str();
}

}  // namespace cnp::pipeline
