#include "pipeline/report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "common/error.h"
#include "common/files.h"
#include "common/version.h"
#include "model/architecture_json.h"

namespace cnp::pipeline {
namespace {

using ojson = nlohmann::ordered_json;
namespace fs = std::filesystem;

ojson metric_pair(const std::map<std::string, double>& values) {
  ojson j = ojson::object();
  for (const auto& mode : alignment_modes()) {
    const auto it = values.find(mode.metric);
    if (it != values.end()) j[mode.metric] = it->second;
  }
  return j;
}

// Reads one field of a parsed result file; errors name the file and the key path.
class Reader {
 public:
  Reader(const nlohmann::json& root, std::string source)
      : root_(root), source_(std::move(source)) {}

  const nlohmann::json& at(const std::string& path) const {
    const nlohmann::json* node = &root_;
    std::stringstream ss(path);
    for (std::string part; std::getline(ss, part, '.');) {
      if (!node->is_object() || !node->contains(part)) fail(path, "missing key");
      node = &(*node)[part];
    }
    return *node;
  }
  template <typename T>
  T get(const std::string& path) const {
    const nlohmann::json& node = at(path);
    try {
      return node.get<T>();
    } catch (const nlohmann::json::exception&) {
      fail(path, "has the wrong type (" + std::string(node.type_name()) + ")");
    }
  }
  double number(const std::string& path) const {
    const nlohmann::json& node = at(path);
    if (!node.is_number()) fail(path, "must be a number");
    return node.get<double>();
  }
  bool has(const std::string& path) const {
    try {
      at(path);
      return true;
    } catch (const Error&) {
      return false;
    }
  }
  [[noreturn]] void fail(const std::string& path, const std::string& what) const {
    throw context_error(source_, "key '" + path + "' " + what);
  }

 private:
  const nlohmann::json& root_;
  std::string source_;
};

std::map<std::string, std::map<std::string, double>> read_metric_table(const Reader& r,
                                                                       const std::string& path) {
  std::map<std::string, std::map<std::string, double>> out;
  const auto& table = r.at(path);
  if (!table.is_object()) r.fail(path, "must be an object");
  for (const auto& [name, values] : table.items()) {
    if (!values.is_object()) r.fail(path + "." + name, "must be an object");
    for (const auto& [metric, value] : values.items()) {
      if (!value.is_number()) r.fail(path + "." + name + "." + metric, "must be a number");
      out[name][metric] = value.get<double>();
    }
  }
  return out;
}

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

struct Comparison {
  ojson json;
  std::vector<std::string> summary;
};

Comparison build_comparison(const std::vector<JobResult>& results,
                            const model::VariantRegistry& registry) {
  if (results.empty()) throw Error("comparison: no finished jobs to compare");
  const std::vector<Row> rows = sorted_rows(results);
  Comparison c;
  ojson& out = c.json;
  out["cnp_version"] = CNP_VERSION;
  out["units"] = "mm";
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
    for (const auto& mode : alignment_modes()) {
      const auto it = r.metrics.overall.find(mode.metric);
      j[mode.metric] = it == r.metrics.overall.end() ? ojson(nullptr) : ojson(it->second);
    }
    j["headline"] = headline_metric(r.job.protocol);
    j["value"] = row.value;
    j["num_samples"] = r.metrics.num_samples;
    if (const auto paper = published_value(registry, r.job.variant, r.job.protocol)) {
      j["paper"] = *paper;
      j["difference"] = row.value - *paper;
    }
    if (!r.source.empty()) j["source"] = source_dir(r);
    out["jobs"].push_back(j);
  }

  // Best and runner-up per protocol (lowest headline error).
  out["best"] = ojson::object();
  for (int protocol : {1, 2}) {
    std::vector<const Row*> ranked;
    for (const auto& row : rows) {
      if (row.result->job.protocol == protocol) ranked.push_back(&row);
    }
    if (ranked.empty()) continue;
    std::stable_sort(ranked.begin(), ranked.end(),
                     [](const Row* a, const Row* b) { return a->value < b->value; });
    ojson b;
    b["metric"] = headline_metric(protocol);
    b["job"] = ranked[0]->label;
    b["variant"] = ranked[0]->result->job.variant;
    b["value"] = ranked[0]->value;
    std::ostringstream line;
    line << std::fixed << std::setprecision(2) << "Protocol " << protocol << " ("
         << (protocol == 1 ? "PA-MPJPE" : "MPJPE") << "): best is " << ranked[0]->label << " at "
         << ranked[0]->value << " mm";
    if (ranked.size() > 1) {
      b["runner_up"] = {{"job", ranked[1]->label}, {"value", ranked[1]->value}};
      b["margin"] = ranked[1]->value - ranked[0]->value;
      line << ", " << (ranked[1]->value - ranked[0]->value) << " mm better than "
           << ranked[1]->label << " (" << ranked[1]->value << " mm)";
    } else {
      line << " (the only job)";
    }
    out["best"][std::to_string(protocol)] = b;
    c.summary.push_back(line.str() + ".");
  }

