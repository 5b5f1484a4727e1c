#include "pipeline/sweep_runner.h"

#include <mpi.h>
#include <spdlog/sinks/sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>

#include "common/error.h"
#include "common/files.h"
#include "common/logging.h"
#include "data/cache.h"
#include "data/h36m.h"
#include "data/preprocess.h"
#include "jobs/grid.h"
#include "jobs/sweep.h"
#include "model/architecture.h"
#include "model/checkpoint.h"
#include "model/pose_model.h"
#include "model/remap.h"
#include "pipeline/batch_producer.h"
#include "pipeline/gather.h"
#include "pipeline/metrics.h"
#include "pipeline/report.h"
#include "pipeline/runtime.h"

namespace cnp::pipeline {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int kCoords = data::kNumJoints * 3;  // floats per sample and half (plain / flipped)
constexpr double kProgressSeconds = 5.0;
// Decoded crops are kept per rank and sample set across passes when they fit this
// budget (each sample is 192 KiB), so a sweep decodes every image once. Override
// with $CNP_CROP_MEMORY_MB (0 disables the store and re-reads images/cache per pass).
constexpr int64_t kDefaultCropMemoryMb = 2048;

volatile std::sig_atomic_t g_stop_signal = 0;
extern "C" void on_stop_signal(int signal_number) {
  g_stop_signal = signal_number;
}

struct Mpi {
  MPI_Comm comm = MPI_COMM_WORLD;
  int rank = 0;
  int size = 1;
  int local_rank = 0;
  int local_size = 1;
};

Mpi init_mpi() {
  Mpi mpi;
  MPI_Comm_rank(mpi.comm, &mpi.rank);
  MPI_Comm_size(mpi.comm, &mpi.size);
  MPI_Comm node;
  MPI_Comm_split_type(mpi.comm, MPI_COMM_TYPE_SHARED, mpi.rank, MPI_INFO_NULL, &node);
  MPI_Comm_rank(node, &mpi.local_rank);
  MPI_Comm_size(node, &mpi.local_size);
  MPI_Comm_free(&node);
  if (const char* slurm_local = std::getenv("SLURM_LOCALID")) {
    if (*slurm_local) mpi.local_rank = std::atoi(slurm_local);
  }
  return mpi;
}

// One string per rank to rank 0 (rank order).
std::vector<std::string> gather_strings(const Mpi& mpi, const std::string& text) {
  int length = static_cast<int>(text.size());
  std::vector<int> lengths(mpi.size, 0);
  MPI_Gather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, 0, mpi.comm);
  std::vector<int> displs(mpi.size, 0);
  int total = 0;
  for (int r = 0; r < mpi.size; ++r) {
    displs[r] = total;
    total += lengths[r];
  }
  std::string all(static_cast<size_t>(mpi.rank == 0 ? total : 0), '\0');
  char dummy = 0;
  MPI_Gatherv(length ? const_cast<char*>(text.data()) : &dummy, length, MPI_CHAR,
              mpi.rank == 0 ? all.data() : nullptr, lengths.data(), displs.data(), MPI_CHAR, 0,
              mpi.comm);
  std::vector<std::string> out;
  if (mpi.rank == 0) {
    for (int r = 0; r < mpi.size; ++r) out.push_back(all.substr(displs[r], lengths[r]));
  }
  return out;
}

// Every rank learns whether any rank failed; rank 0 collects the distinct messages.
bool all_ok(const Mpi& mpi, const std::string& local_error, std::vector<std::string>* errors) {
  int failed = local_error.empty() ? 0 : 1;
  int any_failed = 0;
  MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, mpi.comm);
  if (!any_failed) return true;
  const auto messages = gather_strings(mpi, local_error);
  if (errors) {
    for (int r = 0; r < static_cast<int>(messages.size()); ++r) {
      if (messages[r].empty()) continue;
      if (std::find(errors->begin(), errors->end(), messages[r]) == errors->end()) {
        errors->push_back(r == 0 ? messages[r] : messages[r] + " (rank " + std::to_string(r) + ")");
      }
    }
  }
  return false;
}

// stderr on rank 0: one line per problem, the first line the summary (and, with a
// single problem, the problem itself, so scripts can show one line).
void print_problems(const std::vector<std::string>& problems) {
  if (problems.empty()) return;
  if (problems.size() == 1) {
    std::cerr << "cnp_sweep: error: " << problems[0] << std::endl;
    return;
  }
  std::cerr << "cnp_sweep: error: " << problems.size()
            << " problems, nothing was run; first: " << problems[0] << std::endl;
  for (const auto& problem : problems) std::cerr << "cnp_sweep: error: " << problem << std::endl;
}

std::string join_ints(const std::vector<int>& values, const char* separator = ",") {
  std::string out;
  for (size_t i = 0; i < values.size(); ++i)
    out += (i ? separator : "") + std::to_string(values[i]);
  return out;
}

int64_t env_int(const char* name, int64_t fallback) {
  const char* value = std::getenv(name);
  if (!value || !*value) return fallback;
  char* end = nullptr;
  const long long parsed = std::strtoll(value, &end, 10);
  return end && *end == '\0' && parsed >= 0 ? parsed : fallback;
}

