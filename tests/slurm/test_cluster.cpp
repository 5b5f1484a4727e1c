// Sweeps through a real single-node Slurm (scripts/slurm_local.sh): a submitted sweep gives
// the results of a direct `mpirun cnp_sweep`; a signalled sweep stops with exit code 3, keeps
// its finished jobs and resumes on resubmission (or by itself with --requeue).
// Skips only when the Slurm binaries are missing; a cluster that fails to start is a failure.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <regex>

#include "slurm_test_util.h"

namespace cnp::slurm_test {
namespace {

using nlohmann::json;

std::string cnp_exe() {
  return CNP_EXE;
}

struct JobInfo {
  std::string state;
  std::string exit_code;  // "code:signal"
  int restarts = 0;
};

class SlurmCluster : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    work_ = std::string(CNP_TEST_WORK) + "/slurm_cluster";
    fs::create_directories(work_);
    const auto tools = sh(
        "export PATH=$PATH:/usr/sbin; for t in munged slurmctld slurmd sbatch srun scontrol sinfo "
        "scancel; do command -v $t >/dev/null || { echo $t; exit 1; }; done",
        work_ + "/tools");
    if (tools.code != 0) {
      skip_reason_ = "Slurm binary '" + tools.out.substr(0, tools.out.size() - 1) +
                     "' not installed (scripts/install_deps.sh installs it)";
      return;
    }
    const std::string state =
        std::getenv("CNP_SLURM_DIR") ? std::getenv("CNP_SLURM_DIR") : "/tmp/cnp-slurm";
    ::setenv("SLURM_CONF", (state + "/slurm.conf").c_str(), 1);
    const std::string script = std::string(CNP_SOURCE_DIR) + "/scripts/slurm_local.sh";
    // A cluster a developer started by hand is reused (and left running).
    if (sh("bash " + script + " status", work_ + "/status").code != 0) {
      const auto start = sh("bash " + script + " start", work_ + "/start");
      if (start.code != 0) {
        start_error_ = "slurm_local.sh start failed: " + start.out + start.err;
        return;
      }
      started_ = true;
    }
    // Three XS checkpoints: one forward pass each, so a sweep can be stopped between passes.
    data_ = work_ + "/data";
    if (!fs::exists(data_ + "/.ready")) {
      const auto synth = sh(cnp_exe() + " synth " + data_ +
                                " --kept-frames 1 --image-size 320 --variants XS --epochs 1,2,3",
                            work_ + "/synth");
      if (synth.code != 0) {
        start_error_ = "cnp synth failed: " + synth.err;
        return;
      }
      // Only action 2, cameras 1-2: 8 samples per pass (4 in protocol 1), seconds per pass.
      write(work_ + "/trim.py", R"PY(
import glob, json, os, sys
kept_ids = set()
for path in glob.glob(os.path.join(sys.argv[1], 'annotations', '*_data.json')):
    with open(path) as f:
        data = json.load(f)
    data['images'] = [i for i in data['images'] if i['action_idx'] == 2 and i['cam_idx'] <= 2]
    ids = {i['id'] for i in data['images']}
    kept_ids |= ids
    data['annotations'] = [a for a in data['annotations'] if a['image_id'] in ids]
    with open(path, 'w') as f:
        json.dump(data, f)
for path in glob.glob(os.path.join(sys.argv[1], 'bbox_root', '*.json')):
    with open(path) as f:
        boxes = json.load(f)
    with open(path, 'w') as f:
        json.dump([b for b in boxes if b['image_id'] in kept_ids], f)
)PY");
      const auto trim =
          sh(std::string(CNP_PYTHON) + " " + work_ + "/trim.py " + data_, work_ + "/trim");
      if (trim.code != 0) {
        start_error_ = "trimming the synthetic data failed: " + trim.err;
        return;
      }
      write(data_ + "/.ready", "");
    }
  }

