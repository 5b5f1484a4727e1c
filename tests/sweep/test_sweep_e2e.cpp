// End to end: real `mpirun -np N cnp_sweep` on a small synthetic Human3.6M.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <thread>

#include "sweep_fixture.h"

namespace cnp::sweep_test {
namespace {

// Result file stems (job label and box source).
const std::vector<std::string> kStems = {
    "XS_e1_p1_noflip_gt", "XS_e1_p1_flip_gt", "XS_e1_p2_noflip_gt", "XS_e1_p2_flip_gt",
    "XS_e2_p1_noflip_gt", "XS_e2_p1_flip_gt", "XS_e2_p2_noflip_gt", "XS_e2_p2_flip_gt"};

class SweepE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = test_dir("sweep_e2e");
    data_ = make_dataset(dir_);
    config_ = write_sweep(dir_ + "/sweep.yaml", data_, kFullGrid);
  }
  // Runs the full grid into `out` once per test binary run.
  static const CommandResult& sweep_into(int ranks) {
    static std::map<int, CommandResult> done;
    auto it = done.find(ranks);
    if (it == done.end()) {
      const std::string out = dir_ + "/out_np" + std::to_string(ranks);
      fs::remove_all(out);
      it = done.emplace(ranks, run(sweep_command(ranks, config_, "--output " + out),
                                   dir_ + "/run_np" + std::to_string(ranks)))
               .first;
    }
    return it->second;
  }
  static std::string out(int ranks) { return dir_ + "/out_np" + std::to_string(ranks); }

  static std::string dir_, data_, config_;
};
std::string SweepE2E::dir_, SweepE2E::data_, SweepE2E::config_;

// Every numeric leaf of two JSON trees agrees within tol (same keys).
void expect_close(const nlohmann::json& a, const nlohmann::json& b, double tol,
                  const std::string& where) {
  ASSERT_EQ(a.type(), b.type()) << where;
  if (a.is_object()) {
    ASSERT_EQ(a.size(), b.size()) << where;
    for (auto it = a.begin(); it != a.end(); ++it) {
      ASSERT_TRUE(b.contains(it.key())) << where << "." << it.key();
      expect_close(it.value(), b.at(it.key()), tol, where + "." + it.key());
    }
  } else if (a.is_array()) {
    ASSERT_EQ(a.size(), b.size()) << where;
    for (size_t i = 0; i < a.size(); ++i)
      expect_close(a[i], b[i], tol, where + "[" + std::to_string(i) + "]");
  } else if (a.is_number()) {
    EXPECT_NEAR(a.get<double>(), b.get<double>(), tol) << where;
  } else {
    EXPECT_EQ(a, b) << where;
  }
}