// ---------------------------------------------------------------------------
// Plan: jobs, passes, checkpoints, sample sets.

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
  bool operator<(const SampleSetKey& other) const {
    return std::tie(bbox, bbox_root, protocol) <
           std::tie(other.bbox, other.bbox_root, other.protocol);
  }
};

struct CropStore {
  bool enabled = false;
  bool filled = false;  // every crop of this rank's shard is present
  std::vector<uint8_t> crops;
  std::vector<uint8_t> bad;
};

struct SampleSet {
  SampleSetKey key;
  data::TestSetOptions options;
  data::TestSet set;
  bool loaded = false;
  std::string cache_path;
  std::unique_ptr<data::CacheReader> cache;
  CropStore store;
};

struct Plan {
  jobs::SweepConfig config;
  model::VariantRegistry registry;
  std::vector<jobs::Job> jobs;
  std::vector<jobs::Pass> passes;
  std::vector<int> pass_set;  // pass -> sample set index
  std::vector<SampleSet> sets;
  std::map<std::string, CheckpointInfo> checkpoints;  // rank 0 only
  std::vector<std::string> settings_keys;             // per job, rank 0 only
  std::vector<char> job_current;                      // per job, rank 0 only
};

SampleSetKey sample_set_key(const jobs::Pass& pass) {
  SampleSetKey key;
  key.bbox = pass.bbox;
  key.bbox_root = pass.bbox == "detected" ? pass.bbox_root : "";
  key.protocol = *std::max_element(pass.protocols.begin(), pass.protocols.end());
  return key;
}

void plan_jobs(Plan& plan) {
  plan.registry = plan.config.registry();
  plan.jobs = jobs::expand_jobs(plan.config);
  plan.passes = jobs::plan_passes(plan.jobs);
  std::map<SampleSetKey, int> index;
  for (const auto& pass : plan.passes) {
    const SampleSetKey key = sample_set_key(pass);
    auto it = index.find(key);
    if (it == index.end()) {
      it = index.emplace(key, static_cast<int>(plan.sets.size())).first;
      SampleSet set;
      set.key = key;
      set.options.root = plan.config.dataset.root;
      set.options.protocol = key.protocol;
      set.options.box_source = data::parse_box_source(key.bbox);
      set.options.bbox_root_file = key.bbox_root;
      set.options.sample_every = plan.config.dataset.sample_every;
      set.options.skip_bad_samples = plan.config.dataset.skip_bad_samples;
      set.options.check_images = true;
      plan.sets.push_back(std::move(set));
    }
    plan.pass_set.push_back(it->second);
  }
}

std::string describe_short(const model::Architecture& arch) {
  return "head " + std::to_string(arch.head_channels) + ", depth_dim " +
         std::to_string(arch.depth_dim);
}

// Equal up to the upsample pattern when the weights cannot tell it.
bool architecture_matches(const model::InferredArchitecture& inferred,
                          const model::Architecture& wanted) {
  model::Architecture candidate = inferred.arch;
  if (!inferred.upsample_known) candidate.head_upsample = wanted.head_upsample;
  return candidate == wanted;
}

