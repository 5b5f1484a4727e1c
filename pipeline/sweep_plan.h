#pragma once
// Sweep planning and validation, without MPI (unit-testable): the jobs of a sweep
// file, the forward passes that answer them, the sample sets those passes run over,
// and rank 0's check of every input (checkpoints, boxes, images, resume ledger)
// before any compute. The runner (sweep_runner.cpp) calls these on rank 0.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "data/h36m.h"
#include "jobs/grid.h"
#include "jobs/sweep.h"
#include "model/architecture.h"

namespace cnp::pipeline {

struct CheckpointInfo {
  std::string path;
  std::string sha256;
  std::string format;
  model::InferredArchitecture inferred;
  std::vector<std::string> matches;  // registry variants with this architecture
  bool readable = false;
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
  model::VariantRegistry registry;
  std::vector<jobs::Job> jobs;
  std::vector<jobs::Pass> passes;
  std::vector<int> pass_set;  // pass -> sample set index
  std::vector<SampleSet> sets;
  std::map<std::string, CheckpointInfo> checkpoints;  // filled by validate_plan
  std::vector<std::string> settings_keys;             // per job, by validate_plan
  std::vector<char> job_current;                      // per job, by validate_plan
};

// Jobs, passes and sample sets of plan.config (which must be set). Throws cnp::Error.
void plan_jobs(Plan& plan);

// Every input checked, every problem listed (not just the first). Loads the sample
// sets, reads and hashes each checkpoint, fills the resume ledger.
std::vector<std::string> validate_plan(Plan& plan, bool no_resume);

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