  // Paper values against our best job of that variant and protocol.
  out["published"] = ojson::array();
  std::map<std::pair<std::string, int>, const Row*> best_of;
  for (const auto& row : rows) {
    const auto key = std::make_pair(row.result->job.variant, row.result->job.protocol);
    if (!best_of.count(key) || row.value < best_of[key]->value) best_of[key] = &row;
  }
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

std::string fmt(double v) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(2) << v;
  return s.str();
}

std::string fmt_signed(double v) {
  return (v >= 0 ? "+" : "") + fmt(v);
}

}  // namespace

std::string job_result_to_json(const JobResult& r) {
  if (r.metrics.num_samples <= 0 || r.metrics.overall.empty()) {
    throw Error("job " + r.job.stem() +
                ": no evaluated samples; refusing to write an empty result");
  }
  ojson j;
  j["job"] = {{"variant", r.job.variant},
              {"epoch", r.job.epoch},
              {"protocol", r.job.protocol},
              {"flip", r.job.flip},
              {"bbox", r.job.bbox}};
  if (!r.job.bbox_root.empty()) j["job"]["bbox_root"] = r.job.bbox_root;
  j["checkpoint"] = {{"path", r.job.checkpoint},
                     {"sha256", r.checkpoint_sha256},
                     {"architecture", model::architecture_to_json(r.architecture)}};
  // Recorded beside job.epoch (from the file name) so that a disagreement is visible.
  if (r.checkpoint_epoch) j["checkpoint"]["epoch_field"] = *r.checkpoint_epoch;
  ojson m;
  for (const auto& mode : alignment_modes()) {
    const auto it = r.metrics.overall.find(mode.metric);
    if (it != r.metrics.overall.end()) m[mode.metric] = it->second;
  }
  m["headline"] = headline_metric(r.job.protocol);
  m["num_samples"] = r.metrics.num_samples;
  // Actions and joints in their dataset order, which is how people read them.
  m["per_action"] = ojson::object();
  for (const char* name : data::action_names()) {
    const auto it = r.metrics.per_action.find(name);
    if (it != r.metrics.per_action.end()) m["per_action"][name] = metric_pair(it->second);
  }
  m["per_joint"] = ojson::object();
  for (const char* name : data::joint_names()) {
    const auto it = r.metrics.per_joint.find(name);
    if (it != r.metrics.per_joint.end()) m["per_joint"][name] = metric_pair(it->second);
  }
  j["metrics"] = m;
  j["timing"] = {
      {"seconds", r.seconds}, {"images_per_second", r.images_per_second}, {"ranks", r.ranks}};
  j["settings"] = {{"sample_every", r.sample_every},
                   {"dataset_root", r.dataset_root},
                   {"precision", r.precision},
                   {"subjects", data::protocol_subjects(r.job.protocol)}};
  j["settings_key"] = r.settings_key;
  j["skipped_samples"] = r.skipped_samples;
  j["cnp_version"] = CNP_VERSION;
  return j.dump(2) + "\n";
}

JobResult job_result_from_json(const std::string& text, const std::string& source) {
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw context_error(source, std::string("not valid JSON: ") + e.what());
  }
  if (!root.is_object()) throw context_error(source, "a job result must be a JSON object");
  const Reader in(root, source);
  JobResult r;
  r.source = source;
  r.job.variant = in.get<std::string>("job.variant");
  r.job.epoch = in.get<int>("job.epoch");
  r.job.protocol = in.get<int>("job.protocol");
  if (r.job.protocol != 1 && r.job.protocol != 2) in.fail("job.protocol", "must be 1 or 2");
  r.job.flip = in.get<bool>("job.flip");
  r.job.bbox = in.get<std::string>("job.bbox");
  if (in.has("job.bbox_root")) r.job.bbox_root = in.get<std::string>("job.bbox_root");
  r.job.checkpoint = in.get<std::string>("checkpoint.path");
  r.checkpoint_sha256 = in.get<std::string>("checkpoint.sha256");
  auto& a = r.architecture;
  a.depths = in.get<std::array<int, 4>>("checkpoint.architecture.depths");
  a.dims = in.get<std::array<int, 4>>("checkpoint.architecture.dims");
  a.head_channels = in.get<int>("checkpoint.architecture.head_channels");
  a.head_upsample = in.get<std::array<bool, 3>>("checkpoint.architecture.head_upsample");
  a.depth_dim = in.get<int>("checkpoint.architecture.depth_dim");
  a.joints = in.get<int>("checkpoint.architecture.joints");
  for (const auto& mode : alignment_modes()) {
    const std::string path = std::string("metrics.") + mode.metric;
    if (in.has(path)) r.metrics.overall[mode.metric] = in.number(path);
  }
  const std::string headline = in.get<std::string>("metrics.headline");
  if (headline != headline_metric(r.job.protocol)) {
    in.fail("metrics.headline",
            "is '" + headline + "', expected '" + headline_metric(r.job.protocol) + "'");
  }
  if (!r.metrics.overall.count(headline)) in.fail("metrics." + headline, "missing key");
  r.metrics.num_samples = in.get<int64_t>("metrics.num_samples");
  r.metrics.per_action = read_metric_table(in, "metrics.per_action");
  r.metrics.per_joint = read_metric_table(in, "metrics.per_joint");
  r.seconds = in.number("timing.seconds");
  r.images_per_second = in.number("timing.images_per_second");
  r.ranks = in.get<int>("timing.ranks");
  if (in.has("settings.sample_every")) r.sample_every = in.get<int>("settings.sample_every");
  if (in.has("settings.dataset_root"))
    r.dataset_root = in.get<std::string>("settings.dataset_root");
  if (in.has("settings.precision")) r.precision = in.get<std::string>("settings.precision");
  r.settings_key = in.get<std::string>("settings_key");
  r.skipped_samples = in.get<int64_t>("skipped_samples");
  return r;
}

