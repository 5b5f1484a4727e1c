// Bad sweeps: each gives its clear one-line error on stderr, every rank exits
// non-zero (no hang: mpirun runs under `timeout`), and no result is written.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <cstdio>

#include "sweep_fixture.h"

namespace cnp::sweep_test {
namespace {

class SweepErrors : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = test_dir("sweep_errors");
    data_ = make_dataset(dir_);
  }

  // Runs a 2-rank sweep that must fail before any compute; returns stderr.
  static std::string expect_failure(const std::string& name, const std::string& config,
                                    const std::string& extra = "") {
    const std::string out = dir_ + "/out_" + name;
    fs::remove_all(out);
    const auto result =
        run(sweep_command(2, config, "--output " + out + " " + extra), dir_ + "/" + name);
    EXPECT_NE(result.code, 0) << name << ": " << result.err;
    EXPECT_NE(result.code, 124) << name << " hung";
    EXPECT_FALSE(fs::exists(out)) << name << " wrote " << out;
    EXPECT_NE(result.err.find("cnp_sweep: error: "), std::string::npos) << result.err;
    return result.err;
  }

  static std::string dir_, data_;
};
std::string SweepErrors::dir_, SweepErrors::data_;

#define EXPECT_HAS(text, needle)                                                            \
  EXPECT_NE((text).find(needle), std::string::npos) << "missing '" << (needle) << "' in:\n" \
                                                    << (text)

TEST_F(SweepErrors, UnknownKey) {
  const auto config = write_sweep(dir_ + "/unknown_key.yaml", data_, kFullGrid,
                                  "  batch_size: 4\n  bach_size: 8\n");
  const auto err = expect_failure("unknown_key", config);
  EXPECT_HAS(err, "unknown_key.yaml:");
  EXPECT_HAS(err, "bach_size");
}

TEST_F(SweepErrors, UnknownKeyFromSet) {
  const auto config = write_sweep(dir_ + "/ok.yaml", data_, kFullGrid);
  const auto err = expect_failure("unknown_set", config, "--set runtime.nope=1");
  EXPECT_HAS(err, "nope");
}

TEST_F(SweepErrors, MissingCheckpoint) {
  const auto config =
      write_sweep(dir_ + "/missing_ckpt.yaml", data_,
                  "  variants: [XS]\n  epochs: [1, 7]\n  protocols: [2]\n  flip: [false]\n");
  const auto err = expect_failure("missing_ckpt", config);
  EXPECT_HAS(err, "checkpoints/XS/snapshot_7.pth.tar: checkpoint not found");
}

TEST_F(SweepErrors, WrongVariantSaysWhatTheCheckpointLooksLike) {
  std::string yaml =
      slurp(write_sweep(dir_ + "/tmp.yaml", data_,
                        "  variants: [S]\n  epochs: [1]\n  protocols: [2]\n  flip: [false]\n"));
  // Point S at the XS weights.
  yaml.replace(yaml.find("{variant}"), 9, "XS");
  spit(dir_ + "/wrong_variant.yaml", yaml);
  const auto err = expect_failure("wrong_variant", dir_ + "/wrong_variant.yaml");
  EXPECT_HAS(err,
             "snapshot_1.pth.tar looks like XS (head 128, depth_dim 32) but the sweep asks for S");
}

TEST_F(SweepErrors, EveryProblemIsListedAtOnce) {
  std::string yaml =
      slurp(write_sweep(dir_ + "/tmp2.yaml", data_,
                        "  variants: [S]\n  epochs: [1, 7]\n  protocols: [2]\n  flip: [false]\n"));
  yaml.replace(yaml.find("{variant}"), 9, "XS");
  spit(dir_ + "/two_problems.yaml", yaml);
  const auto err = expect_failure("two_problems", dir_ + "/two_problems.yaml");
  EXPECT_HAS(err, "cnp_sweep: error: 2 problems");
  EXPECT_HAS(err, "snapshot_7.pth.tar: checkpoint not found");
  EXPECT_HAS(err, "looks like XS");
}

TEST_F(SweepErrors, EmptyGrid) {
  const auto config =
      write_sweep(dir_ + "/empty_grid.yaml", data_,
                  "  variants: [XS]\n  epochs: [1]\n  protocols: []\n  flip: [false]\n");
  const auto err = expect_failure("empty_grid", config);
  EXPECT_HAS(err, "protocols");
}

