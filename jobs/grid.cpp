#include "jobs/grid.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>
#include <unordered_map>

#include "common/error.h"
#include "common/files.h"
#include "data/h36m.h"

namespace cnp::jobs {
namespace {

// Bump when the meaning of a result changes (metrics, preprocessing, file layout),
// so that a rerun recomputes instead of trusting old files.
constexpr int kSettingsSchemaVersion = 1;

std::string canonical_path(const std::string& path) {
  if (path.empty()) return path;
  std::error_code ec;
  const auto p = std::filesystem::weakly_canonical(path, ec);
  return ec ? path : p.string();
}

}  // namespace

std::string Job::stem() const {
  return variant + "_e" + std::to_string(epoch) + "_p" + std::to_string(protocol) + "_" +
         (flip ? "flip" : "noflip");
}

std::string Job::file_stem() const {
  return stem() + "_" + bbox;
}

std::string resolve_template(const std::string& templ, const std::string& variant, int epoch,
                             int protocol) {
  std::string out;
  for (size_t i = 0; i < templ.size(); ++i) {
    if (templ[i] == '}') throw Error("unmatched '}' in template '" + templ + "'");
    if (templ[i] != '{') {
      out.push_back(templ[i]);
      continue;
    }
    const size_t close = templ.find('}', i);
    if (close == std::string::npos) throw Error("unmatched '{' in template '" + templ + "'");
    const std::string name = templ.substr(i + 1, close - i - 1);
    if (name == "variant") {
      out += variant;
    } else if (name == "epoch") {
      out += std::to_string(epoch);
    } else if (name == "protocol") {
      out += std::to_string(protocol);
    } else {
      throw Error("unknown placeholder '{" + name + "}' in template '" + templ +
                  "' (expected {variant}, {epoch}, {protocol})");
    }
    i = close;
  }
  return out;
}

std::vector<Job> expand_jobs(const SweepConfig& config) {
  std::vector<Job> jobs;
  const bool detected = config.dataset.bbox == "detected";
  for (const auto& variant : config.sweep.variants) {
    for (int epoch : config.sweep.epochs) {
      for (int protocol : config.sweep.protocols) {
        for (bool flip : config.sweep.flips) {
          Job job;
          job.variant = variant;
          job.epoch = epoch;
          job.protocol = protocol;
          job.flip = flip;
          job.bbox = config.dataset.bbox;
          job.checkpoint = resolve_template(config.model.checkpoint, variant, epoch, protocol);
          if (detected)
            job.bbox_root = resolve_template(config.dataset.bbox_root, variant, epoch, protocol);
          jobs.push_back(job);
        }
      }
    }
  }
  if (jobs.empty()) throw Error(config.source_path + ": the sweep grid is empty (no jobs)");
  return jobs;
}

std::vector<Pass> plan_passes(const std::vector<Job>& jobs) {
  // A pass is identified by what its forward computation depends on: the weights,
  // the architecture (variant) and the boxes. Ground-truth boxes do not depend on
  // the protocol, so protocols 1 and 2 share one pass; detected boxes come from one
  // RootNet file per pass.
  // Hashed, so planning stays linear in the number of jobs (100,000 jobs plan in
  // well under a second; a linear search over the passes made this quadratic).
  std::unordered_map<std::string, size_t> index_of;
  std::vector<Pass> passes;
  for (size_t i = 0; i < jobs.size(); ++i) {
    const Job& job = jobs[i];
    const std::string bbox_root = job.bbox == "gt" ? std::string() : job.bbox_root;
    std::string key = job.checkpoint;
    for (const std::string* part : {&job.variant, &job.bbox, &bbox_root}) {
      key.push_back('\0');
      key += *part;
    }
    const auto [it, inserted] = index_of.emplace(std::move(key), passes.size());
    const size_t index = it->second;
    if (inserted) {
      Pass pass;
      pass.checkpoint = job.checkpoint;
      pass.variant = job.variant;
      pass.bbox = job.bbox;
      pass.bbox_root = bbox_root;
      passes.push_back(pass);
    }
    Pass& pass = passes[index];
    pass.jobs.push_back(i);
    pass.flip = pass.flip || job.flip;
    if (std::find(pass.protocols.begin(), pass.protocols.end(), job.protocol) ==
        pass.protocols.end()) {
      pass.protocols.push_back(job.protocol);
      std::sort(pass.protocols.begin(), pass.protocols.end());
      std::set<int> subjects(pass.subjects.begin(), pass.subjects.end());
      for (int s : data::protocol_subjects(job.protocol)) subjects.insert(s);
      pass.subjects.assign(subjects.begin(), subjects.end());
    }
  }
  return passes;
}

std::string job_settings_key(const Job& job, const std::string& checkpoint_sha256,
                             const DatasetConfig& dataset, const model::Architecture& architecture,
                             const std::string& precision) {
  nlohmann::json k;
  k["schema"] = kSettingsSchemaVersion;
  k["checkpoint_sha256"] = checkpoint_sha256;
  k["variant"] = job.variant;
  k["architecture"] = architecture.describe();
  k["protocol"] = job.protocol;
  k["flip"] = job.flip;
  k["bbox"] = job.bbox;
  if (job.bbox == "detected") {
    // The RootNet file is identified by its content; the path alone could be reused.
    k["bbox_root"] =
        file_exists(job.bbox_root) ? sha256_file(job.bbox_root) : canonical_path(job.bbox_root);
  }
  k["sample_every"] = dataset.sample_every;
  k["dataset_root"] = canonical_path(dataset.root);
  k["skip_bad_samples"] = dataset.skip_bad_samples;
  k["precision"] = precision;
  return sha256_hex(k.dump());  // nlohmann::json keeps keys sorted: stable text
}

std::string job_settings_key(const Job& job, const std::string& checkpoint_sha256,
                             const DatasetConfig& dataset) {
  return job_settings_key(job, checkpoint_sha256, dataset, model::Architecture{}, "fp32");
}

namespace {

std::string result_path(const std::string& output_dir, const char* folder,
                        const std::string& stem) {
  return (std::filesystem::path(output_dir) / folder / (stem + ".json")).string();
}

// The result at (json, predictions) is this job's, complete, with these settings.
bool result_is_current(const std::string& json_path, const std::string& predictions_path,
                       const Job& job, const std::string& settings_key) {
  if (!file_exists(json_path)) return false;
  try {
    const auto j = nlohmann::json::parse(read_file(json_path));
    // A complete result names the same job, carries metrics and the same settings;
    // its predictions file must exist too (both are written before a job counts as done).
    return j.at("settings_key").get<std::string>() == settings_key &&
           j.at("job").at("variant").get<std::string>() == job.variant &&
           j.at("job").at("epoch").get<int>() == job.epoch &&
           j.at("job").at("protocol").get<int>() == job.protocol &&
           j.at("job").at("flip").get<bool>() == job.flip &&
           j.at("job").value("bbox", std::string("gt")) == job.bbox &&
           j.at("metrics").at("num_samples").get<int64_t>() > 0 &&
           j.at("metrics").contains(j.at("metrics").at("headline").get<std::string>()) &&
           file_exists(predictions_path);
  } catch (const std::exception&) {
    return false;  // missing fields or corrupt JSON: recompute
  }
}

}  // namespace

std::string job_result_path(const std::string& output_dir, const Job& job) {
  return result_path(output_dir, "jobs", job.file_stem());
}

std::string job_predictions_path(const std::string& output_dir, const Job& job) {
  return result_path(output_dir, "predictions", job.file_stem());
}

bool job_result_is_current(const std::string& output_dir, const Job& job,
                           const std::string& settings_key) {
  return result_is_current(job_result_path(output_dir, job), job_predictions_path(output_dir, job),
                           job, settings_key) ||
         result_is_current(result_path(output_dir, "jobs", job.stem()),
                           result_path(output_dir, "predictions", job.stem()), job, settings_key);
}

void remove_legacy_result(const std::string& output_dir, const Job& job) {
  const std::string json_path = result_path(output_dir, "jobs", job.stem());
  if (!file_exists(json_path)) return;
  try {
    const auto j = nlohmann::json::parse(read_file(json_path));
    if (j.at("job").value("bbox", std::string("gt")) != job.bbox) return;  // the other boxes'
  } catch (const std::exception&) {
    return;  // not ours to judge: leave it
  }
  std::filesystem::remove(result_path(output_dir, "predictions", job.stem()));
  std::filesystem::remove(json_path);
}

}  // namespace cnp::jobs
