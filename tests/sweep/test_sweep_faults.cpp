// Bad-sweep and fault scenarios that need more than one run or a process to signal (issue 11):
// a skipped corrupt image, signals in every stage, a non-finite result, a checkpoint whose epoch
// field disagrees, a failed write on the writer thread, and the output folder's lock. The
// one-run cases are the table in test_sweep_error_catalogue.cpp.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>

#include "sweep_errors_fixture.h"

namespace cnp::sweep_test {
namespace {

// With skip_bad_samples the corrupt image is skipped and counted (without it, the
// catalogue's corrupt_image case fails naming the image).
TEST_F(SweepErrors, CorruptImageIsSkippedWhenAllowed) {
  const std::string config = with_root(
      write_sweep(dir_ + "/corrupt.yaml", data_,
                  "  variants: [XS]\n  epochs: [1]\n  protocols: [1, 2]\n  flip: [false]\n"),
      data_, corrupt_data(dir_, data_));
  const std::string out = dir_ + "/out_corrupt";
  fs::remove_all(out);
  auto skipped =
      run(sweep_command(3, config, "--output " + out + " --set dataset.skip_bad_samples=true"),
          dir_ + "/corrupt_skip");
  ASSERT_EQ(skipped.code, 0) << skipped.err;
  const auto p2 = read_json(out + "/jobs/XS_e1_p2_noflip_gt.json");
  const auto p1 = read_json(out + "/jobs/XS_e1_p1_noflip_gt.json");
  EXPECT_EQ(p2.at("metrics").at("num_samples"), 7);
  EXPECT_EQ(p1.at("metrics").at("num_samples"), 4);  // S11 only: the S9 image does not count
  EXPECT_EQ(read_json(out + "/predictions/XS_e1_p2_noflip_gt.json").size(), 7u);
  EXPECT_EQ(p2.at("skipped_samples"), 1);
  EXPECT_EQ(p1.at("skipped_samples"), 0);
}

// SIGTERM and SIGINT stop the sweep within seconds before the passes too
// (planning, validation, cache building), not only at a batch boundary. The test
// hook makes rank 0 stall in the stage (writing a marker first). The signal goes to
// every rank, as Slurm's scancel does to the tasks of a step (mpirun, signalled
// itself, tears the job down on its own terms).
TEST_F(SweepErrors, SignalsStopEveryStageWithinSeconds) {
  const auto config =
      write_sweep(dir_ + "/stall.yaml", data_,
                  "  variants: [XS]\n  epochs: [1]\n  protocols: [2]\n  flip: [false]\n", "",
                  "  cache: " + dir_ + "/stall_cache\n");
  // "forward": rank 0 stalls inside a batch; the stop waits for a batch boundary no
  // longer than the grace period (kStopGraceSeconds, 10 s).
  const std::vector<std::pair<std::string, int>> cases = {
      {"planning", SIGTERM}, {"validation", SIGINT}, {"cache", SIGTERM}, {"forward", SIGTERM}};
  for (const auto& [stage, signal_number] : cases) {
    const std::string scratch = dir_ + "/stall_" + stage;
    const std::string marker = scratch + "/marker";
    fs::remove_all(scratch);
    fs::create_directories(scratch);
    const std::string script =
        "export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 CNP_TEST_PAUSE_STAGE=" +
        stage + " CNP_TEST_PAUSE_MARKER=" + marker + "\n" + CNP_MPIEXEC +
        " -np 2 --oversubscribe --bind-to none " + CNP_SWEEP_EXE + " " + config + " --output " +
        scratch + "/out &\npid=$!\n" + "for i in $(seq 1200); do [ -e " + marker +
        " ] && break; sleep 0.1; done\n" + "start=$(date +%s%N); pkill -" +
        std::to_string(signal_number) + " -P $pid\n" +
        "for i in $(seq 600); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done\n"
        "kill -KILL $pid 2>/dev/null; wait $pid; code=$?\n"
        "echo \"code=$code ms=$(( ($(date +%s%N) - start) / 1000000 ))\"\n";
    const auto result = run(script, scratch);
    int code = -1;
    long ms = -1;
    ASSERT_EQ(std::sscanf(result.out.c_str(), "code=%d ms=%ld", &code, &ms), 2) << result.out;
    EXPECT_TRUE(fs::exists(marker)) << stage << " never reached";
    EXPECT_EQ(code, 3) << stage << ": " << result.err;
    EXPECT_LT(ms, 30000) << stage << ": a hang check, not a timing test";
    EXPECT_HAS(result.err, "stopped by signal " + std::to_string(signal_number) +
                               (stage == "forward" ? " (no batch boundary within the grace period)"
                                                   : " before the forward passes"));
    EXPECT_FALSE(fs::exists(scratch + "/out/jobs")) << stage;
  }
}

// A non-finite result fails its job alone, naming the checkpoint: nothing is written
// for it, the other jobs finish, the sweep exits 1, and the folder stays usable.
TEST_F(SweepErrors, NonFiniteResultFailsOnlyItsJob) {
  nan_checkpoint(dir_, data_);
  const auto config =
      write_sweep(dir_ + "/nan.yaml", data_,
                  "  variants: [XS]\n  epochs: [1, 3]\n  protocols: [1, 2]\n  flip: [true]\n");
  const std::string out = dir_ + "/out_nan";
  fs::remove_all(out);
  const auto result = run(sweep_command(2, config, "--output " + out), dir_ + "/nan_run");
  EXPECT_EQ(result.code, 1) << result.err;
  EXPECT_HAS(result.err, "2 job(s) failed");
  EXPECT_HAS(result.err, "snapshot_3.pth.tar: job XS_e3_p2_flip: the network output for sample");
  EXPECT_HAS(result.err, "not finite");
  EXPECT_TRUE(fs::exists(out + "/jobs/XS_e1_p2_flip_gt.json"));
  EXPECT_TRUE(fs::exists(out + "/jobs/XS_e1_p1_flip_gt.json"));
  EXPECT_FALSE(fs::exists(out + "/jobs/XS_e3_p2_flip_gt.json"));
  EXPECT_FALSE(fs::exists(out + "/predictions/XS_e3_p2_flip_gt.json"));
  const auto summary = read_json(out + "/run_summary.json");
  EXPECT_EQ(summary.at("jobs_failed").size(), 2u);
  // The folder stays usable: `cnp compare` reads it, and a rerun resumes the good jobs.
  const auto compare = run(std::string(CNP_EXE) + " compare " + out, dir_ + "/nan_compare");
  EXPECT_EQ(compare.code, 0) << compare.err;
  EXPECT_HAS(compare.out, "XS");
  const auto rerun = run(sweep_command(1, config, "--output " + out), dir_ + "/nan_rerun");
  EXPECT_EQ(rerun.code, 1) << rerun.err;
  EXPECT_EQ(read_json(out + "/run_summary.json").at("jobs_skipped"), 2);
}

// A checkpoint whose own 'epoch' field disagrees with its file name: a warning, and
// the job file records both.
TEST_F(SweepErrors, CheckpointEpochFieldDisagreeingIsRecorded) {
  derived_checkpoint(data_, 5, /*drop_key=*/false, 4);
  const auto config =
      write_sweep(dir_ + "/epoch_field.yaml", data_,
                  "  variants: [XS]\n  epochs: [5]\n  protocols: [2]\n  flip: [false]\n");
  const std::string out = dir_ + "/out_epoch_field";
  fs::remove_all(out);
  const auto result = run(sweep_command(1, config, "--output " + out), dir_ + "/epoch_field");
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_HAS(result.err,
             "snapshot_5.pth.tar: its 'epoch' field is 4 but the sweep runs it as epoch 5");
  const auto job = read_json(out + "/jobs/XS_e5_p2_noflip_gt.json");
  EXPECT_EQ(job.at("job").at("epoch"), 5);
  EXPECT_EQ(job.at("checkpoint").at("epoch_field"), 4);
}

// Rank 0 writes each pass's results on a writer thread while the next pass runs. A write
// that fails there still fails the sweep: exit 1, one line naming the file; the jobs
// written before it stay whole, nothing of the failed job or of the next pass appears,
// and a rerun resumes exactly the jobs on disk.
TEST_F(SweepErrors, ResultWriteFailureFailsTheSweepNamingTheFile) {
  const auto config = write_sweep(dir_ + "/write_fail.yaml", data_, kFullGrid);
  const std::string out = dir_ + "/out_write_fail";
  fs::remove_all(out);
  // A folder where pass 1's last job (of four) puts its predictions: writing them fails.
  const std::string blocked = out + "/predictions/XS_e1_p2_flip_gt.json";
  fs::create_directories(blocked);
  const auto result =
      run(sweep_command(2, config, "--output " + out + " --set runtime.batch_size=1"),
          dir_ + "/write_fail_run");
  EXPECT_EQ(result.code, 1) << result.err;
  EXPECT_HAS(result.err, "cnp_sweep: error: " + blocked + ": is a directory");
  for (const char* stem : {"XS_e1_p1_noflip_gt", "XS_e1_p1_flip_gt", "XS_e1_p2_noflip_gt"}) {
    EXPECT_TRUE(fs::exists(out + "/jobs/" + stem + ".json")) << stem;
  }
  EXPECT_FALSE(fs::exists(out + "/jobs/XS_e1_p2_flip_gt.json"));
  for (const char* stem :
       {"XS_e2_p1_noflip_gt", "XS_e2_p1_flip_gt", "XS_e2_p2_noflip_gt", "XS_e2_p2_flip_gt"}) {
    EXPECT_FALSE(fs::exists(out + "/jobs/" + stem + ".json")) << stem;
    EXPECT_FALSE(fs::exists(out + "/predictions/" + stem + ".json")) << stem;
  }
  fs::remove(blocked);
  const auto rerun = run(sweep_command(2, config, "--output " + out), dir_ + "/write_fail_rerun");
  ASSERT_EQ(rerun.code, 0) << rerun.err;
  const auto summary = read_json(out + "/run_summary.json");
  EXPECT_EQ(summary.at("jobs_skipped"), 3);
  EXPECT_EQ(summary.at("jobs_computed"), 5);
}

// Two sweeps into one output folder: the second exits at once, naming the host and
// pid of the first one's rank 0 (which holds <output>/.lock).
TEST_F(SweepErrors, SecondSweepIntoTheSameFolderExitsNamingTheHolder) {
  const auto config =
      write_sweep(dir_ + "/lock.yaml", data_,
                  "  variants: [XS]\n  epochs: [1]\n  protocols: [2]\n  flip: [false]\n");
  const std::string scratch = dir_ + "/lock";
  fs::remove_all(scratch);
  fs::create_directories(scratch);
  const std::string sweep = std::string(CNP_MPIEXEC) + " --oversubscribe --bind-to none ";
  const std::string script =
      "export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1\n"
      "CNP_TEST_PAUSE_STAGE=locked CNP_TEST_PAUSE_MARKER=" +
      scratch + "/marker " + sweep + "-np 2 " + CNP_SWEEP_EXE + " " + config + " --output " +
      scratch +
      "/out &\npid=$!\n"
      "for i in $(seq 1200); do [ -e " +
      scratch +
      "/marker ] && break; sleep 0.1; done\n"
      "echo ranks $(pgrep -P $pid)\n"
      "timeout 120 " +
      sweep + "-np 1 " + CNP_SWEEP_EXE + " " + config + " --output " + scratch + "/out 2>" +
      scratch +
      "/second.err; echo second $?\n"
      "pkill -TERM -P $pid; wait $pid; echo first $?\n";
  const auto result = run(script, scratch);
  const std::string second_err = slurp(scratch + "/second.err");
  EXPECT_HAS(result.out, "second 1\n");
  EXPECT_HAS(result.out, "first 3\n");
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  const std::string prefix = "output: " + scratch + "/out is in use by another sweep (host " +
                             std::string(host) + ", pid ";
  const auto at = second_err.find(prefix);
  ASSERT_NE(at, std::string::npos) << second_err;
  const std::string pid = std::to_string(std::atol(second_err.c_str() + at + prefix.size()));
  EXPECT_HAS(result.out, "ranks " + pid) << "the holder is the first sweep's rank 0";
}

}  // namespace
}  // namespace cnp::sweep_test