// Rank 0: every input checked, every problem listed (not just the first).
std::vector<std::string> validate(Plan& plan, bool no_resume) {
  std::vector<std::string> problems;
  const auto& config = plan.config;

  // Checkpoints: exist, read, architecture equals the variant the sweep asks for.
  std::map<std::string, std::set<std::string>> asked;  // checkpoint -> variants
  for (const auto& job : plan.jobs) asked[job.checkpoint].insert(job.variant);
  for (const auto& [path, variants] : asked) {
    CheckpointInfo info;
    info.path = path;
    if (!file_exists(path)) {
      problems.push_back(path + ": checkpoint not found (model.checkpoint for " +
                         *variants.begin() + ")");
      plan.checkpoints[path] = info;
      continue;
    }
    try {
      model::Checkpoint checkpoint = model::read_checkpoint(path);
      info.format = checkpoint.format;
      info.inferred =
          model::infer_architecture(model::remap_keys(std::move(checkpoint.tensors)), path);
      for (const auto* variant :
           plan.registry.matching(info.inferred.arch, info.inferred.upsample_known)) {
        info.matches.push_back(variant->name);
      }
      info.sha256 = sha256_file(path);
      info.readable = true;
    } catch (const std::exception& e) {
      problems.push_back(e.what());
      plan.checkpoints[path] = info;
      continue;
    }
    for (const auto& variant_name : variants) {
      const model::Variant* variant = plan.registry.find(variant_name);
      if (!variant) {
        problems.push_back("sweep.variants: unknown variant '" + variant_name + "'");
        continue;
      }
      if (architecture_matches(info.inferred, variant->arch)) continue;
      std::string looks_like = "an unknown architecture";
      if (!info.matches.empty()) {
        looks_like.clear();
        for (size_t i = 0; i < info.matches.size(); ++i)
          looks_like += (i ? "/" : "") + info.matches[i];
      }
      std::string detail = describe_short(info.inferred.arch);
      if (info.matches.empty()) detail += "; " + info.inferred.arch.describe();
      problems.push_back(path + " looks like " + looks_like + " (" + detail +
                         ") but the sweep asks for " + variant_name);
    }
    plan.checkpoints[path] = info;
  }

  // Detected boxes need their RootNet files.
  std::set<std::string> bbox_roots;
  for (const auto& job : plan.jobs) {
    if (job.bbox == "detected") bbox_roots.insert(job.bbox_root);
  }
  for (const auto& file : bbox_roots) {
    if (!file_exists(file))
      problems.push_back(file + ": RootNet box file not found (dataset.bbox_root)");
  }

  // Every sample set loads (annotations, boxes, images present).
  for (auto& set : plan.sets) {
    if (set.key.bbox == "detected" && !file_exists(set.key.bbox_root)) continue;  // reported above
    try {
      set.set = data::load_test_set(set.options);
      set.loaded = true;
      if (set.set.samples.empty()) {
        problems.push_back(config.dataset.root + ": no test samples for protocol " +
                           std::to_string(set.key.protocol) + " with " + set.key.bbox +
                           " boxes (dataset.root, dataset.sample_every)");
      }
    } catch (const std::exception& e) {
      problems.push_back(e.what());
    }
  }

  // Resume ledger.
  plan.settings_keys.assign(plan.jobs.size(), "");
  plan.job_current.assign(plan.jobs.size(), 0);
  for (size_t j = 0; j < plan.jobs.size(); ++j) {
    const auto& info = plan.checkpoints[plan.jobs[j].checkpoint];
    if (!info.readable) continue;
    try {
      const model::Variant* variant = plan.registry.find(plan.jobs[j].variant);
      if (!variant) continue;  // reported above
      plan.settings_keys[j] = jobs::job_settings_key(plan.jobs[j], info.sha256, config.dataset,
                                                     variant->arch, config.runtime.precision);
      plan.job_current[j] = !no_resume && jobs::job_result_is_current(config.output, plan.jobs[j],
                                                                      plan.settings_keys[j]);
    } catch (const std::exception& e) {
      problems.push_back(e.what());
    }
  }
  return problems;
}

std::vector<int> subjects_of(int protocol) {
  return data::protocol_subjects(protocol);
}

// Sample indices of a set that belong to a protocol's subjects.
std::vector<int64_t> protocol_indices(const data::TestSet& set, int protocol) {
  const auto subjects = subjects_of(protocol);
  std::vector<int64_t> out;
  for (int64_t i = 0; i < static_cast<int64_t>(set.samples.size()); ++i) {
    if (std::find(subjects.begin(), subjects.end(), set.samples[i].subject) != subjects.end()) {
      out.push_back(i);
    }
  }
  return out;
}

void print_dry_run(const Plan& plan, int ranks, const std::vector<char>& pass_compute) {
  std::ostringstream out;
  const auto& config = plan.config;
  out << "sweep " << config.name << ": " << plan.jobs.size() << " jobs, " << plan.passes.size()
      << " forward passes, " << ranks << " rank(s), output " << config.output << "\n";
  out << "checkpoints:\n";
  for (const auto& [path, info] : plan.checkpoints) {
    std::string variants;
    for (const auto& job : plan.jobs) {
      if (job.checkpoint == path && variants.find(job.variant) == std::string::npos) {
        variants += (variants.empty() ? "" : ",") + job.variant;
      }
    }
    std::string matches;
    for (const auto& name : info.matches) matches += (matches.empty() ? "" : ",") + name;
    out << "  " << path << "\n    format " << info.format << ", sha256 "
        << info.sha256.substr(0, 16) << "\n    inferred: " << info.inferred.arch.describe()
        << (info.inferred.upsample_known ? "" : " (upsampling from the released convention)")
        << "\n    matches variant(s): " << (matches.empty() ? "none" : matches)
        << "; the sweep asks for " << variants << "\n";
  }
  out << "samples:\n";
  for (const auto& set : plan.sets) {
    for (int protocol : {1, 2}) {
      if (protocol > set.key.protocol) continue;
      bool used = false;
      for (size_t p = 0; p < plan.passes.size(); ++p) {
        const auto& pass = plan.passes[p];
        if (&plan.sets[plan.pass_set[p]] == &set &&
            std::find(pass.protocols.begin(), pass.protocols.end(), protocol) !=
                pass.protocols.end()) {
          used = true;
        }
      }
      if (!used) continue;
      out << "  protocol " << protocol << ", " << set.key.bbox << " boxes"
          << (set.key.bbox_root.empty() ? "" : " (" + set.key.bbox_root + ")") << ": "
          << protocol_indices(set.set, protocol).size() << " samples (subjects "
          << join_ints(subjects_of(protocol)) << ", every " << config.dataset.sample_every
          << "th frame)";
      if (!set.set.skipped.empty()) out << ", " << set.set.skipped.size() << " skipped as bad";
      out << "\n";
    }
  }
  out << "forward passes:\n";
  int to_compute = 0;
  for (size_t p = 0; p < plan.passes.size(); ++p) {
    const auto& pass = plan.passes[p];
    const auto& set = plan.sets[plan.pass_set[p]];
    out << "  [" << p + 1 << "] " << pass.variant << " " << pass.checkpoint << ", " << pass.bbox
        << " boxes, subjects " << join_ints(pass.subjects) << ", " << set.set.samples.size()
        << " samples, " << (pass.flip ? "plain + flipped" : "plain only") << ": "
        << (pass_compute[p] ? "compute" : "skip (all jobs finished)") << "\n      jobs:";
    for (size_t j : pass.jobs) out << " " << plan.jobs[j].stem();
    out << "\n";
    to_compute += pass_compute[p] ? 1 : 0;
  }
  out << "jobs:\n";
  int finished = 0;
  for (size_t j = 0; j < plan.jobs.size(); ++j) {
    out << "  " << plan.jobs[j].stem() << ": "
        << (plan.job_current[j] ? "finished (a rerun skips it)" : "to run") << "\n";
    finished += plan.job_current[j] ? 1 : 0;
  }
  out << finished << "/" << plan.jobs.size() << " jobs already finished; " << to_compute << "/"
      << plan.passes.size() << " forward passes to compute\n";
  std::cout << out.str() << std::flush;
}

