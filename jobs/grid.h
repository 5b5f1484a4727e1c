#pragma once
// Jobs (one (variant, epoch, protocol, flip)), their grouping into forward passes,
// and the resume ledger.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "jobs/sweep.h"
#include "model/architecture.h"

namespace cnp::jobs {

struct Job {
  std::string variant;
  int epoch = 0;
  int protocol = 2;
  bool flip = false;
  std::string bbox = "gt";
  std::string checkpoint;  // resolved path
  std::string bbox_root;   // resolved RootNet file (detected boxes), else ""

  std::string stem() const;  // "<variant>_e<epoch>_p<protocol>_<flip|noflip>": the job's label
  // Name of its result files: the stem and the box source ("M_e70_p2_flip_gt"), so
  // that gt and detected results share a folder.
  std::string file_stem() const;
};

std::vector<Job> expand_jobs(const SweepConfig& config);  // throws on an empty grid

// "{variant}", "{epoch}", "{protocol}" substituted; unknown placeholders are errors.
std::string resolve_template(const std::string& templ, const std::string& variant, int epoch,
                             int protocol);

// One forward pass: one checkpoint over one sample set with one box source. All
// jobs sharing it are answered from its outputs (flip=false from the plain half;
// protocol 1 = the S11 subset of a protocol-2 pass with the same boxes).
struct Pass {
  std::string checkpoint;
  std::string variant;
  std::string bbox;            // gt | detected
  std::string bbox_root;       // detected: the RootNet file
  std::vector<int> protocols;  // protocols answered; samples = union of their subjects
  std::vector<int> subjects;
  bool flip = false;         // whether the flipped half is needed
  std::vector<size_t> jobs;  // indices into the job list
};

std::vector<Pass> plan_passes(const std::vector<Job>& jobs);

// Identity of a job's result: checkpoint hash + settings. A finished job whose
// result file carries the same key is skipped on a rerun.
// Covers: schema version, checkpoint hash, variant + architecture, protocol, flip,
// box source + RootNet file content, sample_every, dataset root, skip setting,
// precision. Prefer the full overload; the short one hashes a default architecture
// and fp32.
std::string job_settings_key(const Job& job, const std::string& checkpoint_sha256,
                             const DatasetConfig& dataset, const model::Architecture& architecture,
                             const std::string& precision);
std::string job_settings_key(const Job& job, const std::string& checkpoint_sha256,
                             const DatasetConfig& dataset);

// Reads <output>/jobs/<file_stem>.json (or, from before box sources were in the
// name, <stem>.json) and returns true if it is a complete result of this job with
// the same settings key.
bool job_result_is_current(const std::string& output_dir, const Job& job,
                           const std::string& settings_key);

// <output>/jobs/<file_stem>.json and <output>/predictions/<file_stem>.json.
std::string job_result_path(const std::string& output_dir, const Job& job);
std::string job_predictions_path(const std::string& output_dir, const Job& job);

// Removes this job's files under the old name (<stem>.json), if they hold this box
// source: called once its files under the new name are written.
void remove_legacy_result(const std::string& output_dir, const Job& job);

}  // namespace cnp::jobs