TEST_F(SweepE2E, OneTwoThreeRanksGiveIdenticalResults) {
  for (int ranks : {1, 2, 3}) {
    const auto& result = sweep_into(ranks);
    ASSERT_EQ(result.code, 0) << "np " << ranks << ": " << result.err;
    EXPECT_NE(result.err.find("forward passes: 2 computed, 0 skipped"), std::string::npos)
        << result.err;
    for (const auto& stem : kStems) {
      ASSERT_TRUE(fs::exists(out(ranks) + "/jobs/" + stem + ".json")) << stem;
      ASSERT_TRUE(fs::exists(out(ranks) + "/predictions/" + stem + ".json")) << stem;
    }
    const auto summary = read_json(out(ranks) + "/run_summary.json");
    EXPECT_EQ(summary.at("passes_total"), 2);
    EXPECT_EQ(summary.at("passes_computed"), 2);
    EXPECT_EQ(summary.at("jobs_computed"), 8);
    EXPECT_EQ(summary.at("ranks"), ranks);
    EXPECT_EQ(summary.at("preempted"), false);
    EXPECT_TRUE(fs::exists(out(ranks) + "/comparison.json"));
    EXPECT_TRUE(fs::exists(out(ranks) + "/comparison.md"));
    for (int r = 0; r < ranks; ++r) {
      EXPECT_TRUE(fs::exists(out(ranks) + "/logs/rank" + std::to_string(r) + ".log"));
    }
    // Each rank's wall time is accounted for: the parts add up to within 10%.
    const auto& per_rank = summary.at("timing").at("per_rank");
    ASSERT_EQ(per_rank.size(), static_cast<size_t>(ranks));
    EXPECT_GT(summary.at("timing").at("wall_s").get<double>(), 0.0);
    for (int r = 0; r < ranks; ++r) {
      const auto& t = per_rank[r];
      EXPECT_EQ(t.at("rank"), r);
      EXPECT_FALSE(t.at("host").get<std::string>().empty());
      double parts = 0;
      for (const char* part : {"checkpoint_read_s", "model_build_s", "data_wait_s", "forward_s",
                               "collective_s", "metrics_write_s"}) {
        EXPECT_GE(t.at(part).get<double>(), 0.0) << part;
        parts += t.at(part).get<double>();
      }
      const double wall = t.at("wall_s").get<double>();
      EXPECT_NEAR(parts, wall, 0.1 * wall) << "np " << ranks << " rank " << r << ": " << t.dump();
      EXPECT_GT(t.at("forward_s").get<double>(), 0.0);
      // Beside the parts: the idle time between the two passes, and background threads.
      EXPECT_GT(t.at("between_passes_s").get<double>(), 0.0);
      EXPECT_LE(t.at("between_passes_s").get<double>(), wall);
      EXPECT_GE(t.at("between_passes_s").get<double>(), t.at("between_passes_max_s").get<double>());
      const auto& background = t.at("background");
      for (const char* part : {"checkpoint_read_s", "model_build_s", "metrics_write_s"}) {
        EXPECT_GE(background.at(part).get<double>(), 0.0) << part;
        EXPECT_LE(background.at(part).get<double>(), wall) << part;
      }
      // Only rank 0 reads checkpoints and writes results; it always writes on its writer thread.
      if (r == 0) {
        EXPECT_GT(background.at("metrics_write_s").get<double>(), 0.0);
      } else {
        EXPECT_EQ(background.at("metrics_write_s").get<double>(), 0.0);
        EXPECT_EQ(background.at("checkpoint_read_s").get<double>(), 0.0);
      }
    }
  }
  for (const auto& stem : kStems) {
    const auto one = read_json(out(1) + "/jobs/" + stem + ".json");
    EXPECT_EQ(one.at("metrics").at("num_samples"), stem.find("_p1_") != std::string::npos ? 4 : 8)
        << stem;
    EXPECT_EQ(one.at("metrics").at("headline"),
              stem.find("_p1_") != std::string::npos ? "pa_mpjpe" : "mpjpe");
    const auto one_pred = read_json(out(1) + "/predictions/" + stem + ".json");
    for (int ranks : {2, 3}) {
      const auto other = read_json(out(ranks) + "/jobs/" + stem + ".json");
      expect_close(one.at("metrics"), other.at("metrics"), 1e-3,
                   stem + " np" + std::to_string(ranks));
      EXPECT_EQ(other.at("timing").at("ranks"), ranks);
      expect_close(one_pred, read_json(out(ranks) + "/predictions/" + stem + ".json"), 1e-3,
                   stem + " predictions np" + std::to_string(ranks));
    }
  }
  // The flip test changes the numbers (it is really applied) but not by much.
  const auto plain = read_json(out(1) + "/jobs/XS_e1_p2_noflip_gt.json").at("metrics");
  const auto flip = read_json(out(1) + "/jobs/XS_e1_p2_flip_gt.json").at("metrics");
  EXPECT_NE(plain.at("mpjpe").get<double>(), flip.at("mpjpe").get<double>());
}

