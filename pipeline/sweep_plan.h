#pragma once
// Sweep planning and validation, without MPI (unit-testable): the jobs of a sweep
// file, the forward passes that answer them, the sample sets those passes run over,
// and rank 0's check of every input (checkpoints, boxes, images, resume ledger)
// before any compute. The runner (sweep_runner.cpp) calls these on rank 0.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "data/h36m.h"
#include "jobs/grid.h"
#include "jobs/sweep.h"
#include "model/architecture.h"
#include "model/checkpoint.h"

namespace cnp::pipeline {

struct CheckpointInfo {
  std::string path;
  std::string sha256;
  std::string format;
  model::InferredArchitecture inferred;
  std::vector<std::string> matches;  // registry variants with this architecture
  bool readable = false;
  std::optional<int64_t> epoch_field;  // the checkpoint's own 'epoch' entry, if any
  // Rank 0 keeps what validation read, within a memory budget, so that its pass does
  // not read the file again; the pass releases it.
  std::shared_ptr<const model::Checkpoint> kept;
};

// A sample set is what a pass runs over: one box source (and RootNet file) and the
// protocol whose subjects cover every protocol the pass answers.
struct SampleSetKey {
  std::string bbox;
  std::string bbox_root;
  int protocol = 2;
  bool operator<(const SampleSetKey& other) const;
};

struct SampleSet {
  SampleSetKey key;
  data::TestSetOptions options;
  data::TestSet set;
  bool loaded = false;
};

struct Plan {
  jobs::SweepConfig config;
  // Joints per sample: the data set's (every variant must predict as many).
  int joints = static_cast<int>(data::joint_names().size());
  model::VariantRegistry registry;
  std::vector<jobs::Job> jobs;
  std::vector<jobs::Pass> passes;
  std::vector<int> pass_set;  // pass -> sample set index
  std::vector<SampleSet> sets;
  std::map<std::string, CheckpointInfo> checkpoints;  // filled by validate_plan
  std::vector<std::string> settings_keys;             // per job, by validate_plan
  std::vector<char> job_current;                      // per job, by validate_plan
  std::vector<std::string> warnings;                  // by validate_plan

  // Floats per sample in one half (plain or flipped) of a pass's output.
  int coords_per_sample() const { return joints * 3; }
};

// Jobs, passes and sample sets of plan.config (which must be set). Throws cnp::Error.
void plan_jobs(Plan& plan);

struct ValidationOptions {
  bool no_resume = false;
  std::string device;  // resolved runtime.device of rank 0 ("" when it did not resolve)
  int64_t keep_checkpoint_bytes = 0;  // budget for CheckpointInfo::kept
};

// Every input checked, every problem listed (not just the first), so that a real
// run fails before its first pass and --dry-run reports the same: the output folder,
// the precision on the device, each checkpoint (read, architecture, every tensor the
// model needs), boxes and images, the resume ledger. Loads the sample sets.
std::vector<std::string> validate_plan(Plan& plan, const ValidationOptions& options);

// "" when `output` is (or can be made) a folder we can write in; else a one-line
// problem naming the `output` key. Creates nothing (a probe file is removed).
std::string check_output_folder(const std::string& output);

// Sample indices of a set that belong to a protocol's subjects.
std::vector<int64_t> protocol_indices(const data::TestSet& set, int protocol);

// Which passes still have unfinished jobs, and which of those need the flipped half.
struct PassSelection {
  std::vector<char> compute;
  std::vector<char> flip;
};
PassSelection select_passes(const Plan& plan);

// The --dry-run report (checkpoints, samples, passes, jobs).
std::string format_dry_run(const Plan& plan, int ranks, const std::vector<char>& pass_compute);

}  // namespace cnp::pipeline
