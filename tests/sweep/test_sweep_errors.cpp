// The catalogue of bad sweeps and faults (issue 11): one table, each case run for
// real (mpirun, under `timeout` as a hang check), asserting the exit code, a message
// naming the thing at fault, and that no result file appeared or changed: each case
// runs into a copy of a folder that already holds a finished job, and the jobs/ and
// predictions/ files must be byte-identical afterwards (only the listed files of
// other, healthy jobs may appear). Validation problems found beyond the sweep file
// are also asserted through --dry-run; a sweep-file error fails the same way there. Scenarios that
// need more than one run (signals, the lock, skipping, a folder staying usable) follow the table.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>

#include "model/checkpoint.h"
#include "sweep_fixture.h"

namespace cnp::sweep_test {
namespace {

#define EXPECT_HAS(text, needle)                                                            \
  EXPECT_NE((text).find(needle), std::string::npos) << "missing '" << (needle) << "' in:\n" \
                                                    << (text)

const char* kOneJob = "  variants: [XS]\n  epochs: [1]\n  protocols: [2]\n  flip: [false]\n";

// The config at `config` with dataset.root `from` replaced by `to`, saved beside it.
std::string with_root(const std::string& config, const std::string& from, const std::string& to) {
  std::string yaml = slurp(config);
  yaml.replace(yaml.find("root: " + from), 6 + from.size(), "root: " + to);
  const std::string path = config + ".root.yaml";
  spit(path, yaml);
  return path;
}

// name -> content of every file under <out>/jobs and <out>/predictions.
std::map<std::string, std::string> result_files(const std::string& out) {
  std::map<std::string, std::string> files;
  for (const char* folder : {"jobs", "predictions"}) {
    if (!fs::exists(fs::path(out) / folder)) continue;
    for (const auto& entry : fs::directory_iterator(fs::path(out) / folder))
      files[std::string(folder) + "/" + entry.path().filename().string()] =
          slurp(entry.path().string());
  }
  return files;
}

// A copy of the epoch-1 checkpoint as epoch `epoch`, without the first BatchNorm
// running_var when `drop_key`, and with `epoch_field` as its own 'epoch' entry.
std::string derived_checkpoint(const std::string& data, int epoch, bool drop_key,
                               std::optional<int64_t> epoch_field) {
  const std::string path = data + "/checkpoints/XS/snapshot_" + std::to_string(epoch) + ".pth.tar";
  if (fs::exists(path)) return path;
  model::Checkpoint checkpoint =
      model::read_checkpoint(data + "/checkpoints/XS/snapshot_1.pth.tar");
  if (drop_key) {
    auto it = std::find_if(checkpoint.tensors.begin(), checkpoint.tensors.end(), [](const auto& t) {
      return t.first.find("running_var") != std::string::npos;
    });
    EXPECT_NE(it, checkpoint.tensors.end());
    checkpoint.tensors.erase(it);
  }
  model::write_checkpoint_zip(path, checkpoint.tensors, epoch_field,
                              "snapshot_" + std::to_string(epoch) + ".pth",
                              checkpoint.container_key);
  return path;
}

// snapshot_3: the epoch-1 weights with every large storage set to NaN.
void nan_checkpoint(const std::string& dir_, const std::string& data_) {
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
    EXPECT_EQ(made.code, 0) << made.err;
  }
}

// A copy of the data set whose first S9 image (action 2, subaction 1, camera 1,
// frame 0) exists but is no JPEG: found only when decoding.
std::string corrupt_data(const std::string& dir_, const std::string& data_) {
  const std::string bad_data = dir_ + "/bad_data";
  if (!fs::exists(bad_data + "/.ready")) {
    fs::remove_all(bad_data);
    fs::copy(data_, bad_data, fs::copy_options::recursive);
    spit(bad_data + "/images/s_09_act_02_subact_01_ca_01/s_09_act_02_subact_01_ca_01_000001.jpg",
         std::string(300, 'x'));
    spit(bad_data + "/.ready", "");
  }
  return bad_data;
}

// A copy of the data set whose camera 1 of S11 has focal length 0.
std::string focal0_data(const std::string& dir_, const std::string& data_) {
  const std::string bad_data = dir_ + "/focal0_data";
  if (!fs::exists(bad_data + "/.ready")) {
    fs::remove_all(bad_data);
    fs::copy(data_, bad_data, fs::copy_options::recursive);
    const auto edit = run(std::string(CNP_PYTHON) + " -c \"import json; p='" + bad_data +
                              "/annotations/Human36M_subject11_camera.json'; d=json.load(open(p)); "
                              "d['1']['f']=[0.0, 0.0]; json.dump(d, open(p, 'w'))\"",
                          dir_ + "/focal0_edit");
    EXPECT_EQ(edit.code, 0) << edit.err;
    spit(bad_data + "/.ready", "");
  }
  return bad_data;
}

class SweepErrors : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = test_dir("sweep_errors");
    data_ = make_dataset(dir_);
    // A finished job (XS e2, protocol 1, flip) that no case's grid contains.
    baseline_ = dir_ + "/baseline";
    if (!fs::exists(baseline_ + "/jobs/XS_e2_p1_flip_gt.json")) {
      fs::remove_all(baseline_);
      const auto config =
          write_sweep(dir_ + "/baseline.yaml", data_,
                      "  variants: [XS]\n  epochs: [2]\n  protocols: [1]\n  flip: [true]\n");
      const auto made =
          run(sweep_command(1, config, "--output " + baseline_), dir_ + "/baseline_run");
      EXPECT_EQ(made.code, 0) << made.err;
    }
  }
  static std::string dir_, data_, baseline_;
};
std::string SweepErrors::dir_, SweepErrors::data_, SweepErrors::baseline_;