// The next pass's model is made while the current pass runs: rank 0 reads the checkpoint
// on a background thread, the ranks receive it between two batches and build it on a
// background thread each; rank 0 writes each pass's results on its writer thread. With
// batch size 1 (4 batches per rank and pass) pass 2's model is ready before pass 1 ends,
// on every rank; the predictions are bit-identical to one rank's; the background seconds
// are reported apart and the main thread's parts still add up to the wall time.
TEST_F(SweepE2E, NextModelIsMadeDuringThePass) {
  ASSERT_EQ(sweep_into(1).code, 0);
  const std::string o = dir_ + "/out_prefetch";
  fs::remove_all(o);
  const auto result = run(
      sweep_command(2, config_, "--output " + o + " --set runtime.batch_size=1 --log-level debug"),
      dir_ + "/prefetch");
  ASSERT_EQ(result.code, 0) << result.err;
  const auto per_rank = read_json(o + "/run_summary.json").at("timing").at("per_rank");
  ASSERT_EQ(per_rank.size(), 2u);
  for (int r = 0; r < 2; ++r) {
    const std::string log = slurp(o + "/logs/rank" + std::to_string(r) + ".log");
    EXPECT_NE(log.find("pass 1: model read and built"), std::string::npos) << log;
    EXPECT_NE(log.find("pass 2: model made during the previous pass"), std::string::npos) << log;
    const auto& t = per_rank[r];
    EXPECT_GT(t.at("background").at("model_build_s").get<double>(), 0.0) << t.dump();
    double parts = 0;
    for (const char* part : {"checkpoint_read_s", "model_build_s", "data_wait_s", "forward_s",
                             "collective_s", "metrics_write_s"}) {
      parts += t.at(part).get<double>();
    }
    const double wall = t.at("wall_s").get<double>();
    EXPECT_NEAR(parts, wall, 0.1 * wall) << "rank " << r << ": " << t.dump();
  }
  EXPECT_GT(per_rank[0].at("background").at("checkpoint_read_s").get<double>(), 0.0);
  for (const auto& stem : kStems) {
    const std::string file = "/predictions/" + stem + ".json";
    EXPECT_TRUE(slurp(out(1) + file) == slurp(o + file)) << stem << " is not bit-identical";
    EXPECT_TRUE(fs::exists(o + "/jobs/" + stem + ".json")) << stem;
  }
}

// Determinism over ranks and batch sizes. Each sample's prediction depends only on
// the batches it is computed in, and the gather puts samples back in order, so the
// output is bit-identical whenever every forward call holds at most 6 samples: 1, 2
// and 3 ranks with batch sizes 1, 7 and 16 on this 8-sample set (shards of 8, 4 and
// 2-3 samples). LibTorch's CPU convolution blocks differently from 7 samples per call
// on: one rank with batch 16 (one call of 8) differs from batch 1 by at most 0.0078
// mm (378 of 408 coordinates differ; measured on this set, Intel Xeon, OpenBLAS), so
// that case is held to 0.01 mm. Bit-identity there would need fixed-size calls.
TEST_F(SweepE2E, PredictionsDoNotDependOnRanksOrBatchSize) {
  const std::string config =
      write_sweep(dir_ + "/determinism.yaml", data_,
                  "  variants: [XS]\n  epochs: [1]\n  protocols: [2]\n  flip: [false, true]\n");
  auto sweep = [&](int ranks, int batch) {
    const std::string o = dir_ + "/det_np" + std::to_string(ranks) + "_b" + std::to_string(batch);
    fs::remove_all(o);
    const auto result =
        run(sweep_command(ranks, config,
                          "--output " + o + " --set runtime.batch_size=" + std::to_string(batch)),
            o + "_run");
    EXPECT_EQ(result.code, 0) << result.err;
    return o;
  };
  const std::string reference = sweep(1, 1);
  for (const auto& [ranks, batch] : std::vector<std::pair<int, int>>{{2, 7}, {3, 16}}) {
    const std::string o = sweep(ranks, batch);
    for (const char* stem : {"XS_e1_p2_noflip_gt", "XS_e1_p2_flip_gt"}) {
      const std::string file = std::string("/predictions/") + stem + ".json";
      EXPECT_TRUE(slurp(reference + file) == slurp(o + file))
          << stem << ": np " << ranks << " batch " << batch << " is not bit-identical";
    }
  }
  const std::string one_call_of_8 = sweep(1, 16);
  for (const char* stem : {"XS_e1_p2_noflip_gt", "XS_e1_p2_flip_gt"}) {
    const std::string file = std::string("/predictions/") + stem + ".json";
    expect_close(read_json(reference + file), read_json(one_call_of_8 + file), 0.01, stem);
  }
}

TEST_F(SweepE2E, IndependentCheckerAgrees) {
  const std::string checker = std::string(CNP_SOURCE_DIR) + "/tests/eval/check_sweep_results.py";
  if (!fs::exists(checker)) GTEST_SKIP() << checker << " not written yet";
  for (int ranks : {1, 3}) {
    ASSERT_EQ(sweep_into(ranks).code, 0);
    const auto check = run(
        std::string(CNP_PYTHON) + " " + checker + " --dataset " + data_ + " --output " + out(ranks),
        dir_ + "/check");
    EXPECT_EQ(check.code, 0) << check.out << check.err;
    EXPECT_NE(check.out.find("OK 8 jobs"), std::string::npos) << check.out << check.err;
  }
}

