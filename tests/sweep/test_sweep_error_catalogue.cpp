// The catalogue of bad sweeps and faults (issue 11): one table, each case run for
// real (mpirun, under `timeout` as a hang check), asserting the exit code, a message
// naming the thing at fault, and that no result file appeared or changed: each case
// runs into a copy of a folder that already holds a finished job, and the jobs/ and
// predictions/ files must be byte-identical afterwards (only the listed files of
// other, healthy jobs may appear). Validation problems found beyond the sweep file
// are also asserted through --dry-run; a sweep-file error fails the same way there. Scenarios that
// need more than one run (signals, the lock, skipping, a folder staying usable) are in
// test_sweep_faults.cpp; the fixture and the bad inputs in sweep_errors_fixture.h.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <map>

#include "sweep_errors_fixture.h"

namespace cnp::sweep_test {
namespace {

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

}  // namespace
}  // namespace cnp::sweep_test