using ConfigMaker = std::function<std::string(const std::string&, const std::string&)>;

struct Case {
  Case(std::string name_, int ranks_, ConfigMaker config_, std::string extra_, std::string env_,
       std::vector<std::string> needles_, bool dry_run_reports_ = false, int code_ = 1,
       std::vector<std::string> may_appear_ = {})
      : name(std::move(name_)),
        ranks(ranks_),
        config(std::move(config_)),
        extra(std::move(extra_)),
        env(std::move(env_)),
        needles(std::move(needles_)),
        dry_run_reports(dry_run_reports_),
        code(code_),
        may_appear(std::move(may_appear_)) {}
  std::string name;
  int ranks;
  ConfigMaker config;  // writes the sweep file (and any bad input), returns its path
  std::string extra;   // command-line arguments (@DIR@: the test folder)
  std::string env;     // environment assignments
  std::vector<std::string> needles;
  bool dry_run_reports;  // a validation problem: --dry-run exits 1 naming it too
  int code;
  std::vector<std::string> may_appear;  // result files of healthy jobs
};

ConfigMaker grid(const std::string& name, const std::string& g, const std::string& runtime = "") {
  return [=](const std::string& dir, const std::string& data) {
    return write_sweep(dir + "/" + name + ".yaml", data, g, runtime);
  };
}

// The XS weights run as `variant` (whatever the variant is).
ConfigMaker xs_as(const std::string& name, const std::string& variant, const std::string& epochs,
                  const std::string& variants_yaml = "") {
  return [=](const std::string& dir, const std::string& data) {
    std::string yaml = slurp(write_sweep(dir + "/" + name + ".tmp.yaml", data,
                                         "  variants: [" + variant + "]\n  epochs: [" + epochs +
                                             "]\n  protocols: [2]\n  flip: [false]\n"));
    yaml.replace(yaml.find("{variant}"), 9, "XS");
    if (!variants_yaml.empty()) yaml.replace(yaml.find("sweep:\n"), 7, variants_yaml + "sweep:\n");
    spit(dir + "/" + name + ".yaml", yaml);
    return dir + "/" + name + ".yaml";
  };
}