TEST_F(SweepErrors, BadEpochRange) {
  const auto config =
      write_sweep(dir_ + "/bad_range.yaml", data_,
                  "  variants: [XS]\n  epochs: \"70-60\"\n  protocols: [2]\n  flip: [false]\n");
  const auto err = expect_failure("bad_range", config);
  EXPECT_HAS(err, "bad epoch range '70-60'");
}

TEST_F(SweepErrors, UnreadableDataset) {
  std::string yaml = slurp(write_sweep(dir_ + "/tmp3.yaml", data_, kFullGrid));
  yaml.replace(yaml.find("root: " + data_), 6 + data_.size(), "root: " + dir_ + "/no_such_dataset");
  // Checkpoints still come from the real data.
  spit(dir_ + "/no_dataset.yaml", yaml);
  const auto err = expect_failure("no_dataset", dir_ + "/no_dataset.yaml");
  EXPECT_HAS(err, dir_ + "/no_such_dataset");
}

// A corrupt image found while decoding: without skip_bad_samples the sweep fails
// naming image and sample and writes no result of that pass; with it, the sample is
// skipped and counted.
TEST_F(SweepErrors, CorruptImageFailsOrIsSkipped) {
  const std::string bad_data = dir_ + "/bad_data";
  if (!fs::exists(bad_data + "/.ready")) {
    fs::remove_all(bad_data);
    fs::copy(data_, bad_data, fs::copy_options::recursive);
  }
  // The first S9 sample in the reference order: action 2, subaction 1, camera 1, frame 0.
  const std::string image =
      bad_data + "/images/s_09_act_02_subact_01_ca_01/s_09_act_02_subact_01_ca_01_000001.jpg";
  ASSERT_TRUE(fs::exists(image));
  spit(image, std::string(300, 'x'));  // exists but is no JPEG: found only when decoding
  std::string yaml =
      slurp(write_sweep(dir_ + "/tmp4.yaml", data_,
                        "  variants: [XS]\n  epochs: [1]\n  protocols: [1, 2]\n  flip: [false]\n"));
  yaml.replace(yaml.find("root: " + data_), 6 + data_.size(), "root: " + bad_data);
  spit(dir_ + "/corrupt.yaml", yaml);

  const std::string out = dir_ + "/out_corrupt";
  fs::remove_all(out);
  auto failed = run(sweep_command(2, dir_ + "/corrupt.yaml", "--output " + out), dir_ + "/corrupt");
  EXPECT_EQ(failed.code, 1) << failed.err;
  EXPECT_HAS(failed.err, "s_09_act_02_subact_01_ca_01_000001.jpg");
  EXPECT_HAS(failed.err, "sample ");
  EXPECT_FALSE(fs::exists(out + "/jobs/XS_e1_p2_noflip.json"));
  EXPECT_FALSE(fs::exists(out + "/predictions/XS_e1_p2_noflip.json"));

  auto skipped = run(sweep_command(3, dir_ + "/corrupt.yaml",
                                   "--output " + out + " --set dataset.skip_bad_samples=true"),
                     dir_ + "/corrupt_skip");
  ASSERT_EQ(skipped.code, 0) << skipped.err;
  const auto p2 = read_json(out + "/jobs/XS_e1_p2_noflip.json");
  const auto p1 = read_json(out + "/jobs/XS_e1_p1_noflip.json");
  EXPECT_EQ(p2.at("metrics").at("num_samples"), 7);
  EXPECT_EQ(p1.at("metrics").at("num_samples"), 4);  // S11 only: the S9 image does not count
  EXPECT_EQ(read_json(out + "/predictions/XS_e1_p2_noflip.json").size(), 7u);
  EXPECT_EQ(p2.at("skipped_samples"), 1);
  EXPECT_EQ(p1.at("skipped_samples"), 0);
}

