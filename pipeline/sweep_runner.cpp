// The sweep's order of steps on every rank. Each step lives in its own file:
// planning and validation (sweep_plan), one forward pass (pass_executor), the job
// files (result_writer), and agreeing on errors across ranks (collective_step).
#include "pipeline/sweep_runner.h"

#include <spdlog/sinks/sink.h>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/error.h"
#include "common/files.h"
#include "common/logging.h"
#include "data/cache.h"
#include "model/pose_model.h"
#include "pipeline/collective_step.h"
#include "pipeline/model_prefetch.h"
#include "pipeline/output_lock.h"
#include "pipeline/pass_executor.h"
#include "pipeline/rank_timing.h"
#include "pipeline/result_writer.h"
#include "pipeline/runtime.h"
#include "pipeline/stop_signals.h"
#include "pipeline/sweep_plan.h"
#include "pipeline/test_hooks.h"

namespace cnp::pipeline {
namespace {

namespace fs = std::filesystem;

// Decoded crops are kept per rank and sample set across passes when they fit this
// budget (each sample is 192 KiB), so a sweep decodes every image once. Override
// with $CNP_CROP_MEMORY_MB (0 disables the store and re-reads images/cache per pass).
constexpr int64_t kDefaultCropMemoryMb = 2048;
// Checkpoints rank 0 read while validating are kept for their pass within this
// budget ($CNP_CHECKPOINT_MEMORY_MB), so it reads each file once per sweep.
constexpr int64_t kDefaultCheckpointMemoryMb = 1024;

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

int64_t env_int(const char* name, int64_t fallback) {
  const char* value = std::getenv(name);
  if (!value || !*value) return fallback;
  char* end = nullptr;
  const long long parsed = std::strtoll(value, &end, 10);
  return end && *end == '\0' && parsed >= 0 ? parsed : fallback;
}

int fail(const Mpi& mpi, const std::vector<std::string>& errors) {
  if (mpi.rank == 0) print_problems(errors);
  return kExitFailed;
}

// Rank 0 builds (or validates) each needed cache once; the others wait, then every
// rank opens it.
bool open_caches(RunState& state, const std::vector<char>& pass_compute,
                 std::vector<std::string>& errors) {
  const Mpi& mpi = state.mpi;
  Plan& plan = state.plan;
  const bool built = collective_step(mpi, errors, [&] {
    if (mpi.rank != 0) return;
    std::vector<char> done(plan.sets.size(), 0);
    for (size_t p = 0; p < plan.passes.size(); ++p) {
      const int s = plan.pass_set[p];
      if (!pass_compute[p] || done[s]) continue;
      done[s] = 1;
      SampleSet& set = plan.sets[s];
      test_hook(mpi.rank, "cache");
      spdlog::info("cache: checking {} boxes, protocol {} under {}", set.key.bbox, set.key.protocol,
                   plan.config.dataset.cache);
      state.set_state[s].cache_path = [&] {
        TimeInto timed(this_rank_timing().data_wait_s);
        return data::ensure_cache(plan.config.dataset.cache, set.options, set.set, state.threads);
      }();
    }
  });
  if (!built) return false;
  return collective_step(mpi, errors, [&] {
    for (size_t p = 0; p < plan.passes.size(); ++p) {
      const int s = plan.pass_set[p];
      SampleSetState& set_state = state.set_state[s];
      const SampleSet& set = plan.sets[s];
      if (!pass_compute[p] || set_state.cache) continue;
      set_state.cache_path = data::cache_file_path(plan.config.dataset.cache, set.options);
      TimeInto timed(this_rank_timing().data_wait_s);
      set_state.cache = std::make_unique<data::CacheReader>(set_state.cache_path);
      if (set_state.cache->samples().size() != set.set.samples.size()) {
        throw Error(set_state.cache_path + ": holds " +
                    std::to_string(set_state.cache->samples().size()) +
                    " samples but the dataset has " + std::to_string(set.set.samples.size()) +
                    "; delete the cache to rebuild it");
      }
    }
  });
}

// {"rank", "host", "wall_s", parts...} of this rank, as JSON text.
std::string rank_timing_json(const RunState& state) {
  const RankTiming& t = this_rank_timing();
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  nlohmann::json j;
  j["rank"] = state.mpi.rank;
  j["host"] = std::string(host);
  j["wall_s"] = std::chrono::duration<double>(Clock::now() - state.start).count();
  j["checkpoint_read_s"] = t.checkpoint_read_s;
  j["model_build_s"] = t.model_build_s;
  j["data_wait_s"] = t.data_wait_s;
  j["forward_s"] = t.forward_s;
  j["collective_s"] = t.collective_s;
  j["metrics_write_s"] = t.metrics_write_s;
  j["between_passes_s"] = t.between_passes_s;
  j["between_passes_max_s"] = t.between_passes_max_s;
  // Background threads' seconds, beside the main thread's parts (not in their sum).
  const RankTiming b = background_timing();
  j["background"] = {{"checkpoint_read_s", b.checkpoint_read_s},
                     {"model_build_s", b.model_build_s},
                     {"metrics_write_s", b.metrics_write_s}};
  return j.dump();
}

int run_sweep_steps(const SweepOptions& options) {
  RunState state;
  state.start = Clock::now();
  state.last_progress = state.start;
  RankTiming& timing = this_rank_timing();
  {
    TimeInto timed(timing.collective_s);
    state.mpi = init_mpi();
  }
  state.hosts = gather_strings(state.mpi, host_name());
  const Mpi& mpi = state.mpi;
  Plan& plan = state.plan;
  std::vector<std::string> errors;

  // Only rank 0 speaks on the console; every rank keeps its own log file (below).
  if (mpi.rank != 0 && !spdlog::default_logger()->sinks().empty()) {
    spdlog::default_logger()->sinks().front()->set_level(spdlog::level::warn);
  }
  install_stop_handlers(mpi.rank);

  // 1. Every rank parses the sweep; a bad file fails everywhere the same way.
  if (!collective_step(mpi, errors, [&] {
        plan.config = jobs::load_sweep(options.config_path, options.overrides);
        if (!options.output.empty()) plan.config.output = options.output;
        if (plan.config.output.empty()) plan.config.output = "results/" + plan.config.name;
      })) {
    return fail(mpi, errors);
  }

  // 2. Rank 0 validates every input and lists every problem; the verdict is broadcast.
  std::vector<std::string> problems;
  if (mpi.rank == 0) {
    try {
      test_hook(mpi.rank, "planning");
      plan_jobs(plan);
      ValidationOptions validation;
      validation.no_resume = options.no_resume;
      validation.keep_checkpoint_bytes =
          options.dry_run ? 0
                          : env_int("CNP_CHECKPOINT_MEMORY_MB", kDefaultCheckpointMemoryMb) << 20;
      try {
        validation.device =
            resolve_device(plan.config.runtime.device, model::PoseModel::cuda_available(),
                           model::PoseModel::cuda_device_count(), mpi.local_rank, mpi.local_size);
      } catch (const std::exception& e) {
        problems.push_back(e.what());
      }
      test_hook(mpi.rank, "validation");
      const auto found = validate_plan(plan, validation);
      problems.insert(problems.end(), found.begin(), found.end());
    } catch (const std::exception& e) {
      problems.push_back(e.what());
    }
    for (const auto& warning : plan.warnings) spdlog::warn("{}", warning);
  }
  int problem_count = static_cast<int>(problems.size());
  {
    TimeInto timed(timing.collective_s);  // the other ranks wait here while rank 0 validates
    MPI_Bcast(&problem_count, 1, MPI_INT, 0, mpi.comm);
  }
  if (problem_count > 0) return fail(mpi, problems);

  if (!collective_step(mpi, errors, [&] {
        if (mpi.rank != 0) plan_jobs(plan);
      })) {
    return fail(mpi, errors);
  }
  state.set_state.resize(plan.sets.size());

  // 3. Which passes to compute (rank 0 owns the resume ledger) and which halves.
  PassSelection selection;
  if (mpi.rank == 0) {
    selection = select_passes(plan);
  } else {
    selection.compute.assign(plan.passes.size(), 0);
    selection.flip.assign(plan.passes.size(), 0);
  }
  const std::vector<char>& pass_compute = selection.compute;
  const std::vector<char>& pass_flip = selection.flip;
  {
    TimeInto timed(timing.collective_s);
    MPI_Bcast(selection.compute.data(), static_cast<int>(selection.compute.size()), MPI_CHAR, 0,
              mpi.comm);
    MPI_Bcast(selection.flip.data(), static_cast<int>(selection.flip.size()), MPI_CHAR, 0,
              mpi.comm);
  }

  if (options.dry_run) {
    if (mpi.rank == 0) std::cout << format_dry_run(plan, mpi.size, pass_compute) << std::flush;
    return kExitOk;
  }

  // 4. One sweep per output folder: rank 0 locks it before anything is written there.
  std::unique_ptr<OutputLock> output_lock;
  if (!collective_step(mpi, errors, [&] {
        if (mpi.rank == 0) output_lock = std::make_unique<OutputLock>(plan.config.output);
        test_hook(mpi.rank, "locked");
      })) {
    return fail(mpi, errors);
  }

  // Runtime, logs, sample sets (and the cache) on every rank.
  if (!collective_step(mpi, errors, [&] {
        const auto& runtime = plan.config.runtime;
        state.device =
            resolve_device(runtime.device, model::PoseModel::cuda_available(),
                           model::PoseModel::cuda_device_count(), mpi.local_rank, mpi.local_size);
        state.threads = resolve_threads_per_rank(
            runtime.threads_per_rank, std::getenv("SLURM_CPUS_PER_TASK"),
            static_cast<int>(std::thread::hardware_concurrency()), mpi.local_size);
        state.batch_size = resolve_batch_size(runtime.batch_size, state.device);
        state.crop_budget_bytes = env_int("CNP_CROP_MEMORY_MB", kDefaultCropMemoryMb) << 20;
        const fs::path logs = fs::path(plan.config.output) / "logs";
        std::error_code ec;
        fs::create_directories(logs, ec);
        if (ec) {
          throw Error("output: " + plan.config.output + ": cannot create " + logs.string() + " (" +
                      ec.message() + ")");
        }
        add_log_file((logs / ("rank" + std::to_string(mpi.rank) + ".log")).string());
        for (const auto& f : remove_stale_temporaries(plan.config.output))
          spdlog::info("removed stale temporary {}", f);
        for (size_t p = 0; p < plan.passes.size(); ++p) {
          SampleSet& set = plan.sets[plan.pass_set[p]];
          if (!pass_compute[p] || set.loaded) continue;
          TimeInto timed(timing.data_wait_s);
          set.set = data::load_test_set(set.options);
          set.loaded = true;
        }
      })) {
    return fail(mpi, errors);
  }

  if (!plan.config.dataset.cache.empty() && !open_caches(state, pass_compute, errors)) {
    return fail(mpi, errors);
  }

  // NCCL setup is itself collective: one rank's failure there cannot be agreed on (the
  // others wait inside it), so it escapes to abort_every_rank.
  test_hook(mpi.rank, "gather_setup");
#ifdef CNP_HAVE_NCCL
  // (One rank has nothing to broadcast: no NCCL communicator, whose setup takes ~0.5 s.)
  if (is_cuda_device(state.device) && mpi.size > 1) {
    TimeInto timed(timing.collective_s);
    state.weights = make_nccl_broadcast(mpi.comm, cuda_device_index(state.device));
  }
#endif
  if (!state.weights) state.weights = make_mpi_broadcast(mpi.comm);
  state.gather = make_mpi_gather(mpi.comm);

  SweepCounts counts;
  if (mpi.rank == 0) {
    for (char current : plan.job_current) counts.jobs_skipped += current ? 1 : 0;
    state.jobs_finished = counts.jobs_skipped;
    for (size_t p = 0; p < plan.passes.size(); ++p) {
      if (pass_compute[p]) {
        state.work_to_compute += plan.sets[plan.pass_set[p]].set.samples.size() *
                                 pass_cost_per_sample(plan, p, pass_flip[p] != 0);
      }
    }
    spdlog::info(
        "sweep {}: {} jobs in {} forward passes ({} to compute), {} rank(s), device {}, "
        "batch {}, {} thread(s) per rank, weights broadcast over {}",
        plan.config.name, plan.jobs.size(), plan.passes.size(),
        std::count(pass_compute.begin(), pass_compute.end(), 1), mpi.size, state.device,
        state.batch_size, state.threads, state.weights->name());
  }

  // 5. Passes, one after another. Each pass's model is made during the one before
  // (ModelPrefetch), and rank 0's writer thread writes each pass's jobs while the next
  // pass runs (AsyncResultWriter); both are joined before the summary.
  std::vector<size_t> next_pass(plan.passes.size(), PassLinks::kNoPass);
  for (size_t p = plan.passes.size(), following = PassLinks::kNoPass; p-- > 0;) {
    next_pass[p] = following;
    if (pass_compute[p]) following = p;
  }
  set_stop_mode(StopMode::AtBatchBoundary);
  bool preempted = false;
  std::string write_error;
  {
    ModelPrefetch models(state);
    std::unique_ptr<AsyncResultWriter> writer;
    if (mpi.rank == 0) writer = std::make_unique<AsyncResultWriter>(state);
    for (size_t p = 0; p < plan.passes.size(); ++p) {
      if (!pass_compute[p]) {
        ++counts.passes_skipped;
        continue;
      }
      const auto pass_start = Clock::now();
      state.pass_start = pass_start;
      state.pass_cost_per_sample = pass_cost_per_sample(plan, p, pass_flip[p] != 0);
      PassOutputs outputs;
      if (mpi.rank == 0) {
        spdlog::info("pass {}/{}: {} {} ({} boxes, {} samples, {})", p + 1, plan.passes.size(),
                     plan.passes[p].variant, plan.passes[p].checkpoint, plan.passes[p].bbox,
                     plan.sets[plan.pass_set[p]].set.samples.size(),
                     pass_flip[p] ? "plain + flipped" : "plain only");
      }
      PassLinks links;
      links.models = &models;
      links.next_pass = next_pass[p];
      links.writer = writer.get();
      const PassOutcome outcome = run_pass(state, p, pass_flip[p] != 0, links, outputs, errors);
      mark_pass_end();
      if (outcome == PassOutcome::Failed) {
        // The passes before this one are complete: their jobs are still written.
        if (writer) {
          TimeInto timed(timing.metrics_write_s);
          writer->flush();
        }
        return fail(mpi, errors);
      }
      if (outcome == PassOutcome::Preempted) {
        preempted = true;
        break;
      }
      ++counts.passes_computed;
      if (mpi.rank == 0) {
        const double seconds = std::chrono::duration<double>(Clock::now() - pass_start).count();
        state.work_computed +=
            plan.sets[plan.pass_set[p]].set.samples.size() * state.pass_cost_per_sample;
        TimeInto timed(timing.metrics_write_s);  // waiting while the writer is a pass behind
        writer->submit(p, std::move(outputs), seconds);
      }
    }
    // Every job of a finished pass on disk before the summary (also when preempted).
    if (writer) {
      TimeInto timed(timing.metrics_write_s);
      write_error = writer->flush();
    }
  }
  // A write failure of the last pass (earlier ones failed the pass after them).
  if (!collective_step(mpi, errors, [&] {
        if (!write_error.empty()) throw Error(write_error);
      })) {
    return fail(mpi, errors);
  }

  // 6. Every rank's timing to rank 0 (the summary's own writing is not in it), then
  // the summary files on rank 0.
  const std::vector<std::string> timings = gather_strings(mpi, rank_timing_json(state));
  if (!collective_step(mpi, errors, [&] {
        if (mpi.rank != 0) return;
        if (preempted) {
          write_summary(state, counts, true, timings);
          spdlog::warn(
              "preempted: stopped at a batch boundary, {}/{} jobs finished; rerun to resume",
              state.jobs_finished.load(), plan.jobs.size());
        } else {
          write_sweep_comparison(plan);
          write_summary(state, counts, false, timings);
        }
        spdlog::info("forward passes: {} computed, {} skipped", counts.passes_computed,
                     counts.passes_skipped);
        spdlog::info("jobs: {} computed, {} skipped, {} total; results in {}",
                     state.jobs_computed.load(), counts.jobs_skipped, plan.jobs.size(),
                     plan.config.output);
      })) {
    return fail(mpi, errors);
  }
  int failed_jobs = static_cast<int>(state.job_failures.size());
  MPI_Bcast(&failed_jobs, 1, MPI_INT, 0, mpi.comm);
  if (failed_jobs > 0) {
    if (mpi.rank == 0) {
      std::cerr << "cnp_sweep: error: " << failed_jobs
                << " job(s) failed, the others finished: " << state.job_failures[0] << std::endl;
      for (const auto& failure : state.job_failures)
        std::cerr << "cnp_sweep: error: " << failure << std::endl;
    }
    return kExitFailed;
  }
  return preempted ? kExitPreempted : kExitOk;
}

}  // namespace

int run_sweep(const SweepOptions& options) {
  install_fatal_mpi_errors();
  // Anything that escapes the agreed steps (a failed gather or allocation, NCCL) may
  // leave other ranks inside a collective: end them all rather than hang.
  try {
    return run_sweep_steps(options);
  } catch (const std::bad_alloc&) {
    abort_every_rank("out of memory");
  } catch (const std::exception& e) {
    abort_every_rank(e.what());
  } catch (...) {
    abort_every_rank("unknown exception");
  }
}

}  // namespace cnp::pipeline