// ---------------------------------------------------------------------------
// Execution.

struct RunState {
  Mpi mpi;
  Plan plan;
  std::string device;
  int threads = 1;
  int batch_size = 8;
  int64_t crop_budget_bytes = 0;
  std::unique_ptr<FloatGather> gather;
  // Progress (rank 0).
  Clock::time_point start;
  Clock::time_point pass_start;
  // ETA in units of work (GMACs): passes differ ~5x in cost per sample (XS vs L, flip).
  double work_to_compute = 0;
  double work_computed = 0;
  double pass_cost_per_sample = 0;
  int jobs_finished = 0;
  int jobs_computed = 0;
  Clock::time_point last_progress;
};

// GMACs one sample of pass p costs: the variant's MACs, twice with the flip test.
double pass_cost_per_sample(const Plan& plan, size_t p, bool flip) {
  const auto& arch = plan.registry.get(plan.passes[p].variant).arch;
  return model::mac_count(arch) * 1e-9 * (flip ? 2 : 1);
}

std::string sample_name(const data::Sample& sample) {
  return "sample " + std::to_string(sample.image_id) + " (" + sample.image_file + ")";
}

void log_progress(RunState& state, int64_t pass_done, int64_t pass_total, size_t pass_index,
                  bool force) {
  const auto now = Clock::now();
  const double since = std::chrono::duration<double>(now - state.last_progress).count();
  if (!force && since < kProgressSeconds) return;
  state.last_progress = now;
  const double elapsed = std::chrono::duration<double>(now - state.start).count();
  const double pass_elapsed = std::chrono::duration<double>(now - state.pass_start).count();
  const double done = state.work_computed + pass_done * state.pass_cost_per_sample;
  const double work_rate = elapsed > 0 ? done / elapsed : 0.0;
  const double rate = pass_elapsed > 0 ? pass_done / pass_elapsed : 0.0;  // this pass
  const double remaining = std::max(0.0, state.work_to_compute - done);
  const std::string eta = work_rate > 0
                              ? std::to_string(static_cast<int64_t>(remaining / work_rate)) + " s"
                              : std::string("unknown");
  spdlog::info("progress: pass {}/{} samples {}/{}, jobs {}/{} done, {:.1f} samples/s, ETA {}",
               pass_index + 1, state.plan.passes.size(), pass_done, pass_total, state.jobs_finished,
               state.plan.jobs.size(), rate, eta);
}

enum class PassOutcome { Done, Preempted, Failed };