std::vector<Case> catalogue() {
  std::vector<Case> cases;
  auto add = [&](Case c) { cases.push_back(std::move(c)); };
  // The sweep file.
  add({"unknown_key",
       2,
       grid("unknown_key", kOneJob, "  batch_size: 4\n  bach_size: 8\n"),
       "",
       "",
       {"unknown_key.yaml:", "bach_size"},
       true});
  add({"config_is_a_folder",
       1,
       [](const std::string& dir, const std::string&) {
         fs::create_directories(dir + "/a_folder.yaml");
         return dir + "/a_folder.yaml";
       },
       "",
       "",
       {"a_folder.yaml: is a folder, not a sweep file (YAML)"}});
  add({"unknown_set", 1, grid("one_job", kOneJob), "--set runtime.nope=1", "", {"nope"}});
  add({"empty_grid",
       1,
       grid("empty_grid", "  variants: [XS]\n  epochs: [1]\n  protocols: []\n  flip: [false]\n"),
       "",
       "",
       {"protocols"}});
  add({"bad_epoch_range",
       1,
       grid("bad_range",
            "  variants: [XS]\n  epochs: \"70-60\"\n  protocols: [2]\n  flip: [false]\n"),
       "",
       "",
       {"bad epoch range '70-60'"}});
  add({"threads_per_rank_bound",
       1,
       grid("one_job", kOneJob),
       "--set runtime.threads_per_rank=1000000",
       "",
       {"'runtime.threads_per_rank' is 1000000; at most 256 is allowed"}});
  add({"batch_size_bound",
       1,
       grid("one_job", kOneJob),
       "--set runtime.batch_size=5000",
       "",
       {"'runtime.batch_size' is 5000; at most 4096 is allowed"}});
  // Checkpoints.
  add({"missing_checkpoint",
       2,
       grid("missing_ckpt",
            "  variants: [XS]\n  epochs: [1, 7]\n  protocols: [2]\n  flip: [false]\n"),
       "",
       "",
       {"checkpoints/XS/snapshot_7.pth.tar: checkpoint not found (model.checkpoint for XS)"},
       true});
  add({"checkpoint_is_a_folder",
       1,
       [](const std::string& dir, const std::string& data) {
         fs::create_directories(data + "/checkpoints/XS/snapshot_8.pth.tar");
         return write_sweep(dir + "/ckpt_folder.yaml", data,
                            "  variants: [XS]\n  epochs: [8]\n  protocols: [2]\n  flip: [false]\n");
       },
       "",
       "",
       {"snapshot_8.pth.tar: is a folder, not a checkpoint file (model.checkpoint"},
       true});
  add({"wrong_variant",
       1,
       xs_as("wrong_variant", "S", "1"),
       "",
       "",
       {"snapshot_1.pth.tar looks like XS (head 128, depth_dim 32) but the sweep asks for S"}});
  add({"every_problem_listed",
       1,
       xs_as("two_problems", "S", "1, 7"),
       "",
       "",
       {"cnp_sweep: error: 2 problems", "snapshot_7.pth.tar: checkpoint not found",
        "looks like XS"}});
  add({"missing_state_dict_key",
       2,
       [](const std::string& dir, const std::string& data) {
         derived_checkpoint(data, 6, /*drop_key=*/true, 6);
         return write_sweep(dir + "/missing_key.yaml", data,
                            "  variants: [XS]\n  epochs: [6]\n  protocols: [2]\n  flip: [false]\n");
       },
       "",
       "",
       {"snapshot_6.pth.tar", "missing key", "running_var"},
       true});
  add({"joint_count_mismatch",
       2,
       xs_as("joints", "XS17", "1",
             "  variants:\n    XS17:\n      depths: [3, 3, 9, 3]\n      dims: [48, 96, 192, 384]\n"
             "      head_channels: 128\n      head_upsample: [true, true, false]\n"
             "      depth_dim: 32\n      joints: 17\n"),
       "",
       "",
       {"variant XS17 predicts 17 joints but the data set has 18 (model.variants.XS17.joints)"},
       true});
  // Runtime and output.
  add({"fp16_on_cpu",
       2,
       grid("one_job", kOneJob),
       "--set runtime.precision=fp16",
       "",
       {"runtime.precision: fp16 needs a CUDA device"},
       true});
  add({"output_is_a_file",
       2,
       [](const std::string& dir, const std::string& data) {
         spit(dir + "/output_is_a_file", "x");
         return write_sweep(dir + "/one_job.yaml", data, kOneJob);
       },
       "--set output=@DIR@/output_is_a_file",
       "",
       {"output: @DIR@/output_is_a_file is a file, not a folder"},
       true});
  add({"output_unwritable",
       2,
       grid("one_job", kOneJob),
       "--set output=/proc/cnp_sweep_out",
       "",
       {"output: /proc/cnp_sweep_out is not writable"},
       true});
  // Data.
  add({"unreadable_dataset",
       2,
       [](const std::string& dir, const std::string& data) {
         return with_root(write_sweep(dir + "/no_dataset.yaml", data, kOneJob), data,
                          dir + "/no_such_dataset");
       },
       "",
       "",
       {"@DIR@/no_such_dataset"},
       true});
  add({"corrupt_image",
       2,
       [](const std::string& dir, const std::string& data) {
         return with_root(
             write_sweep(dir + "/corrupt_fail.yaml", data,
                         "  variants: [XS]\n  epochs: [1]\n  protocols: [1, 2]\n  flip: [false]\n"),
             data, corrupt_data(dir, data));
       },
       "",
       "",
       {"s_09_act_02_subact_01_ca_01_000001.jpg", "sample "}});
  // Non-finite results fail their job alone; the healthy job is written.
  add({"nan_weights",
       2,
       [](const std::string& dir, const std::string& data) {
         nan_checkpoint(dir, data);
         return write_sweep(
             dir + "/nan_cat.yaml", data,
             "  variants: [XS]\n  epochs: [1, 3]\n  protocols: [2]\n  flip: [false]\n");
       },
       "",
       "",
       {"1 job(s) failed", "snapshot_3.pth.tar: job XS_e3_p2_noflip: the network output for sample",
        "not finite"},
       false,
       1,
       {"jobs/XS_e1_p2_noflip_gt.json", "predictions/XS_e1_p2_noflip_gt.json"}});
  add({"focal_length_0",
       2,
       [](const std::string& dir, const std::string& data) {
         return with_root(
             write_sweep(dir + "/focal0.yaml", data,
                         "  variants: [XS]\n  epochs: [1]\n  protocols: [1]\n  flip: [false]\n"),
             data, focal0_data(dir, data));
       },
       "",
       "",
       // Refused while the data set loads (before any compute), naming the file and sample;
       // the runner's non-finite check behind it is exercised by nan_weights.
       {"annotations/Human36M_subject11_camera.json: image id",
        "camera 1 has focal length [0, 0] (must be finite and positive)"},
       true});
  // A failure on rank 1 alone where rank 0 already waits in a collective.
  for (const std::string stage : {"gather", "alloc", "gather_setup"}) {
    add({"rank1_fails_at_" + stage,
         2,
         grid("one_job", kOneJob),
         "",
         "CNP_TEST_FAIL_RANK=1 CNP_TEST_FAIL_STAGE=" + stage,
         {"(rank 1); stopping every rank",
          stage == "alloc" ? std::string("out of memory") : "injected test failure at " + stage}});
  }
  return cases;
}