  static void TearDownTestSuite() {
    if (started_)
      sh("bash " + std::string(CNP_SOURCE_DIR) + "/scripts/slurm_local.sh stop", work_ + "/stop");
  }

  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_;
    ASSERT_TRUE(start_error_.empty()) << start_error_;
    dir_ = test_dir(std::string("slurm_cluster_") +
                    ::testing::UnitTest::GetInstance()->current_test_info()->name());
  }

  static std::string write_sweep(const std::string& epochs, const std::string& dir) {
    const std::string path = dir + "/sweep.yaml";
    write(path, "name: slurmtest\noutput: " + dir + "/slurm_out\ndataset:\n  root: " + data_ +
                    "\n  bbox: gt\nmodel:\n  checkpoint: \"" + data_ +
                    "/checkpoints/{variant}/snapshot_{epoch}.pth.tar\"\nsweep:\n  variants: [XS]\n"
                    "  epochs: " +
                    epochs +
                    "\n  protocols: [1, 2]\n  flip: [false, true]\n"
                    "runtime:\n  device: cpu\n  threads_per_rank: 1\n  batch_size: 2\n");
    return path;
  }
  std::string write_sweep(const std::string& epochs) { return write_sweep(epochs, dir_); }

  Output submit(const std::string& args) {
    return sh("cd " + dir_ + " && timeout 900 " + cnp_exe() + " slurm submit " + args,
              dir_ + "/submit");
  }

  // The sweep over epochs 1-3 run once directly with mpirun (2 ranks), shared by the tests of
  // this process (both suites): results of a job do not depend on the rest of the grid. Returns
  // its output dir. Never reused from an earlier test process: a build whose numbers moved by
  // up to 6e-5 mm failed against the previous build's run, cached in the test folder.
  static std::string direct_run() {
    const std::string dir = work_ + "/direct", output = dir + "/out";
    static bool done = false;
    if (done) return output;
    fs::remove_all(dir);
    const std::string config = write_sweep(kEpochs, dir);
    const auto r = sh("cd " + dir +
                          " && OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout "
                          "900 " +
                          CNP_MPIEXEC + " -np 2 --oversubscribe --bind-to none " + CNP_SWEEP_EXE +
                          " " + config + " --set output=" + output,
                      dir);
    EXPECT_EQ(r.code, 0) << r.err;
    done = r.code == 0;
    return output;
  }

  JobInfo job_info(const std::string& id) {
    const auto r = sh("scontrol show job " + id, dir_ + "/scontrol");
    JobInfo info;
    std::smatch m;
    if (std::regex_search(r.out, m, std::regex(R"(JobState=(\S+))"))) info.state = m[1];
    if (std::regex_search(r.out, m, std::regex(R"(ExitCode=(\S+))"))) info.exit_code = m[1];
    if (std::regex_search(r.out, m, std::regex(R"(Restarts=(\d+))")))
      info.restarts = std::stoi(m[1]);
    return info;
  }

  bool finished(const std::string& state) {
    return state == "COMPLETED" || state == "FAILED" || state == "CANCELLED" ||
           state == "TIMEOUT" || state == "PREEMPTED" || state == "NODE_FAIL";
  }

  static std::vector<std::string> job_files(const std::string& output) {
    std::vector<std::string> names;
    if (!fs::exists(output + "/jobs")) return names;
    for (const auto& e : fs::directory_iterator(output + "/jobs"))
      if (e.path().extension() == ".json") names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

  // Every job JSON in `a` has its twin in `b`: same "job", metrics equal to 1e-6 (timing ignored).
  static void expect_same_results(const std::string& a, const std::string& b, size_t jobs) {
    const auto names = job_files(a);
    ASSERT_EQ(names.size(), jobs) << a;
    for (const auto& name : names) {
      ASSERT_TRUE(fs::exists(b + "/jobs/" + name)) << b << ": no " << name;
      const json ja = json::parse(slurp(a + "/jobs/" + name));
      const json jb = json::parse(slurp(b + "/jobs/" + name));
      EXPECT_EQ(ja.at("job"), jb.at("job")) << name;
      expect_close(ja.at("metrics"), jb.at("metrics"), name + ":metrics");
    }
  }

  static void expect_close(const json& a, const json& b, const std::string& where) {
    if (a.is_number() && b.is_number()) {
      EXPECT_NEAR(a.get<double>(), b.get<double>(), 1e-6) << where;
    } else if (a.is_object() && b.is_object()) {
      ASSERT_EQ(a.size(), b.size()) << where;
      for (auto it = a.begin(); it != a.end(); ++it) {
        ASSERT_TRUE(b.contains(it.key())) << where << "." << it.key();
        expect_close(it.value(), b.at(it.key()), where + "." + it.key());
      }
    } else {
      EXPECT_EQ(a, b) << where;
    }
  }

  static inline const std::string kEpochs = "[1, 2, 3]";  // 3 passes, 12 jobs
  static inline std::string work_, data_, skip_reason_, start_error_;
  static inline bool started_ = false;
  std::string dir_;
};

TEST_F(SlurmCluster, SubmittedSweepMatchesDirectRun) {
  const std::string config = write_sweep("[1]");
  const auto r = submit(config + " --ntasks-per-node 2 --wait");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  const std::string id = r.out.substr(0, r.out.find('\n'));
  ASSERT_TRUE(std::regex_match(id, std::regex(R"(\d+)"))) << r.out;
  const JobInfo info = job_info(id);
  EXPECT_EQ(info.state, "COMPLETED");
  EXPECT_EQ(info.exit_code, "0:0");

  const std::string out = dir_ + "/slurm_out";
  EXPECT_TRUE(fs::exists(out + "/slurm/slurmtest.sbatch"));
  const std::string log = slurp(out + "/slurm/slurmtest-" + id + ".out");
  EXPECT_NE(log.find(": srun, 2 ranks x 1 threads"), std::string::npos) << log;
  EXPECT_NE(log.find("cnp-slurm: sweep finished"), std::string::npos) << log;

  expect_same_results(out, direct_run(), 4);
}