// Runs one pass on every rank; rank 0 ends up with plain/flipped coords and the bad mask.
PassOutcome run_pass(RunState& state, size_t pass_index, bool need_flip, std::vector<float>& plain,
                     std::vector<float>& flipped, std::vector<uint8_t>& bad,
                     std::vector<std::string>& errors) {
  auto& plan = state.plan;
  const auto& mpi = state.mpi;
  const auto& pass = plan.passes[pass_index];
  SampleSet& set = plan.sets[plan.pass_set[pass_index]];
  const auto& samples = set.set.samples;
  const int64_t total = static_cast<int64_t>(samples.size());
  const ShardRange shard = shard_range(total, mpi.rank, mpi.size);

  // Every rank loads the same checkpoint into the variant's architecture.
  std::unique_ptr<model::PoseModel> net;
  std::string local_error;
  try {
    const model::Checkpoint checkpoint = model::read_checkpoint(pass.checkpoint);
    model::ModelOptions options;
    options.device = state.device;
    options.precision = plan.config.runtime.precision;
    options.threads = state.threads;
    options.flip_pairs = data::flip_pairs();
    options.variant = pass.variant;
    net = model::PoseModel::load(plan.registry.get(pass.variant).arch, checkpoint, options);
  } catch (const std::exception& e) {
    local_error = e.what();
  }
  if (!all_ok(mpi, local_error, &errors)) return PassOutcome::Failed;

  CropStore& store = set.store;
  if (!store.enabled && state.crop_budget_bytes > 0 &&
      shard.size() * static_cast<int64_t>(data::kCropBytes) <= state.crop_budget_bytes) {
    store.enabled = true;
    store.crops.assign(static_cast<size_t>(shard.size()) * data::kCropBytes, 0);
    store.bad.assign(static_cast<size_t>(shard.size()), 0);
  }
  const bool from_store = store.enabled && store.filled;
  auto source = [&](int64_t index, uint8_t* crop) {
    uint8_t* stored = store.enabled ? store.crops.data() + index * data::kCropBytes : nullptr;
    if (from_store) {
      if (store.bad[index]) throw Error("image could not be decoded earlier in this sweep");
      std::memcpy(crop, stored, data::kCropBytes);
      return;
    }
    const data::Sample& sample = samples[shard.begin + index];
    try {
      if (set.cache) {
        set.cache->read_crops(shard.begin + index, 1, crop);
      } else {
        data::crop_image_file(data::image_path(set.options.root, sample), sample.bbox, crop);
      }
    } catch (...) {
      if (stored) store.bad[index] = 1;
      throw;
    }
    if (stored) std::memcpy(stored, crop, data::kCropBytes);
  };
  auto describe = [&](int64_t index) { return sample_name(samples[shard.begin + index]); };

  std::vector<float> local_plain(static_cast<size_t>(shard.size()) * kCoords, 0.0f);
  std::vector<float> local_flipped(need_flip ? local_plain.size() : 0, 0.0f);
  std::vector<uint8_t> local_bad(static_cast<size_t>(shard.size()), 0);

  const int64_t rounds = batch_rounds(total, mpi.size, state.batch_size);
  BatchProducer producer(shard.size(), state.batch_size, plan.config.dataset.skip_bad_samples,
                         source, describe);
  bool preempted = false;
  bool failed = false;
  int64_t pass_done = 0;
  for (int64_t round = 0; round < rounds; ++round) {
    PreparedBatch batch;
    int64_t produced = 0;
    if (local_error.empty() && producer.next(batch)) {
      if (!batch.error.empty()) {
        local_error = batch.error;
      } else {
        try {
          net->predict(batch.input.data(), batch.count, local_plain.data() + batch.first * kCoords,
                       need_flip ? local_flipped.data() + batch.first * kCoords : nullptr);
          std::copy(batch.bad.begin(), batch.bad.end(), local_bad.begin() + batch.first);
          produced = batch.count;
        } catch (const std::exception& e) {
          local_error = std::string(pass.checkpoint) + ": inference failed: " + e.what();
        }
      }
    }
    // One cheap collective per batch: stop requests, failures, progress.
    int64_t local[3] = {g_stop_signal ? 1 : 0, local_error.empty() ? 0 : 1, produced};
    int64_t summed[3] = {0, 0, 0};
    MPI_Allreduce(local, summed, 3, MPI_INT64_T, MPI_SUM, mpi.comm);
    pass_done += summed[2];
    if (mpi.rank == 0 && round + 1 < rounds)
      log_progress(state, pass_done, total, pass_index, false);
    if (summed[1] > 0) {
      failed = true;
      break;
    }
    if (summed[0] > 0 && round + 1 < rounds) {
      preempted = true;
      break;
    }
  }
  if (failed) {
    all_ok(mpi, local_error.empty() ? std::string() : local_error, &errors);
    return PassOutcome::Failed;
  }
  if (preempted) return PassOutcome::Preempted;
  if (store.enabled && !from_store) store.filled = producer.finished();

  // Gather in sample order: contiguous shards in rank order are exactly that.
  std::vector<int64_t> coord_counts(mpi.size), sample_counts(mpi.size);
  for (int r = 0; r < mpi.size; ++r) {
    sample_counts[r] = shard_range(total, r, mpi.size).size();
    coord_counts[r] = sample_counts[r] * kCoords;
  }
  if (mpi.rank == 0) {
    plain.assign(static_cast<size_t>(total) * kCoords, 0.0f);
    flipped.assign(need_flip ? plain.size() : 0, 0.0f);
    bad.assign(static_cast<size_t>(total), 0);
  }
  state.gather->gather(local_plain.data(), coord_counts, plain.data());
  if (need_flip) state.gather->gather(local_flipped.data(), coord_counts, flipped.data());
  gather_bytes(mpi.comm, local_bad.data(), sample_counts, bad.data());
  if (mpi.rank == 0) log_progress(state, total, total, pass_index, true);
  return PassOutcome::Done;
}