TEST_F(SweepE2E, ResumeSkipsFinishedPasses) {
  ASSERT_EQ(sweep_into(2).code, 0);
  const std::string o = out(2);
  const std::string before = slurp(o + "/jobs/XS_e2_p1_flip_gt.json");

  auto rerun = run(sweep_command(2, config_, "--output " + o), dir_ + "/resume1");
  ASSERT_EQ(rerun.code, 0) << rerun.err;
  EXPECT_NE(rerun.err.find("forward passes: 0 computed, 2 skipped"), std::string::npos)
      << rerun.err;
  auto summary = read_json(o + "/run_summary.json");
  EXPECT_EQ(summary.at("passes_computed"), 0);
  EXPECT_EQ(summary.at("passes_skipped"), 2);
  EXPECT_EQ(summary.at("jobs_skipped"), 8);
  EXPECT_EQ(summary.at("jobs_computed"), 0);
  EXPECT_EQ(slurp(o + "/jobs/XS_e2_p1_flip_gt.json"), before);  // untouched

  // One job file gone: only its pass runs, only it is rewritten, with the same numbers.
  fs::remove(o + "/jobs/XS_e2_p1_flip_gt.json");
  auto partial = run(sweep_command(2, config_, "--output " + o), dir_ + "/resume2");
  ASSERT_EQ(partial.code, 0) << partial.err;
  summary = read_json(o + "/run_summary.json");
  EXPECT_EQ(summary.at("passes_computed"), 1);
  EXPECT_EQ(summary.at("passes_skipped"), 1);
  EXPECT_EQ(summary.at("jobs_computed"), 1);
  EXPECT_EQ(summary.at("jobs_skipped"), 7);
  expect_close(nlohmann::json::parse(before).at("metrics"),
               read_json(o + "/jobs/XS_e2_p1_flip_gt.json").at("metrics"), 1e-9, "recomputed");

  auto forced = run(sweep_command(2, config_, "--output " + o + " --no-resume"), dir_ + "/resume3");
  ASSERT_EQ(forced.code, 0) << forced.err;
  summary = read_json(o + "/run_summary.json");
  EXPECT_EQ(summary.at("passes_computed"), 2);
  EXPECT_EQ(summary.at("jobs_computed"), 8);
  EXPECT_EQ(summary.at("jobs_skipped"), 0);
}

TEST_F(SweepE2E, NoFlipJobReusesThePlainHalfExactly) {
  ASSERT_EQ(sweep_into(1).code, 0);
  const std::string o = dir_ + "/out_noflip_only";
  fs::remove_all(o);
  auto only =
      run(sweep_command(2, config_,
                        "--output " + o + " --set sweep.flip=[false] --set sweep.epochs=[1]"),
          dir_ + "/noflip");
  ASSERT_EQ(only.code, 0) << only.err;
  EXPECT_FALSE(fs::exists(o + "/jobs/XS_e1_p2_flip_gt.json"));
  EXPECT_EQ(read_json(o + "/run_summary.json").at("passes_computed"), 1);
  for (const char* stem : {"XS_e1_p1_noflip_gt", "XS_e1_p2_noflip_gt"}) {
    expect_close(read_json(out(1) + "/jobs/" + stem + ".json").at("metrics"),
                 read_json(o + "/jobs/" + stem + ".json").at("metrics"), 1e-3, stem);
    expect_close(read_json(out(1) + "/predictions/" + stem + ".json"),
                 read_json(o + "/predictions/" + stem + ".json"), 1e-3, stem);
  }
}

