// Job result files: per-job JSON (write, strict read), predictions, and loading a
// sweep's jobs/*.json together with its samples.h5.
#include "pipeline/report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "common/error.h"
#include "common/files.h"
#include "common/version.h"
#include "model/architecture_json.h"
#include "pipeline/samples_h5.h"

namespace cnp::pipeline {
namespace {

using ojson = nlohmann::ordered_json;
namespace fs = std::filesystem;

// The metrics of one table cell in metric_names() order.
ojson metric_values(const std::map<std::string, double>& values) {
  ojson j = ojson::object();
  for (const auto& name : metric_names()) {
    const auto it = values.find(name);
    if (it != values.end()) j[name] = it->second;
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
      if (!node->is_object() || !node->contains(part)) {
        throw context_error(source_, "missing key '" + path + "'");
      }
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
  // An error or percentage: a number, never negative.
  double measure(const std::string& path) const {
    const double v = number(path);
    if (v < 0) fail(path, "is negative (" + std::to_string(v) + ")");
    return v;
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
      out[name][metric] = r.measure(path + "." + name + "." + metric);
    }
  }
  return out;
}

// The file name must describe the job inside: a renamed or hand-edited file would
// otherwise report one job's numbers under another's name.
void check_file_name(const JobResult& r, const std::string& source) {
  const std::string stem = fs::path(source).stem().string();
  const auto parsed = parse_job_stem(stem);
  if (!parsed) {
    throw context_error(source,
                        "file name is not <variant>_e<epoch>_p<protocol>_<flip|noflip>"
                        "[_<bbox>].json");
  }
  auto mismatch = [&](const std::string& key, const std::string& in_file,
                      const std::string& in_name) {
    throw context_error(
        source, "key 'job." + key + "' is " + in_file + " but the file name says " + in_name);
  };
  if (parsed->variant != r.job.variant) mismatch("variant", r.job.variant, parsed->variant);
  if (parsed->epoch != r.job.epoch)
    mismatch("epoch", std::to_string(r.job.epoch), std::to_string(parsed->epoch));
  if (parsed->protocol != r.job.protocol)
    mismatch("protocol", std::to_string(r.job.protocol), std::to_string(parsed->protocol));
  if (parsed->flip != r.job.flip)
    mismatch("flip", r.job.flip ? "true" : "false", parsed->flip ? "true" : "false");
  if (!parsed->bbox.empty() && parsed->bbox != r.job.bbox)
    mismatch("bbox", r.job.bbox, parsed->bbox);
}

}  // namespace

std::optional<JobStem> parse_job_stem(const std::string& stem) {
  // Old names end in the flip tag; newer ones add the box source after it.
  static const std::regex pattern(R"(^(.+)_e(\d{1,9})_p(\d)_(flip|noflip)(?:_([A-Za-z0-9]+))?$)");
  std::smatch m;
  if (!std::regex_match(stem, m, pattern)) return std::nullopt;
  JobStem out;
  out.variant = m[1].str();
  out.epoch = std::stoi(m[2].str());
  out.protocol = std::stoi(m[3].str());
  out.flip = m[4].str() == "flip";
  out.bbox = m[5].matched ? m[5].str() : "";
  return out;
}

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
  ojson m = metric_values(r.metrics.overall);
  m["headline"] = headline_metric(r.job.protocol);
  m["num_samples"] = r.metrics.num_samples;
  // Actions and joints in their dataset order, which is how people read them.
  m["per_action"] = ojson::object();
  for (const char* name : data::action_names()) {
    const auto it = r.metrics.per_action.find(name);
    if (it != r.metrics.per_action.end()) m["per_action"][name] = metric_values(it->second);
  }
  m["per_joint"] = ojson::object();
  for (const char* name : data::joint_names()) {
    const auto it = r.metrics.per_joint.find(name);
    if (it != r.metrics.per_joint.end()) m["per_joint"][name] = metric_values(it->second);
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
  for (const auto& name : metric_names()) {
    const std::string path = "metrics." + name;
    if (in.has(path)) r.metrics.overall[name] = in.measure(path);
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
  for (const std::string& name : list_directory(dir.string())) {
    const fs::path path = dir / name;
    if (path.extension() == ".json" && fs::is_regular_file(path, ec))
      files.push_back(path.string());
  }
  std::vector<JobResult> results;
  for (const auto& file : files) {
    results.push_back(job_result_from_json(read_file(file), file));
    check_file_name(results.back(), file);
  }
  attach_samples(results, (fs::path(output_dir) / kSamplesFile).string());
  return results;
}

void attach_samples(std::vector<JobResult>& results, const std::string& samples_path) {
  if (!fs::exists(samples_path)) return;
  const auto stored = read_samples_file(samples_path);
  for (auto& r : results) {
    const std::string stem =
        r.source.empty() ? r.job.file_stem() : fs::path(r.source).stem().string();
    const auto it = stored.find(stem);
    if (it == stored.end()) continue;  // e.g. a job finished before samples.h5 existed
    const JobSamples& s = it->second;
    if (s.variant != r.job.variant || s.epoch != r.job.epoch || s.protocol != r.job.protocol ||
        s.flip != r.job.flip || s.bbox != r.job.bbox) {
      throw Error(samples_path + ": dataset '" + stem + "' describes " + s.variant + " epoch " +
                  std::to_string(s.epoch) + " protocol " + std::to_string(s.protocol) +
                  (s.flip ? " flip" : " noflip") + " " + s.bbox + ", not the job of " +
                  (r.source.empty() ? stem : r.source));
    }
    if (s.samples.empty()) throw Error(samples_path + ": dataset '" + stem + "' has no samples");
    r.samples = s.samples;
    r.metrics = summarize(r.samples);  // every table from the stored errors
  }
}

}  // namespace cnp::pipeline