std::string with_dir(std::string text, const std::string& dir) {
  for (size_t at; (at = text.find("@DIR@")) != std::string::npos;) text.replace(at, 5, dir);
  return text;
}

TEST_F(SweepErrors, Catalogue) {
  for (const auto& c : catalogue()) {
    SCOPED_TRACE(c.name);
    const std::string config = c.config(dir_, data_);
    const std::string extra = with_dir(c.extra, dir_);
    if (c.dry_run_reports) {
      const auto dry = run(sweep_command(1, config, extra + " --dry-run"), dir_ + "/dry_" + c.name);
      EXPECT_EQ(dry.code, 1) << dry.err;
      for (const auto& needle : c.needles) EXPECT_HAS(dry.err, with_dir(needle, dir_));
    }
    const std::string out = dir_ + "/cat_" + c.name;
    fs::remove_all(out);
    fs::copy(baseline_, out, fs::copy_options::recursive);
    const auto before = result_files(out);
    ASSERT_EQ(before.size(), 2u);
    const auto begin = std::chrono::steady_clock::now();
    // A case that sets `output` itself must not have it overridden by --output.
    const bool sets_output = extra.find("output=") != std::string::npos;
    const auto result = run(
        (c.env.empty() ? "" : c.env + " ") +
            sweep_command(c.ranks, config, (sets_output ? "" : "--output " + out + " ") + extra),
        dir_ + "/run_" + c.name);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
    EXPECT_EQ(result.code, c.code) << result.err;
    EXPECT_LT(seconds, 60.0) << "a hang check, not a timing test";
    EXPECT_HAS(result.err, "cnp_sweep: error: ");
    for (const auto& needle : c.needles) EXPECT_HAS(result.err, with_dir(needle, dir_));
    auto after = result_files(out);
    for (const auto& allowed : c.may_appear) {
      EXPECT_EQ(after.count(allowed), 1u) << allowed << " (a healthy job) was not written";
      after.erase(allowed);
    }
    for (const auto& [name, content] : after) {
      const auto it = before.find(name);
      EXPECT_TRUE(it != before.end()) << name << " appeared";
      if (it != before.end()) {
        EXPECT_TRUE(it->second == content) << name << " changed";
      }
    }
    EXPECT_EQ(after.size(), before.size()) << "a result file disappeared";
  }
  EXPECT_EQ(slurp(dir_ + "/output_is_a_file"), "x");
}

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