std::string predictions_to_json(const std::vector<SampleResult>& results,
                                const std::vector<const data::Sample*>& samples, int protocol) {
  if (results.size() != samples.size()) {
    throw Error("predictions: " + std::to_string(results.size()) + " results for " +
                std::to_string(samples.size()) + " samples");
  }
  const bool aligned = std::string(headline_metric(protocol)) == "pa_mpjpe";
  nlohmann::json out = nlohmann::json::array();
  for (size_t i = 0; i < results.size(); ++i) {
    const SampleResult& r = results[i];
    if (r.image_id != samples[i]->image_id) {
      throw Error("predictions: result for image " + std::to_string(r.image_id) +
                  " paired with sample " + std::to_string(samples[i]->image_id));
    }
    const Joints& joints = aligned ? r.pred_aligned : r.pred_relative;
    nlohmann::json joint_cam = nlohmann::json::array();
    for (int j = 0; j < data::kNumJoints; ++j) {
      if (j != data::kThorax) joint_cam.push_back(joints[j]);
    }
    out.push_back({{"image_id", r.image_id},
                   {"joint_cam", joint_cam},
                   {"bbox", samples[i]->bbox},
                   {"root_cam", samples[i]->root_cam}});
  }
  return out.dump() + "\n";
}

std::vector<JobResult> load_job_results(const std::string& output_dir) {
  const fs::path dir = fs::path(output_dir) / "jobs";
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw Error(dir.string() + ": no such result directory (expected <output>/jobs)");
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_regular_file() && entry.path().extension() == ".json")
      files.push_back(entry.path().string());
  }
  if (ec) throw Error(dir.string() + ": cannot list: " + ec.message());
  std::sort(files.begin(), files.end());
  std::vector<JobResult> results;
  for (const auto& file : files) results.push_back(job_result_from_json(read_file(file), file));
  return results;
}

std::string comparison_to_json(const std::vector<JobResult>& results,
                               const model::VariantRegistry& registry) {
  return build_comparison(results, registry).json.dump(2) + "\n";
}

std::string comparison_to_markdown(const std::vector<JobResult>& results,
                                   const model::VariantRegistry& registry) {
  const Comparison c = build_comparison(results, registry);
  const ojson& j = c.json;
  std::ostringstream md;
  md << "# ConvNeXtPose sweep comparison\n\n"
     << "Errors in mm. Headline metric: PA-MPJPE (rigid alignment, no scale) for protocol 1, "
        "MPJPE for protocol 2. Paper = published headline value; diff = ours - paper.\n\n"
     << "| job | variant | epoch | protocol | flip | bbox | MPJPE | PA-MPJPE | headline | paper | "
        "diff | samples |\n"
     << "|---|---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& row : j["jobs"]) {
    auto cell = [&](const char* key) {
      return row[key].is_null() ? std::string("-") : fmt(row[key].get<double>());
    };
    md << "| " << row["job"].get<std::string>() << " | " << row["variant"].get<std::string>()
       << " | " << row["epoch"].get<int>() << " | " << row["protocol"].get<int>() << " | "
       << (row["flip"].get<bool>() ? "yes" : "no") << " | " << row["bbox"].get<std::string>()
       << " | " << cell("mpjpe") << " | " << cell("pa_mpjpe") << " | **"
       << fmt(row["value"].get<double>()) << "** | "
       << (row.contains("paper") ? fmt(row["paper"].get<double>()) : "-") << " | "
       << (row.contains("difference") ? fmt_signed(row["difference"].get<double>()) : "-") << " | "
       << row["num_samples"].get<int64_t>() << " |\n";
  }
  md << "\n## Summary\n\n";
  for (const auto& line : c.summary) md << "- " << line << "\n";
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

void write_comparison(const std::string& output_dir, const std::vector<JobResult>& results,
                      const model::VariantRegistry& registry) {
  const std::string json = comparison_to_json(results, registry);
  const std::string md = comparison_to_markdown(results, registry);
  write_file_atomic((fs::path(output_dir) / "comparison.json").string(), json);
  write_file_atomic((fs::path(output_dir) / "comparison.md").string(), md);
}

}  // namespace cnp::pipeline