// Rank 0: metrics and files of every unfinished job of a pass.
void write_pass_results(RunState& state, size_t pass_index, const std::vector<float>& plain,
                        const std::vector<float>& flipped, const std::vector<uint8_t>& bad,
                        double seconds) {
  auto& plan = state.plan;
  const auto& pass = plan.passes[pass_index];
  const SampleSet& set = plan.sets[plan.pass_set[pass_index]];
  const auto& arch = plan.registry.get(pass.variant).arch;
  const int heatmap = arch.heatmap_size(data::kInputSize);
  const auto& info = plan.checkpoints.at(pass.checkpoint);
  for (size_t j : pass.jobs) {
    if (plan.job_current[j]) continue;
    const jobs::Job& job = plan.jobs[j];
    MetricsAccumulator accumulator;
    std::vector<SampleResult> results;
    std::vector<const data::Sample*> kept;
    int64_t skipped = 0;
    std::array<float, kCoords> coords{};
    for (int64_t i : protocol_indices(set.set, job.protocol)) {
      if (bad[i]) {
        ++skipped;
        continue;
      }
      const float* p = plain.data() + i * kCoords;
      if (job.flip) {
        const float* f = flipped.data() + i * kCoords;
        for (int k = 0; k < kCoords; ++k) coords[k] = (p[k] + f[k]) / 2.0f;
      } else {
        std::copy(p, p + kCoords, coords.begin());
      }
      const data::Sample& sample = set.set.samples[i];
      const Joints camera = heatmap_to_camera(coords.data(), heatmap, arch.depth_dim, sample);
      results.push_back(evaluate_sample(camera, sample));
      accumulator.add(results.back());
      kept.push_back(&sample);
    }
    // Samples dropped while loading cannot be told apart by subject (SkippedSample has
    // only the image id), so they count for jobs over the whole sample set.
    if (job.protocol == set.key.protocol) skipped += static_cast<int64_t>(set.set.skipped.size());
    if (kept.empty()) {
      throw Error("job " + job.stem() + ": no usable samples (every image was skipped as bad)");
    }
    JobResult result;
    result.job = job;
    result.checkpoint_sha256 = info.sha256;
    result.architecture = arch;
    result.settings_key = plan.settings_keys[j];
    result.metrics = accumulator.summary();
    result.skipped_samples = skipped;
    result.seconds = seconds;
    result.images_per_second = seconds > 0 ? set.set.samples.size() / seconds : 0.0;
    result.ranks = state.mpi.size;
    result.sample_every = plan.config.dataset.sample_every;
    result.dataset_root = plan.config.dataset.root;
    result.precision = plan.config.runtime.precision;
    // Predictions first: the job file marks the job finished for resume.
    write_file_atomic(jobs::job_predictions_path(plan.config.output, job),
                      predictions_to_json(results, kept, job.protocol));
    write_file_atomic(jobs::job_result_path(plan.config.output, job), job_result_to_json(result));
    plan.job_current[j] = 1;
    ++state.jobs_computed;
    ++state.jobs_finished;
    spdlog::info("job {} finished: {} {:.2f} mm over {} samples", job.stem(),
                 headline_metric(job.protocol),
                 result.metrics.overall.count(headline_metric(job.protocol))
                     ? result.metrics.overall.at(headline_metric(job.protocol))
                     : 0.0,
                 result.metrics.num_samples);
  }
}

void write_summary(const RunState& state, int passes_computed, int passes_skipped, int jobs_skipped,
                   bool preempted) {
  nlohmann::json summary;
  summary["passes_total"] = state.plan.passes.size();
  summary["passes_computed"] = passes_computed;
  summary["passes_skipped"] = passes_skipped;
  summary["jobs_total"] = state.plan.jobs.size();
  summary["jobs_computed"] = state.jobs_computed;
  summary["jobs_skipped"] = jobs_skipped;
  summary["ranks"] = state.mpi.size;
  summary["seconds"] = std::chrono::duration<double>(Clock::now() - state.start).count();
  summary["preempted"] = preempted;
  summary["device"] = state.device;
  summary["batch_size"] = state.batch_size;
  summary["threads_per_rank"] = state.threads;
  summary["gather"] = state.gather ? state.gather->name() : "mpi";
  write_file_atomic((fs::path(state.plan.config.output) / "run_summary.json").string(),
                    summary.dump(2) + "\n");
}

int fail(const Mpi& mpi, const std::vector<std::string>& errors) {
  if (mpi.rank == 0) print_problems(errors);
  return kExitFailed;
}

}  // namespace