// A failure on one rank outside the agreed error steps (the others already wait in
// a collective) ends every rank quickly with that rank's message. The 60 s bound is
// a hang check (the sweep itself takes a few seconds), not a timing test.
TEST_F(SweepErrors, OneRankFailingEndsEveryRank) {
  const auto config =
      write_sweep(dir_ + "/fault.yaml", data_,
                  "  variants: [XS]\n  epochs: [1]\n  protocols: [2]\n  flip: [false]\n");
  for (const std::string stage : {"gather", "alloc", "gather_setup"}) {
    const std::string out = dir_ + "/out_fault_" + stage;
    fs::remove_all(out);
    const auto begin = std::chrono::steady_clock::now();
    const auto result = run("CNP_TEST_FAIL_RANK=1 CNP_TEST_FAIL_STAGE=" + stage + " " +
                                sweep_command(2, config, "--output " + out),
                            dir_ + "/fault_" + stage);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
    EXPECT_EQ(result.code, 1) << stage << ": " << result.err;
    EXPECT_LT(seconds, 60.0) << stage << ": the other rank hung";
    EXPECT_HAS(result.err, "(rank 1); stopping every rank");
    EXPECT_HAS(result.err, stage == "alloc" ? std::string("out of memory")
                                            : "injected test failure at " + stage);
    EXPECT_FALSE(fs::exists(out + "/jobs")) << stage;
  }
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
  const std::vector<std::pair<std::string, int>> cases = {
      {"planning", SIGTERM}, {"validation", SIGINT}, {"cache", SIGTERM}};
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
    EXPECT_HAS(result.err,
               "stopped by signal " + std::to_string(signal_number) + " before the forward passes");
    EXPECT_FALSE(fs::exists(scratch + "/out/jobs")) << stage;
  }
}

// A non-finite result fails its job alone, naming the checkpoint: nothing is written
// for it, the other jobs finish, the sweep exits 1, and the folder stays usable.
TEST_F(SweepErrors, NonFiniteResultFailsOnlyItsJob) {
  // snapshot_3: the epoch-1 weights with every large storage set to NaN.
  const std::string nan_checkpoint = data_ + "/checkpoints/XS/snapshot_3.pth.tar";
  if (!fs::exists(nan_checkpoint)) {
    spit(dir_ + "/nan.py", R"PY(
import sys, zipfile, struct
src, dst = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst + '.tmp', 'w', zipfile.ZIP_STORED) as zout:
    for info in zin.infolist():
        data = zin.read(info.filename)
        if '/data/' in info.filename and len(data) >= 4096 and len(data) % 4 == 0:
            data = struct.pack('<f', float('nan')) * (len(data) // 4)
        zout.writestr(info, data)
import os; os.replace(dst + '.tmp', dst)
)PY");
    const auto made = run(std::string(CNP_PYTHON) + " " + dir_ + "/nan.py " + data_ +
                              "/checkpoints/XS/snapshot_1.pth.tar " + nan_checkpoint,
                          dir_ + "/nan");
    ASSERT_EQ(made.code, 0) << made.err;
  }
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
  EXPECT_TRUE(fs::exists(out + "/jobs/XS_e1_p2_flip.json"));
  EXPECT_TRUE(fs::exists(out + "/jobs/XS_e1_p1_flip.json"));
  EXPECT_FALSE(fs::exists(out + "/jobs/XS_e3_p2_flip.json"));
  EXPECT_FALSE(fs::exists(out + "/predictions/XS_e3_p2_flip.json"));
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

// A camera with focal length 0 would make the camera coordinates of its samples
// infinite. The data reader refuses it before any compute (issue 11.5, data side):
// a one-line error naming the camera file, the sample and the focal length.
TEST_F(SweepErrors, ZeroFocalLengthFailsTheJob) {
  const std::string bad_data = dir_ + "/focal0_data";
  if (!fs::exists(bad_data + "/.ready")) {
    fs::remove_all(bad_data);
    fs::copy(data_, bad_data, fs::copy_options::recursive);
    const auto edit = run(std::string(CNP_PYTHON) + " -c \"import json; p='" + bad_data +
                              "/annotations/Human36M_subject11_camera.json'; d=json.load(open(p)); "
                              "d['1']['f']=[0.0, 0.0]; json.dump(d, open(p, 'w'))\"",
                          dir_ + "/focal0_edit");
    ASSERT_EQ(edit.code, 0) << edit.err;
  }
  std::string yaml =
      slurp(write_sweep(dir_ + "/tmp5.yaml", data_,
                        "  variants: [XS]\n  epochs: [1]\n  protocols: [1]\n  flip: [false]\n"));
  yaml.replace(yaml.find("root: " + data_), 6 + data_.size(), "root: " + bad_data);
  spit(dir_ + "/focal0.yaml", yaml);
  const std::string out = dir_ + "/out_focal0";
  fs::remove_all(out);
  const auto result =
      run(sweep_command(2, dir_ + "/focal0.yaml", "--output " + out), dir_ + "/focal0");
  EXPECT_EQ(result.code, 1) << result.err;
  EXPECT_HAS(result.err, "Human36M_subject11_camera.json: image id");
  EXPECT_HAS(result.err, "camera 1 has focal length [0, 0]");
  EXPECT_FALSE(fs::exists(out + "/jobs/XS_e1_p1_noflip.json"));
}

}  // namespace
}  // namespace cnp::sweep_test