// Submits a 3-pass sweep, sends `scancel --signal=TERM` once the first job result exists,
// and returns the job id after checking the stop was clean.
struct Preempted {
  std::string id;
  size_t finished_jobs = 0;
};

class SlurmPreempt : public SlurmCluster {
 protected:
  Preempted submit_and_preempt(const std::string& config, const std::string& extra) {
    Preempted p;
    const auto r = submit(config + " --ntasks-per-node 2" + extra);
    EXPECT_EQ(r.code, 0) << r.err;
    p.id = r.out.substr(0, r.out.find('\n'));
    const std::string out = dir_ + "/slurm_out";
    EXPECT_TRUE(wait_until([&] { return !job_files(out).empty(); }, 600))
        << "no job finished; state " << job_info(p.id).state;
    // The steps only (scancel's default): the srun-launched cnp_sweep ranks get SIGTERM.
    EXPECT_EQ(sh("scancel --signal=TERM " + p.id, dir_ + "/scancel").code, 0);
    return p;
  }
};

TEST_F(SlurmPreempt, SignalledSweepStopsAndResumesOnResubmission) {
  const std::string config = write_sweep(kEpochs);
  const std::string out = dir_ + "/slurm_out";
  Preempted p = submit_and_preempt(config, "");
  ASSERT_TRUE(wait_until([&] { return finished(job_info(p.id).state); }, 300));
  const JobInfo info = job_info(p.id);
  EXPECT_EQ(info.state, "FAILED");
  EXPECT_EQ(info.exit_code, "3:0");
  const std::string log = slurp(out + "/slurm/slurmtest-" + p.id + ".out") +
                          slurp(out + "/slurm/slurmtest-" + p.id + ".err");
  EXPECT_NE(log.find("preempted"), std::string::npos) << log;
  EXPECT_NE(log.find("cnp-slurm: sweep preempted (exit 3)"), std::string::npos) << log;
  EXPECT_EQ(log.find("requeueing"), std::string::npos) << log;

  const auto done = job_files(out);
  ASSERT_GT(done.size(), 0u);
  ASSERT_LT(done.size(), 12u) << "the sweep finished before the signal; make it longer";
  for (const auto& name : done) {
    const json j = json::parse(slurp(out + "/jobs/" + name));  // complete, parseable
    EXPECT_TRUE(j.at("metrics").contains("mpjpe")) << name;
  }

  const auto again = submit(config + " --ntasks-per-node 2 --wait");
  ASSERT_EQ(again.code, 0) << again.out << again.err;
  const json summary = json::parse(slurp(out + "/run_summary.json"));
  EXPECT_EQ(summary.at("jobs_skipped").get<size_t>(), done.size());
  EXPECT_GT(summary.at("passes_skipped").get<int>(), 0);

  const std::string direct = direct_run();
  const json fresh = json::parse(slurp(direct + "/run_summary.json"));
  EXPECT_EQ(fresh.at("passes_computed").get<int>(), 3);
  EXPECT_LT(summary.at("passes_computed").get<int>(), fresh.at("passes_computed").get<int>());
  expect_same_results(out, direct, 12);
  const std::string id2 = again.out.substr(0, again.out.find('\n'));
  const std::string log2 = slurp(out + "/slurm/slurmtest-" + id2 + ".out") +
                           slurp(out + "/slurm/slurmtest-" + id2 + ".err");
  EXPECT_NE(log2.find("skipped"), std::string::npos) << log2;
}

TEST_F(SlurmPreempt, RequeuedSweepComesBackAndFinishes) {
  const std::string config = write_sweep(kEpochs);
  const std::string out = dir_ + "/slurm_out";
  Preempted p = submit_and_preempt(config, " --requeue");
  ASSERT_TRUE(wait_until([&] { return job_info(p.id).restarts >= 1; }, 300));
  // Slurm holds a requeued job until the old run's credential expires (cred_expire, 20 s in
  // scripts/slurm_local.sh), then starts it by itself. (Forcing StartTime=now as soon as the old
  // run's step daemons were gone raced that revocation: the job failed.)
  ASSERT_TRUE(wait_until([&] { return job_info(p.id).state == "COMPLETED"; }, 600))
      << job_info(p.id).state;
  EXPECT_EQ(job_info(p.id).restarts, 1);
  // --open-mode=append: both runs in one log.
  const std::string log = slurp(out + "/slurm/slurmtest-" + p.id + ".out");
  EXPECT_NE(log.find("cnp-slurm: requeueing job " + p.id), std::string::npos) << log;
  EXPECT_NE(log.find("restart 1 on"), std::string::npos) << log;
  EXPECT_NE(log.find("cnp-slurm: sweep finished"), std::string::npos) << log;
  expect_same_results(out, direct_run(), 12);
  const json summary = json::parse(slurp(out + "/run_summary.json"));
  EXPECT_GT(summary.at("jobs_skipped").get<int>(), 0);
  EXPECT_LT(summary.at("passes_computed").get<int>(), 3);
}

}  // namespace
}  // namespace cnp::slurm_test
