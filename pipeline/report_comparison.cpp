// comparison.json: headline numbers side by side, the best job per protocol, paired
// bootstrap comparisons against it, best epoch per variant, paper values, flip gain.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>

#include "common/error.h"
#include "common/files.h"
#include "common/version.h"
#include "pipeline/plots.h"
#include "pipeline/report_internal.h"
#include "pipeline/report_stats.h"

namespace cnp::pipeline {
namespace {

using ojson = nlohmann::ordered_json;
namespace fs = std::filesystem;

double headline_value(const JobResult& r) {
  const char* metric = headline_metric(r.job.protocol);
  const auto it = r.metrics.overall.find(metric);
  if (it == r.metrics.overall.end()) {
    throw Error("job " + r.job.stem() + (r.source.empty() ? "" : " (" + r.source + ")") + ": no " +
                metric + " value");
  }
  return it->second;
}

std::optional<double> published_value(const model::VariantRegistry& registry,
                                      const std::string& variant, int protocol) {
  const model::Variant* v = registry.find(variant);
  if (!v) return std::nullopt;
  return protocol == 1 ? v->published_pa_mpjpe : v->published_mpjpe;
}

// The result directory a job file came from (<dir>/jobs/<stem>.json).
std::string source_dir(const JobResult& r) {
  if (r.source.empty()) return "";
  return fs::path(r.source).parent_path().parent_path().string();
}

struct Row {
  const JobResult* result;
  std::string label;  // stem, plus the directory when several sweeps are compared
  double value;
};

std::vector<Row> sorted_rows(const std::vector<JobResult>& results) {
  std::set<std::string> dirs;
  for (const auto& r : results) dirs.insert(source_dir(r));
  std::vector<Row> rows;
  for (const auto& r : results) {
    std::string label = r.job.stem();
    if (dirs.size() > 1) label += " (" + source_dir(r) + ")";
    rows.push_back({&r, label, headline_value(r)});
  }
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    const auto& x = a.result->job;
    const auto& y = b.result->job;
    return std::tie(x.protocol, x.variant, x.epoch, x.bbox, x.flip, a.label) <
           std::tie(y.protocol, y.variant, y.epoch, y.bbox, y.flip, b.label);
  });
  return rows;
}

ojson interval_json(const Interval& i) {
  return ojson::array({i.lo, i.hi});
}

ojson optional_metric(const JobResult& r, const std::string& name) {
  const auto it = r.metrics.overall.find(name);
  return it == r.metrics.overall.end() ? ojson(nullptr) : ojson(it->second);
}

// diff_mm / ci95 / significant of one paired comparison (CI null without samples).
ojson difference_json(double diff, const std::optional<Interval>& ci) {
  ojson j;
  j["diff_mm"] = ci ? ci->mean : diff;
  j["ci95"] = ci ? interval_json(*ci) : ojson(nullptr);
  j["significant"] = ci ? ojson(ci->excludes_zero()) : ojson(nullptr);
  return j;
}

std::string describe_ci(const Interval& ci) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(2) << "95% CI [" << ci.lo << ", " << ci.hi << "], "
    << (ci.excludes_zero() ? "a real difference" : "not distinguishable");
  return s.str();
}

bool same_setting(const JobResult& a, const JobResult& b) {
  return a.job.variant == b.job.variant && a.job.protocol == b.job.protocol &&
         a.job.flip == b.job.flip && a.job.bbox == b.job.bbox && source_dir(a) == source_dir(b);
}

// Headline value per action / per joint of one job, in dataset order.
ojson headline_table(const std::map<std::string, std::map<std::string, double>>& table,
                     const char* metric, const std::vector<const char*>& order) {
  ojson out = ojson::object();
  for (const char* name : order) {
    const auto it = table.find(name);
    if (it == table.end()) continue;
    const auto m = it->second.find(metric);
    if (m != it->second.end()) out[name] = m->second;
  }
  return out;
}

// Every metric per action / joint, in dataset order.
template <typename It>
ojson metric_tables(const std::map<std::string, std::map<std::string, double>>& table, It begin,
                    It end) {
  ojson out = ojson::object();
  for (It name = begin; name != end; ++name) {
    const auto it = table.find(*name);
    if (it == table.end()) continue;
    ojson cell = ojson::object();
    for (const auto& metric : metric_names()) {
      const auto m = it->second.find(metric);
      if (m != it->second.end()) cell[metric] = m->second;
    }
    out[*name] = cell;
  }
  return out;
}

}  // namespace

std::string fmt(double v) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(2) << v;
  return s.str();
}

std::string fmt_signed(double v) {
  return (v >= 0 ? "+" : "") + fmt(v);
}

std::string fmt_cell(const ojson& v) {
  return v.is_number() ? fmt(v.get<double>()) : std::string("-");
}

std::string fmt_interval(const ojson& v) {
  if (!v.is_array() || v.size() != 2) return "-";
  return "[" + fmt(v[0].get<double>()) + ", " + fmt(v[1].get<double>()) + "]";
}