// The HDF5 cache path (rank 0 builds it, every rank reads its shard) with the
// in-memory crop store off gives the same numbers as decoding images; the reference
// run's epoch-2 pass read its crops from the store filled by pass 1, so this also
// checks the store.
TEST_F(SweepE2E, CacheAndNoCropStoreGiveTheSameResults) {
  ASSERT_EQ(sweep_into(1).code, 0);
  const std::string o = dir_ + "/out_cache";
  fs::remove_all(o);
  fs::remove_all(dir_ + "/cache");
  auto cached =
      run("CNP_CROP_MEMORY_MB=0 " +
              sweep_command(2, config_,
                            "--output " + o +
                                " --set sweep.epochs=[2] --set dataset.cache=" + dir_ + "/cache"),
          dir_ + "/cache_run");
  ASSERT_EQ(cached.code, 0) << cached.err;
  EXPECT_FALSE(fs::is_empty(dir_ + "/cache"));
  for (const char* stem : {"XS_e2_p1_flip_gt", "XS_e2_p2_noflip_gt", "XS_e2_p2_flip_gt"}) {
    expect_close(read_json(out(1) + "/jobs/" + stem + ".json").at("metrics"),
                 read_json(o + "/jobs/" + stem + ".json").at("metrics"), 1e-3, stem);
  }
}

TEST_F(SweepE2E, DryRunPrintsThePlanAndWritesNothing) {
  const std::string o = dir_ + "/out_dry";
  fs::remove_all(o);
  auto dry = run(sweep_command(2, config_, "--output " + o + " --dry-run"), dir_ + "/dry");
  ASSERT_EQ(dry.code, 0) << dry.err;
  EXPECT_FALSE(fs::exists(o));
  for (const char* needle : {"8 jobs, 2 forward passes", "snapshot_1.pth.tar", "snapshot_2.pth.tar",
                             "matches variant(s): XS", "protocol 1, gt boxes: 4 samples",
                             "protocol 2, gt boxes: 8 samples", "XS_e2_p2_flip: to run"}) {
    EXPECT_NE(dry.out.find(needle), std::string::npos) << needle << "\n" << dry.out;
  }
  // Against a finished output it says what a rerun would skip.
  ASSERT_EQ(sweep_into(2).code, 0);
  auto dry_done =
      run(sweep_command(1, config_, "--output " + out(2) + " --dry-run"), dir_ + "/dry2");
  ASSERT_EQ(dry_done.code, 0) << dry_done.err;
  EXPECT_NE(dry_done.out.find("8/8 jobs already finished; 0/2 forward passes to compute"),
            std::string::npos)
      << dry_done.out;
}

TEST_F(SweepE2E, PreemptionStopsAtABatchBoundaryAndResumes) {
  const std::string o = dir_ + "/out_preempt";
  fs::remove_all(o);
  // Batch size 1 makes many batch boundaries; the signal goes to mpirun, which
  // forwards SIGUSR1 to the ranks (as Slurm's --signal does).
  const std::string command = std::string("exec ") + CNP_MPIEXEC +
                              " -np 2 --oversubscribe --bind-to none " + CNP_SWEEP_EXE + " " +
                              config_ + " --output " + o + " --set runtime.batch_size=1 >" + dir_ +
                              "/preempt.out 2>" + dir_ + "/preempt.err";
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // `exec` makes pid mpirun itself; signal it once pass 1's jobs are on disk.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(240);
  while (!fs::exists(o + "/jobs/XS_e1_p2_noflip_gt.json") &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(fs::exists(o + "/jobs/XS_e1_p2_noflip_gt.json"));
  kill(pid, SIGUSR1);
  int status = 0;
  waitpid(pid, &status, 0);
  const std::string err = slurp(dir_ + "/preempt.err");
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 3) << err;
  EXPECT_NE(err.find("preempted: stopped at a batch boundary, 4/8 jobs finished; rerun to resume"),
            std::string::npos)
      << err;
  auto summary = read_json(o + "/run_summary.json");
  EXPECT_EQ(summary.at("preempted"), true);
  EXPECT_FALSE(fs::exists(o + "/jobs/XS_e2_p2_noflip_gt.json"));

  auto resumed = run(sweep_command(2, config_, "--output " + o), dir_ + "/preempt_resume");
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  summary = read_json(o + "/run_summary.json");
  EXPECT_EQ(summary.at("passes_computed"), 1);
  EXPECT_EQ(summary.at("jobs_skipped"), 4);
  ASSERT_EQ(sweep_into(1).code, 0);
  for (const auto& stem : kStems) {
    expect_close(read_json(out(1) + "/jobs/" + stem + ".json").at("metrics"),
                 read_json(o + "/jobs/" + stem + ".json").at("metrics"), 1e-3, stem);
  }
}

}  // namespace
}  // namespace cnp::sweep_test
