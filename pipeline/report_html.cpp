// comparison.html: the comparison tables and the pictures on one page. No scripts,
// no fonts or styles from the network: it opens from a copied results folder offline.
#include <sstream>

#include "pipeline/plots.h"
#include "pipeline/report_internal.h"

namespace cnp::pipeline {
namespace {
using ojson = nlohmann::ordered_json;

std::string escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += ch;
    }
  }
  return out;
}

std::string str(const ojson& v) {
  if (v.is_string()) return escape(v.get<std::string>());
  if (v.is_boolean()) return v.get<bool>() ? "yes" : "no";
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  return fmt_cell(v);
}

// One table row; cells are already escaped.
std::string tr(const std::vector<std::string>& cells, const char* tag = "td") {
  std::string row = "<tr>";
  for (const auto& c : cells) row += std::string("<") + tag + ">" + c + "</" + tag + ">";
  return row + "</tr>\n";
}

std::string significance(const ojson& v) {
  if (!v.is_boolean()) return "-";
  return v.get<bool>() ? "<b>yes</b>" : "no";
}

}  // namespace

std::string html_from_comparison(const Comparison& c, const std::vector<std::string>& pictures) {
  const ojson& j = c.json;
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    << "<title>ConvNeXtPose sweep comparison</title>\n<style>\n"
    << "body{font-family:sans-serif;margin:24px;color:#222;max-width:1300px}\n"
    << "table{border-collapse:collapse;margin:8px 0 24px;font-size:13px}\n"
    << "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}\n"
    << "td:first-child,th:first-child{text-align:left}th{background:#f0f0f0}\n"
    << "img{display:block;max-width:100%;margin:8px 0 24px;border:1px solid #ddd}\n"
    << "</style></head><body>\n<h1>ConvNeXtPose sweep comparison</h1>\n"
    << "<p>Errors in mm. Headline: PA-MPJPE (rigid alignment, no scale) for protocol 1, MPJPE "
       "for protocol 2. 95% intervals from a paired bootstrap over video sequences ("
    << j["bootstrap"]["resamples"].get<int>() << " resamples, seed "
    << j["bootstrap"]["seed"].get<uint64_t>()
    << "). N-MPJPE is scale-aligned; PCK3D (150 mm) and AUC (0-150 mm) are percentages.</p>\n";
  h << "<h2>Summary</h2>\n<ul>\n";
  for (const auto& line : c.summary) h << "<li>" << escape(line) << "</li>\n";
  h << "</ul>\n";
  if (!pictures_available()) {
    h << "<p>No pictures: this cnp was built without Cairo; <code>cnp compare</code> on a "
         "machine whose cnp has Cairo draws them from this folder.</p>\n";
  }
  for (const auto& name : pictures) {
    if (name.size() < 4 || name.substr(name.size() - 4) != ".svg") continue;
    h << "<img src=\"" << escape(name) << "\" alt=\"" << escape(name) << "\">\n";
  }
  h << "<h2>Jobs</h2>\n<table>\n"
    << tr({"job", "variant", "epoch", "protocol", "flip", "bbox", "MPJPE", "PA-MPJPE", "headline",
           "95% CI", "N-MPJPE", "PCK3D@150", "AUC 0-150", "paper", "samples"},
          "th");
  for (const auto& r : j["jobs"]) {
    h << tr({str(r["job"]), str(r["variant"]), str(r["epoch"]), str(r["protocol"]), str(r["flip"]),
             str(r["bbox"]), str(r["mpjpe"]), str(r["pa_mpjpe"]), "<b>" + str(r["value"]) + "</b>",
             fmt_interval(r["value_ci95"]), str(r[kNMpjpeMetric]), str(r[kPckMetric]),
             str(r[kAucMetric]), r.contains("paper") ? str(r["paper"]) : "-",
             str(r["num_samples"])});
  }
  h << "</table>\n";
  if (!j["paired"].empty()) {
    h << "<h2>Against the best job (paired, same samples)</h2>\n"
      << "<p>diff = other - best (positive: the best job is better); significant = the 95% "
         "interval excludes 0.</p>\n<table>\n"
      << tr({"protocol", "best", "other", "diff", "95% CI", "significant", "samples"}, "th");
    for (const auto& p : j["paired"]) {
      h << tr({str(p["protocol"]), str(p["best"]), str(p["other"]),
               fmt_signed(p["diff_mm"].get<double>()), fmt_interval(p["ci95"]),
               significance(p["significant"]), str(p["num_samples"])});
    }
    h << "</table>\n";
  }
  if (!j["variants"].empty()) {
    h << "<h2>Best epoch per variant</h2>\n<table>\n"
      << tr({"variant", "protocol", "best epoch", "headline", "indistinguishable epochs"}, "th");
    for (const auto& v : j["variants"]) {
      std::string same;
      for (const auto& e : v["indistinguishable_epochs"])
        same += (same.empty() ? "" : ", ") + std::to_string(e.get<int>());
      h << tr({str(v["variant"]), str(v["protocol"]), str(v["best_epoch"]), str(v["value"]),
               same.empty() ? "none" : same});
    }
    h << "</table>\n";
  }
  if (!j["published"].empty()) {
    h << "<h2>Against the paper</h2>\n<table>\n"
      << tr({"variant", "protocol", "metric", "paper", "ours (best job)", "diff"}, "th");
    for (const auto& p : j["published"]) {
      h << tr({str(p["variant"]), str(p["protocol"]), str(p["metric"]), str(p["paper"]),
               str(p["ours"]) + " (" + str(p["job"]) + ")",
               fmt_signed(p["difference"].get<double>())});
    }
    h << "</table>\n";
  }
  h << "<p>cnp " << str(j["cnp_version"]) << "</p>\n</body></html>\n";
  return h.str();
}

}  // namespace cnp::pipeline