Comparison build_comparison(const std::vector<JobResult>& results,
                            const model::VariantRegistry& registry) {
  if (results.empty()) throw Error("comparison: no finished jobs to compare");
  const std::vector<Row> rows = sorted_rows(results);
  ResultStatistics stats;
  Comparison c;
  ojson& out = c.json;
  out["cnp_version"] = CNP_VERSION;
  out["units"] = "mm";
  out["bootstrap"] = {{"resamples", stats.resamples()},
                      {"seed", stats.seed()},
                      {"unit", "video sequence (subject, action, subaction, camera)"},
                      {"interval", "95% percentile"},
                      {"difference", "other - best (positive: the best job is better)"}};
  out["jobs"] = ojson::array();
  for (const auto& row : rows) {
    const JobResult& r = *row.result;
    ojson j;
    j["job"] = row.label;
    j["variant"] = r.job.variant;
    j["epoch"] = r.job.epoch;
    j["protocol"] = r.job.protocol;
    j["flip"] = r.job.flip;
    j["bbox"] = r.job.bbox;
    for (const auto& mode : alignment_modes()) j[mode.metric] = optional_metric(r, mode.metric);
    j["headline"] = headline_metric(r.job.protocol);
    j["value"] = row.value;
    const auto ci = stats.headline_ci(r);
    j["value_ci95"] = ci ? interval_json(*ci) : ojson(nullptr);
    j[kNMpjpeMetric] = optional_metric(r, kNMpjpeMetric);
    j[kPckMetric] = optional_metric(r, kPckMetric);
    j[kAucMetric] = optional_metric(r, kAucMetric);
    j["num_samples"] = r.metrics.num_samples;
    if (const auto paper = published_value(registry, r.job.variant, r.job.protocol)) {
      j["paper"] = *paper;
      j["difference"] = row.value - *paper;
    }
    if (!r.source.empty()) j["source"] = source_dir(r);
    j["per_action"] = metric_tables(r.metrics.per_action, data::action_names().begin(),
                                    data::action_names().end());
    j["per_joint"] = metric_tables(r.metrics.per_joint, data::joint_names().begin(),
                                   data::joint_names().begin() + kEvalJoints);
    out["jobs"].push_back(j);
  }

  // Best job per protocol (lowest headline error), paired against every other job.
  out["best"] = ojson::object();
  out["paired"] = ojson::array();
  for (int protocol : {1, 2}) {
    std::vector<const Row*> ranked;
    for (const auto& row : rows) {
      if (row.result->job.protocol == protocol) ranked.push_back(&row);
    }
    if (ranked.empty()) continue;
    std::stable_sort(ranked.begin(), ranked.end(),
                     [](const Row* a, const Row* b) { return a->value < b->value; });
    const Row& best = *ranked[0];
    ojson b;
    b["metric"] = headline_metric(protocol);
    b["job"] = best.label;
    b["variant"] = best.result->job.variant;
    b["value"] = best.value;
    std::ostringstream line;
    line << std::fixed << std::setprecision(2) << "Protocol " << protocol << " ("
         << (protocol == 1 ? "PA-MPJPE" : "MPJPE") << "): best is " << best.label << " at "
         << best.value << " mm";
    for (size_t k = 1; k < ranked.size(); ++k) {
      const Row& other = *ranked[k];
      const auto diff = stats.paired(*best.result, *other.result);
      ojson p;
      p["protocol"] = protocol;
      p["metric"] = headline_metric(protocol);
      p["best"] = best.label;
      p["other"] = other.label;
      p.update(difference_json(other.value - best.value,
                               diff ? std::optional<Interval>(diff->overall) : std::nullopt));
      p["num_samples"] = diff ? ojson(diff->num_samples) : ojson(nullptr);
      p["per_action"] = ojson::object();
      if (diff) {
        for (const char* action : data::action_names()) {
          const auto it = diff->per_action.find(action);
          if (it != diff->per_action.end())
            p["per_action"][action] = difference_json(it->second.mean, it->second);
        }
      }
      if (k == 1) {
        b["runner_up"] = {{"job", other.label}, {"value", other.value}};
        b["margin"] = other.value - best.value;
        line << ", " << (other.value - best.value) << " mm better than " << other.label << " ("
             << other.value << " mm";
        if (diff) line << "; " << describe_ci(diff->overall);
        line << ")";
      }
      out["paired"].push_back(p);
    }
    if (ranked.size() == 1) line << " (the only job)";
    out["best"][std::to_string(protocol)] = b;
    c.summary.push_back(line.str() + ".");
  }

  // Per variant and protocol: the best epoch and the epochs that cannot be told apart
  // from it (same flip, boxes and sweep; paired interval of the difference holds 0).
  out["variants"] = ojson::array();
  std::map<std::pair<std::string, int>, const Row*> best_of;
  for (const auto& row : rows) {
    const auto key = std::make_pair(row.result->job.variant, row.result->job.protocol);
    if (!best_of.count(key) || row.value < best_of[key]->value) best_of[key] = &row;
  }
  for (const auto& [key, best] : best_of) {
    const JobResult& br = *best->result;
    ojson v;
    v["variant"] = key.first;
    v["protocol"] = key.second;
    v["metric"] = headline_metric(key.second);
    v["best_job"] = best->label;
    v["best_epoch"] = br.job.epoch;
    v["flip"] = br.job.flip;
    v["bbox"] = br.job.bbox;
    v["value"] = best->value;
    v["indistinguishable_epochs"] = ojson::array();
    v["epochs"] = ojson::array();
    std::vector<int> same;
    for (const auto& row : rows) {
      const JobResult& r = *row.result;
      if (&r == &br || !same_setting(r, br) || r.job.epoch == br.job.epoch) continue;
      const auto diff = stats.paired(br, r);
      ojson e;
      e["epoch"] = r.job.epoch;
      e["job"] = row.label;
      e.update(difference_json(row.value - best->value,
                               diff ? std::optional<Interval>(diff->overall) : std::nullopt));
      v["epochs"].push_back(e);
      if (diff && !diff->overall.excludes_zero()) {
        v["indistinguishable_epochs"].push_back(r.job.epoch);
        same.push_back(r.job.epoch);
      }
    }
    v["per_action"] = headline_table(br.metrics.per_action, headline_metric(key.second),
                                     {data::action_names().begin(), data::action_names().end()});
    v["per_joint"] =
        headline_table(br.metrics.per_joint, headline_metric(key.second),
                       {data::joint_names().begin(), data::joint_names().begin() + kEvalJoints});
    if (!v["epochs"].empty()) {
      std::ostringstream line;
      line << std::fixed << std::setprecision(2) << key.first << " protocol " << key.second
           << ": best epoch " << br.job.epoch << " (" << best->value << " mm)";
      if (same.empty()) {
        line << "; every other epoch is worse beyond the 95% interval or has no samples";
      } else {
        line << "; cannot be told apart from epoch" << (same.size() > 1 ? "s " : " ");
        for (size_t i = 0; i < same.size(); ++i) line << (i ? ", " : "") << same[i];
      }
      c.summary.push_back(line.str() + ".");
    }
    out["variants"].push_back(v);
  }

  // Paper values against our best job of that variant and protocol.
  out["published"] = ojson::array();
  for (const auto& [key, row] : best_of) {
    const auto paper = published_value(registry, key.first, key.second);
    if (!paper) continue;
    out["published"].push_back({{"variant", key.first},
                                {"protocol", key.second},
                                {"metric", headline_metric(key.second)},
                                {"paper", *paper},
                                {"ours", row->value},
                                {"job", row->label},
                                {"difference", row->value - *paper}});
  }

  // Flip-test gain: the same grid point with and without flip.
  out["flip_gain"] = ojson::array();
  for (const auto& a : rows) {
    if (a.result->job.flip) continue;
    for (const auto& b : rows) {
      const auto& x = a.result->job;
      const auto& y = b.result->job;
      if (!y.flip || x.variant != y.variant || x.epoch != y.epoch || x.protocol != y.protocol ||
          x.bbox != y.bbox || source_dir(*a.result) != source_dir(*b.result)) {
        continue;
      }
      const double gain = a.value - b.value;
      out["flip_gain"].push_back({{"variant", x.variant},
                                  {"epoch", x.epoch},
                                  {"protocol", x.protocol},
                                  {"bbox", x.bbox},
                                  {"noflip", a.value},
                                  {"flip", b.value},
                                  {"gain", gain}});
      std::ostringstream line;
      line << std::fixed << std::setprecision(2) << "Flip test "
           << (gain >= 0 ? "helps " : "hurts ") << x.variant << " epoch " << x.epoch << " protocol "
           << x.protocol << " by " << std::fabs(gain) << " mm.";
      c.summary.push_back(line.str());
    }
  }
  out["summary"] = c.summary;
  return c;
}

std::string comparison_to_json(const std::vector<JobResult>& results,
                               const model::VariantRegistry& registry) {
  return build_comparison(results, registry).json.dump(2) + "\n";
}

std::string comparison_to_markdown(const std::vector<JobResult>& results,
                                   const model::VariantRegistry& registry) {
  return markdown_from_comparison(build_comparison(results, registry));
}

void write_comparison(const std::string& output_dir, const std::vector<JobResult>& results,
                      const model::VariantRegistry& registry) {
  const Comparison c = build_comparison(results, registry);
  const fs::path dir(output_dir);
  // Pictures first, the page that shows them last: a reader of comparison.html never
  // finds a picture missing.
  const std::vector<std::string> pictures = write_pictures(c.json, output_dir);
  write_file_atomic((dir / "comparison.json").string(), c.json.dump(2) + "\n");
  write_file_atomic((dir / "comparison.md").string(), markdown_from_comparison(c));
  write_file_atomic((dir / "comparison.html").string(), html_from_comparison(c, pictures));
}

}  // namespace cnp::pipeline