int run_sweep(const SweepOptions& options) {
  RunState state;
  state.start = Clock::now();
  state.last_progress = state.start;
  state.mpi = init_mpi();
  const Mpi& mpi = state.mpi;
  Plan& plan = state.plan;
  std::vector<std::string> errors;

  // Only rank 0 speaks on the console; every rank keeps its own log file (below).
  if (mpi.rank != 0 && !spdlog::default_logger()->sinks().empty()) {
    spdlog::default_logger()->sinks().front()->set_level(spdlog::level::warn);
  }
  std::signal(SIGTERM, on_stop_signal);
  std::signal(SIGUSR1, on_stop_signal);

  // 1. Every rank parses the sweep; a bad file fails everywhere the same way.
  std::string local_error;
  try {
    plan.config = jobs::load_sweep(options.config_path, options.overrides);
    if (!options.output.empty()) plan.config.output = options.output;
    if (plan.config.output.empty()) plan.config.output = "results/" + plan.config.name;
  } catch (const std::exception& e) {
    local_error = e.what();
  }
  if (!all_ok(mpi, local_error, &errors)) return fail(mpi, errors);

  // 2. Rank 0 validates every input and lists every problem; the verdict is broadcast.
  std::vector<std::string> problems;
  if (mpi.rank == 0) {
    try {
      plan_jobs(plan);
      problems = validate(plan, options.no_resume);
      state.device = resolve_device(plan.config.runtime.device, model::PoseModel::cuda_available(),
                                    model::PoseModel::cuda_device_count(), mpi.local_rank);
    } catch (const std::exception& e) {
      problems.push_back(e.what());
    }
  }
  int problem_count = static_cast<int>(problems.size());
  MPI_Bcast(&problem_count, 1, MPI_INT, 0, mpi.comm);
  if (problem_count > 0) return fail(mpi, problems);

  if (mpi.rank != 0) {
    try {
      plan_jobs(plan);
    } catch (const std::exception& e) {
      local_error = e.what();
    }
  }
  if (!all_ok(mpi, local_error, &errors)) return fail(mpi, errors);

  // 3. Which passes to compute (rank 0 owns the resume ledger) and which halves.
  std::vector<char> pass_compute(plan.passes.size(), 0), pass_flip(plan.passes.size(), 0);
  if (mpi.rank == 0) {
    for (size_t p = 0; p < plan.passes.size(); ++p) {
      for (size_t j : plan.passes[p].jobs) {
        if (plan.job_current[j]) continue;
        pass_compute[p] = 1;
        if (plan.jobs[j].flip) pass_flip[p] = 1;
      }
    }
  }
  MPI_Bcast(pass_compute.data(), static_cast<int>(pass_compute.size()), MPI_CHAR, 0, mpi.comm);
  MPI_Bcast(pass_flip.data(), static_cast<int>(pass_flip.size()), MPI_CHAR, 0, mpi.comm);

  if (options.dry_run) {
    if (mpi.rank == 0) print_dry_run(plan, mpi.size, pass_compute);
    return kExitOk;
  }

  // 4. Runtime, logs, sample sets (and the cache) on every rank.
  try {
    const auto& runtime = plan.config.runtime;
    state.device = resolve_device(runtime.device, model::PoseModel::cuda_available(),
                                  model::PoseModel::cuda_device_count(), mpi.local_rank);
    state.threads = resolve_threads_per_rank(
        runtime.threads_per_rank, std::getenv("SLURM_CPUS_PER_TASK"),
        static_cast<int>(std::thread::hardware_concurrency()), mpi.local_size);
    state.batch_size = resolve_batch_size(runtime.batch_size, state.device);
    state.crop_budget_bytes = env_int("CNP_CROP_MEMORY_MB", kDefaultCropMemoryMb) << 20;
    const fs::path logs = fs::path(plan.config.output) / "logs";
    fs::create_directories(logs);
    add_log_file((logs / ("rank" + std::to_string(mpi.rank) + ".log")).string());
    for (size_t p = 0; p < plan.passes.size(); ++p) {
      SampleSet& set = plan.sets[plan.pass_set[p]];
      if (!pass_compute[p] || set.loaded) continue;
      set.set = data::load_test_set(set.options);
      set.loaded = true;
    }
  } catch (const std::exception& e) {
    local_error = e.what();
  }
  if (!all_ok(mpi, local_error, &errors)) return fail(mpi, errors);

  if (!plan.config.dataset.cache.empty()) {
    // Rank 0 builds (or validates) each cache once; the others wait, then open it.
    if (mpi.rank == 0) {
      try {
        for (size_t p = 0; p < plan.passes.size(); ++p) {
          SampleSet& set = plan.sets[plan.pass_set[p]];
          if (!pass_compute[p] || !set.cache_path.empty()) continue;
          spdlog::info("cache: checking {} boxes, protocol {} under {}", set.key.bbox,
                       set.key.protocol, plan.config.dataset.cache);
          set.cache_path =
              data::ensure_cache(plan.config.dataset.cache, set.options, set.set, state.threads);
        }
      } catch (const std::exception& e) {
        local_error = e.what();
      }
    }
    if (!all_ok(mpi, local_error, &errors)) return fail(mpi, errors);
    try {
      for (size_t p = 0; p < plan.passes.size(); ++p) {
        SampleSet& set = plan.sets[plan.pass_set[p]];
        if (!pass_compute[p] || set.cache) continue;
        set.cache_path = data::cache_file_path(plan.config.dataset.cache, set.options);
        set.cache = std::make_unique<data::CacheReader>(set.cache_path);
        if (set.cache->samples().size() != set.set.samples.size()) {
          throw Error(set.cache_path + ": holds " + std::to_string(set.cache->samples().size()) +
                      " samples but the dataset has " + std::to_string(set.set.samples.size()) +
                      "; delete the cache to rebuild it");
        }
      }
    } catch (const std::exception& e) {
      local_error = e.what();
    }
    if (!all_ok(mpi, local_error, &errors)) return fail(mpi, errors);
  }

  try {
#ifdef CNP_HAVE_NCCL
    if (is_cuda_device(state.device)) {
      state.gather = make_nccl_gather(mpi.comm, cuda_device_index(state.device));
    }
#endif
  } catch (const std::exception& e) {
    local_error = e.what();
  }
  if (!all_ok(mpi, local_error, &errors)) return fail(mpi, errors);
  if (!state.gather) state.gather = make_mpi_gather(mpi.comm);

  int jobs_skipped = 0, passes_skipped = 0, passes_computed = 0;
  if (mpi.rank == 0) {
    for (char current : plan.job_current) jobs_skipped += current ? 1 : 0;
    state.jobs_finished = jobs_skipped;
    for (size_t p = 0; p < plan.passes.size(); ++p) {
      if (pass_compute[p]) {
        state.work_to_compute += plan.sets[plan.pass_set[p]].set.samples.size() *
                                 pass_cost_per_sample(plan, p, pass_flip[p] != 0);
      }
    }
    spdlog::info(
        "sweep {}: {} jobs in {} forward passes ({} to compute), {} rank(s), device {}, "
        "batch {}, {} thread(s) per rank, gather {}",
        plan.config.name, plan.jobs.size(), plan.passes.size(),
        std::count(pass_compute.begin(), pass_compute.end(), 1), mpi.size, state.device,
        state.batch_size, state.threads, state.gather->name());
  }

  // 5. Passes, one after another; each pass's jobs are on disk when it ends.
  bool preempted = false;
  for (size_t p = 0; p < plan.passes.size() && !preempted; ++p) {
    if (!pass_compute[p]) {
      ++passes_skipped;
      continue;
    }
    const auto pass_start = Clock::now();
    state.pass_start = pass_start;
    state.pass_cost_per_sample = pass_cost_per_sample(plan, p, pass_flip[p] != 0);
    std::vector<float> plain, flipped;
    std::vector<uint8_t> bad;
    if (mpi.rank == 0) {
      spdlog::info("pass {}/{}: {} {} ({} boxes, {} samples, {})", p + 1, plan.passes.size(),
                   plan.passes[p].variant, plan.passes[p].checkpoint, plan.passes[p].bbox,
                   plan.sets[plan.pass_set[p]].set.samples.size(),
                   pass_flip[p] ? "plain + flipped" : "plain only");
    }
    const PassOutcome outcome = run_pass(state, p, pass_flip[p] != 0, plain, flipped, bad, errors);
    if (outcome == PassOutcome::Failed) return fail(mpi, errors);
    if (outcome == PassOutcome::Preempted) {
      preempted = true;
      break;
    }
    ++passes_computed;
    if (mpi.rank == 0) {
      const double seconds = std::chrono::duration<double>(Clock::now() - pass_start).count();
      state.work_computed +=
          plan.sets[plan.pass_set[p]].set.samples.size() * state.pass_cost_per_sample;
      try {
        write_pass_results(state, p, plain, flipped, bad, seconds);
      } catch (const std::exception& e) {
        local_error = e.what();
      }
    }
    if (!all_ok(mpi, local_error, &errors)) return fail(mpi, errors);
    // A signal that arrived while rank 0 wrote results stops before the next pass.
    int stop = g_stop_signal ? 1 : 0, any_stop = 0;
    MPI_Allreduce(&stop, &any_stop, 1, MPI_INT, MPI_MAX, mpi.comm);
    bool remaining = false;
    for (size_t q = p + 1; q < plan.passes.size(); ++q) remaining = remaining || pass_compute[q];
    if (any_stop && remaining) preempted = true;
  }

  // 6. Summary files on rank 0.
  if (mpi.rank == 0) {
    try {
      if (preempted) {
        write_summary(state, passes_computed, passes_skipped, jobs_skipped, true);
        spdlog::warn("preempted: stopped at a batch boundary, {}/{} jobs finished; rerun to resume",
                     state.jobs_finished, plan.jobs.size());
      } else {
        std::set<std::string> stems;
        for (const auto& job : plan.jobs) stems.insert(job.stem());
        std::vector<JobResult> results;
        for (auto& result : load_job_results(plan.config.output)) {
          if (stems.count(result.job.stem())) results.push_back(std::move(result));
        }
        write_comparison(plan.config.output, results, plan.registry);
        write_summary(state, passes_computed, passes_skipped, jobs_skipped, false);
      }
      spdlog::info("forward passes: {} computed, {} skipped", passes_computed, passes_skipped);
      spdlog::info("jobs: {} computed, {} skipped, {} total; results in {}", state.jobs_computed,
                   jobs_skipped, plan.jobs.size(), plan.config.output);
    } catch (const std::exception& e) {
      local_error = e.what();
    }
  }
  if (!all_ok(mpi, local_error, &errors)) return fail(mpi, errors);
  return preempted ? kExitPreempted : kExitOk;
}

}  // namespace cnp::pipeline
