// `cnp slurm submit` without a cluster: the rendered script (#SBATCH lines, run line, array),
// option errors, sbatch errors (via stand-in sbatch programs), and the script's own signal,
// exit-code and requeue logic run under bash with stand-in srun/mpirun/scontrol.
#include <gtest/gtest.h>

#include <regex>

#include "common/error.h"
#include "slurm/submit.h"
#include "slurm_test_util.h"

namespace cnp::slurm_test {
namespace {

using slurm::render_script;
using slurm::SubmitOptions;
using slurm::SweepTarget;

bool has_line(const std::string& text, const std::string& line) {
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    if (l == line) return true;
  return false;
}

int count_sbatch_lines(const std::string& text) {
  std::istringstream in(text);
  int n = 0;
  for (std::string l; std::getline(in, l);) n += l.rfind("#SBATCH ", 0) == 0;
  return n;
}

SubmitOptions one(const std::string& config = "/data/a.yaml") {
  SubmitOptions o;
  o.configs = {config};
  o.sweep_exe = "/opt/cnp/bin/cnp_sweep";
  return o;
}

const SweepTarget kSweepA{"/data/a.yaml", "ml", "/res/ml"};
const SweepTarget kSweepB{"/data/b.yaml", "sm", "/res/sm"};

TEST(SlurmRender, AllOptions) {
  SubmitOptions o = one();
  o.nodes = 2;
  o.gpus_per_node = 4;
  o.cpus_per_task = 8;
  o.time = "1-04:00:00";
  o.partition = "gpu";
  o.account = "proj_1";
  o.requeue = true;
  o.signal_seconds = 300;
  o.overrides = {"runtime.batch_size=8", "name=it's"};
  const auto s = render_script(o, {kSweepA}, "/home/u/work");
  EXPECT_EQ(s.path, "/res/ml/slurm/ml.sbatch");
  EXPECT_EQ(s.log_out, "/res/ml/slurm/ml-%j.out");
  EXPECT_EQ(s.text.rfind("#!/bin/bash\n", 0), 0u);
  for (const char* line : {"#SBATCH --job-name='ml'",
                           "#SBATCH --nodes=2",
                           "#SBATCH --ntasks-per-node=4",
                           "#SBATCH --ntasks=8",
                           "#SBATCH --gres=gpu:4",
                           "#SBATCH --cpus-per-task=8",
                           "#SBATCH --time=1-04:00:00",
                           "#SBATCH --partition=gpu",
                           "#SBATCH --account=proj_1",
                           "#SBATCH --chdir='/home/u/work'",
                           "#SBATCH --output='/res/ml/slurm/ml-%j.out'",
                           "#SBATCH --error='/res/ml/slurm/ml-%j.err'",
                           "#SBATCH --open-mode=append",
                           "#SBATCH --signal=B:USR1@300",
                           "#SBATCH --requeue",
                           "CONFIGS=('/data/a.yaml')",
                           "OUTPUTS=('/res/ml')",
                           "SWEEP_EXE='/opt/cnp/bin/cnp_sweep'",
                           "LAUNCHER=auto",
                           "REQUEUE=1",
                           R"(SWEEP_ARGS=(--set 'runtime.batch_size=8' --set 'name=it'\''s'))"})
    EXPECT_TRUE(has_line(s.text, line)) << "missing line: " << line << "\n" << s.text;
  EXPECT_EQ(count_sbatch_lines(s.text), 15);
  EXPECT_EQ(s.text.find("{{"), std::string::npos);
  EXPECT_EQ(s.text.find("#SBATCH --array"), std::string::npos);
  // The run line launches the sweep exe on the chosen config with the overrides.
  EXPECT_NE(s.text.find(R"("${launch[@]}" "$SWEEP_EXE" "$config" "${SWEEP_ARGS[@]}" &)"),
            std::string::npos);
  EXPECT_NE(s.text.find("srun --mpi=pmix"), std::string::npos);
  EXPECT_NE(s.text.find("scontrol requeue \"$SLURM_JOB_ID\""), std::string::npos);
}

TEST(SlurmRender, Defaults) {
  const auto s = render_script(one(), {kSweepA}, "/w");
  for (const char* line :
       {"#SBATCH --nodes=1", "#SBATCH --ntasks-per-node=1", "#SBATCH --ntasks=1",
        "#SBATCH --signal=B:USR1@120", "#SBATCH --no-requeue", "REQUEUE=0", "SWEEP_ARGS=()"})
    EXPECT_TRUE(has_line(s.text, line)) << "missing line: " << line << "\n" << s.text;
  for (const char* absent :
       {"--gres", "--time", "--partition", "--account", "--cpus-per-task=", "#SBATCH --requeue"})
    EXPECT_EQ(s.text.find(std::string("#SBATCH ") + absent), std::string::npos) << absent;
}

TEST(SlurmRender, GpusSetRanksPerNodeAndNoSignalLine) {
  SubmitOptions o = one();
  o.gpus_per_node = 2;
  o.signal_seconds = 0;
  o.launcher = "mpirun";
  const auto s = render_script(o, {kSweepA}, "/w");
  EXPECT_TRUE(has_line(s.text, "#SBATCH --ntasks-per-node=2"));
  EXPECT_TRUE(has_line(s.text, "#SBATCH --gres=gpu:2"));
  EXPECT_TRUE(has_line(s.text, "LAUNCHER=mpirun"));
  EXPECT_EQ(s.text.find("#SBATCH --signal"), std::string::npos);
}

TEST(SlurmRender, ArrayOfSweeps) {
  SubmitOptions o = one();
  o.configs = {"a.yaml", "b.yaml"};
  o.array = true;
  const auto s = render_script(o, {kSweepA, kSweepB}, "/w");
  EXPECT_EQ(s.job_name, "ml+sm");
  EXPECT_EQ(s.path, "/res/ml/slurm/ml-array.sbatch");
  for (const char* line : {"#SBATCH --array=0-1", "#SBATCH --job-name='ml+sm'",
                           "#SBATCH --output='/res/ml/slurm/ml-array-%A_%a.out'",
                           "CONFIGS=('/data/a.yaml' '/data/b.yaml')"})
    EXPECT_TRUE(has_line(s.text, line)) << "missing line: " << line << "\n" << s.text;
  EXPECT_NE(s.text.find("config=${CONFIGS[$index]}"), std::string::npos);

  SweepTarget same_output = kSweepB;
  same_output.output = kSweepA.output;
  EXPECT_THROW(render_script(o, {kSweepA, same_output}, "/w"), Error);
}

TEST(SlurmRender, BadOptionsAreOneLineErrors) {
  struct Case {
    std::function<void(SubmitOptions&)> change;
    std::string expect;  // part of the message
  };
  const std::vector<Case> cases = {
      {[](SubmitOptions& o) { o.nodes = 0; }, "--nodes 0"},
      {[](SubmitOptions& o) { o.ntasks_per_node = -1; }, "--ntasks-per-node -1"},
      {[](SubmitOptions& o) { o.cpus_per_task = -2; }, "--cpus-per-task"},
      {[](SubmitOptions& o) { o.cpus_per_task = 0; }, "--cpus-per-task 0: must be at least 1"},
      {[](SubmitOptions& o) { o.ntasks_per_node = 0; }, "--ntasks-per-node 0: must be at least 1"},
      {[](SubmitOptions& o) { o.gpus_per_node = 0; }, "--gpus-per-node 0: must be at least 1"},
      {[](SubmitOptions& o) { o.signal_seconds = -5; }, "--signal-seconds"},
      {[](SubmitOptions& o) { o.gpus_per_node = 2, o.ntasks_per_node = 3; }, "one rank per GPU"},
      {[](SubmitOptions& o) { o.time = "4h"; }, "--time '4h'"},
      {[](SubmitOptions& o) { o.time = "1:2:3:4"; }, "--time"},
      {[](SubmitOptions& o) { o.partition = "gpu\n#SBATCH --x"; }, "--partition"},
      {[](SubmitOptions& o) { o.account = "a b"; }, "--account 'a b'"},
      {[](SubmitOptions& o) { o.launcher = "pbsdsh"; }, "--launcher 'pbsdsh'"},
      {[](SubmitOptions& o) { o.overrides = {"runtime.batch_size"}; }, "KEY=VALUE"},
      {[](SubmitOptions& o) { o.overrides = {"=3"}; }, "KEY=VALUE"},
      {[](SubmitOptions& o) {
         o.configs = {"a.yaml", "b.yaml"};
       },
       "--array"},
      {[](SubmitOptions& o) { o.configs.clear(); }, "no sweep file"},
  };
  for (const auto& c : cases) {
    SubmitOptions o = one();
    c.change(o);
    try {
      slurm::validate_options(o);
      ADD_FAILURE() << "accepted; expected an error with: " << c.expect;
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(c.expect), std::string::npos) << what;
      EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    }
  }
  for (const char* good : {"90", "30:00", "4:00:00", "2-0", "2-12:30", "1-00:00:00"})
    EXPECT_TRUE(slurm::valid_time_limit(good)) << good;
}

TEST(SlurmRender, TemplateAndQuoting) {
  EXPECT_EQ(slurm::fill_template("a{{X}}b{{Y}}", {{"X", "{{Y}}"}, {"Y", "1"}}), "a{{Y}}b1");
  EXPECT_THROW(slurm::fill_template("a{{Z}}", {{"X", "1"}}), Error);
  // Quoted words come back byte for byte through bash.
  const std::string dir = test_dir("slurm_render_quote");
  const std::string nasty = "it's \"a\" $HOME `x` \\ ; *";
  const auto r = sh("printf %s " + slurm::shell_quote(nasty), dir);
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, nasty);
}

TEST(SlurmRender, ScriptIsValidBash) {
  const std::string dir = test_dir("slurm_render_bash");
  SubmitOptions o = one();
  o.configs = {"a.yaml", "b.yaml"};
  o.array = true;
  o.overrides = {"a=b c"};
  write(dir + "/job.sbatch", render_script(o, {kSweepA, kSweepB}, dir).text);
  const auto r = sh("bash -n " + dir + "/job.sbatch", dir);
  EXPECT_EQ(r.code, 0) << r.err;
}

// The script's runtime logic under bash, with stand-ins on PATH: `srun` (offers pmix, runs
// the command), `scontrol` (records its arguments) and a sweep that records its arguments
// and environment, then waits for SIGUSR1/SIGTERM and exits 3 like a preempted cnp_sweep.
class SlurmScript : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test_dir(std::string("slurm_script_") +
                    ::testing::UnitTest::GetInstance()->current_test_info()->name());
    write(dir_ + "/bin/srun", R"(#!/bin/bash
if [ "$1" = --mpi=list ]; then echo "MPI plugin types are..." >&2; echo "	pmix" >&2; exit 0; fi
echo "srun $*" >> )" + dir_ + R"(/launch.log
while [ "${1:0:1}" = - ]; do shift; done
exec "$@"
)",
          true);
    write(dir_ + "/bin/mpirun", R"(#!/bin/bash
echo "mpirun $*" >> )" + dir_ + R"(/launch.log
while [ "${1:0:1}" = - ]; do case "$1" in -np|--map-by|--bind-to|-x) shift 2;; *) shift;; esac; done
trap 'kill -USR1 $child' USR1
"$@" & child=$!
wait $child; wait $child
)",
          true);
    write(dir_ + "/bin/scontrol", "#!/bin/bash\necho \"$*\" >> " + dir_ + "/scontrol.log\n", true);
    write(dir_ + "/sweep",
          R"(#!/bin/bash
echo "$*" > )" +
              dir_ + R"(/sweep.args
echo "$SLURM_CPUS_PER_TASK $OMP_NUM_THREADS" > )" +
              dir_ + R"(/sweep.env
[ "${SWEEP_MODE:-}" = ok ] && { mkdir -p "$SWEEP_OUT"; echo {} > "$SWEEP_OUT/run_summary.json"; exit 0; }
[ "${SWEEP_MODE:-}" = silent ] && exit 0
[ "${SWEEP_MODE:-}" = fail ] && exit 1
trap 'echo preempted; exit 3' USR1 TERM
touch )" + dir_ +
              R"(/sweep.started
for i in $(seq 300); do sleep 0.1; done
exit 9
)",
          true);
  }

  std::string render(bool requeue, const std::string& launcher = "auto") {
    SubmitOptions o = one(dir_ + "/a.yaml");
    o.configs = {dir_ + "/a.yaml", dir_ + "/b.yaml"};
    o.array = true;
    o.requeue = requeue;
    o.launcher = launcher;
    o.sweep_exe = dir_ + "/sweep";
    o.overrides = {"runtime.batch_size=2"};
    const auto s = render_script(
        o, {{dir_ + "/a.yaml", "a", dir_ + "/a"}, {dir_ + "/b.yaml", "b", dir_ + "/b"}}, dir_);
    write(dir_ + "/job.sbatch", s.text);
    return dir_ + "/job.sbatch";
  }

  // Runs the script as Slurm would (array task 1, 2 ranks on 4 CPUs); `signal` (if any) goes
  // to the batch shell once the sweep runs. Returns the script's exit code.
  Output run_script(const std::string& script, const std::string& signal,
                    const std::string& mode = "") {
    std::string cmd = "export PATH=" + dir_ + "/bin:$PATH SWEEP_MODE=" + mode +
                      " SWEEP_OUT=" + dir_ +
                      "/b SLURM_JOB_ID=42 SLURM_ARRAY_TASK_ID=1 SLURM_NTASKS_PER_NODE=2"
                      " SLURM_NTASKS=2 SLURM_CPUS_ON_NODE=4\n"
                      "unset SLURM_CPUS_PER_TASK\n"
                      "bash " +
                      script + " & pid=$!\n";
    if (!signal.empty())
      cmd += "for i in $(seq 100); do [ -e " + dir_ +
             "/sweep.started ] && break; sleep 0.1; done\n"
             "kill -" +
             signal + " $pid\n";
    cmd += "wait $pid; rc=$?; exit $rc\n";
    return sh(cmd, dir_ + "/run");
  }

  std::string dir_;
};

TEST_F(SlurmScript, Usr1IsForwardedAndPreemptedJobIsRequeued) {
  const auto r = run_script(render(true), "USR1");
  EXPECT_EQ(r.code, 3) << r.out << r.err;
  EXPECT_NE(r.out.find("got SIGUSR1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("sweep preempted (exit 3)"), std::string::npos) << r.out;
  EXPECT_EQ(slurp(dir_ + "/scontrol.log"), "requeue 42\n");
  // Array task 1 ran the second sweep file with the overrides; threads = 4 CPUs / 2 ranks.
  EXPECT_EQ(slurp(dir_ + "/sweep.args"), dir_ + "/b.yaml --set runtime.batch_size=2\n");
  EXPECT_EQ(slurp(dir_ + "/sweep.env"), "2 2\n");
  EXPECT_NE(slurp(dir_ + "/launch.log")
                .find("srun --mpi=pmix --kill-on-bad-exit=1 --ntasks=2 "
                      "--ntasks-per-node=2 --cpus-per-task=2 "),
            std::string::npos);
}

TEST_F(SlurmScript, TermToBatchShellStopsSweepWithoutRequeue) {
  const auto r = run_script(render(false), "TERM");
  EXPECT_EQ(r.code, 3) << r.out << r.err;
  EXPECT_NE(r.out.find("got SIGTERM"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(dir_ + "/scontrol.log"));
}

TEST_F(SlurmScript, MpirunLauncherForwardsUsr1) {
  const auto r = run_script(render(true, "mpirun"), "USR1");
  EXPECT_EQ(r.code, 3) << r.out << r.err;
  EXPECT_NE(slurp(dir_ + "/launch.log").find("mpirun -np 2 --map-by ppr:2:node --bind-to none"),
            std::string::npos);
  EXPECT_EQ(slurp(dir_ + "/scontrol.log"), "requeue 42\n");
}

TEST_F(SlurmScript, ExitCodesPassThroughWithoutRequeue) {
  const std::string script = render(true);
  EXPECT_EQ(run_script(script, "", "ok").code, 0);
  EXPECT_TRUE(fs::exists(dir_ + "/b/run_summary.json"));
  // Exit 0 without a fresh run_summary.json: the ranks never ran (a failed srun launch).
  const auto silent = run_script(script, "", "silent");
  EXPECT_EQ(silent.code, 1);
  EXPECT_NE(silent.out.find("exited 0 but the sweep wrote no " + dir_ + "/b/run_summary.json"),
            std::string::npos)
      << silent.out;
  const auto failed = run_script(script, "", "fail");
  EXPECT_EQ(failed.code, 1);
  EXPECT_NE(failed.out.find("sweep failed with exit code 1"), std::string::npos) << failed.out;
  EXPECT_FALSE(fs::exists(dir_ + "/scontrol.log"));
}

// The `cnp slurm submit` command itself: dry run, errors, and sbatch's answers (stand-ins).
class SlurmCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test_dir(std::string("slurm_cli_") +
                    ::testing::UnitTest::GetInstance()->current_test_info()->name());
    config_ = write_sweep("ml");
    write(dir_ + "/sweep_exe", "#!/bin/sh\n", true);
  }
  std::string write_sweep(const std::string& name) {
    const std::string path = dir_ + "/" + name + ".yaml";
    write(path, "name: " + name + "\noutput: " + dir_ + "/results/" + name +
                    "\ndataset:\n  root: data/Human36M\nmodel:\n  checkpoint: "
                    "\"ck/{variant}/snapshot_{epoch}.pth.tar\"\nsweep:\n  variants: [XS]\n"
                    "  epochs: [1]\n  protocols: [1, 2]\n  flip: [false, true]\n");
    return path;
  }
  Output cnp(const std::string& args, const std::string& env = "") {
    return sh("cd " + dir_ + " && " + env + " " + CNP_EXE + " slurm submit " + args, dir_ + "/run");
  }
  std::string dir_, config_;
};

TEST_F(SlurmCli, DryRunPrintsScriptAndWritesNothing) {
  const auto r = cnp(config_ + " --dry-run --gpus-per-node 2 --time 30 --set runtime.batch_size=8");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(has_line(r.out, "#SBATCH --job-name='ml'"));
  EXPECT_TRUE(has_line(r.out, "#SBATCH --gres=gpu:2"));
  EXPECT_TRUE(has_line(r.out, "#SBATCH --ntasks-per-node=2"));
  EXPECT_TRUE(has_line(r.out, "#SBATCH --time=30"));
  EXPECT_TRUE(has_line(r.out, "#SBATCH --chdir='" + dir_ + "'"));
  EXPECT_TRUE(has_line(r.out, "#SBATCH --output='" + dir_ + "/results/ml/slurm/ml-%j.out'"));
  EXPECT_TRUE(has_line(r.out, "CONFIGS=('" + config_ + "')"));
  EXPECT_TRUE(has_line(r.out, "SWEEP_ARGS=(--set 'runtime.batch_size=8')"));
  // Default sweep exe: cnp_sweep next to cnp.
  const std::string sibling = (fs::path(CNP_EXE).parent_path() / "cnp_sweep").string();
  EXPECT_TRUE(has_line(r.out, "SWEEP_EXE='" + sibling + "'")) << r.out;
  EXPECT_FALSE(fs::exists(dir_ + "/results"));

  // --set reaches load_sweep too: the output dir (hence the script's place) follows it.
  const auto moved = cnp(config_ + " --dry-run --set output=elsewhere");
  ASSERT_EQ(moved.code, 0) << moved.err;
  EXPECT_TRUE(has_line(moved.out, "#SBATCH --output='" + dir_ + "/elsewhere/slurm/ml-%j.out'"))
      << moved.out;
}

TEST_F(SlurmCli, ArrayDryRun) {
  write_sweep("sm");
  const auto r = cnp(config_ + " sm.yaml --array --dry-run");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(has_line(r.out, "#SBATCH --array=0-1"));
  EXPECT_TRUE(has_line(r.out, "CONFIGS=('" + config_ + "' '" + dir_ + "/sm.yaml')")) << r.out;
  EXPECT_TRUE(has_line(r.out, "#SBATCH --job-name='ml+sm'"));
}

TEST_F(SlurmCli, BadInputIsAOneLineError) {
  struct Case {
    std::string args, expect;
  };
  const std::vector<Case> cases = {
      {config_ + " --dry-run --time soon", "--time 'soon'"},
      {config_ + " --dry-run --nodes 0", "--nodes 0"},
      {config_ + " --dry-run --cpus-per-task 0", "--cpus-per-task 0"},
      {config_ + " --dry-run --ntasks-per-node 0", "--ntasks-per-node 0"},
      {config_ + " --dry-run --gpus-per-node 0", "--gpus-per-node 0"},
      {config_ + " --dry-run --ntasks-per-node -3", "--ntasks-per-node -3"},
      {config_ + " --sweep-exe " + dir_ + "/sweep_exe --cpus-per-task 0", "--cpus-per-task 0"},
      {config_ + " --dry-run --gpus-per-node 2 --ntasks-per-node 1", "one rank per GPU"},
      {config_ + " " + config_ + " --dry-run", "--array"},
      {config_ + " " + config_ + " --array --dry-run", "shared with another sweep"},
      {dir_ + "/missing.yaml --dry-run", "missing.yaml"},
      {config_ + " --dry-run --set sweep.nonsense=1", "nonsense"},
      {config_ + " --sweep-exe " + dir_ + "/no_such_sweep", "no_such_sweep"},
  };
  for (const auto& c : cases) {
    const auto r = cnp(c.args);
    EXPECT_NE(r.code, 0) << c.args;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << c.args << "\n" << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << r.err;
    EXPECT_EQ(r.out, "") << c.args;
    EXPECT_FALSE(fs::exists(dir_ + "/results")) << c.args << ": something was written";
  }
}

TEST_F(SlurmCli, SbatchMissingOrRefusing) {
  const std::string exe = " --sweep-exe " + dir_ + "/sweep_exe";
  auto missing = cnp(config_ + exe, "PATH=" + dir_ + "/nowhere");
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("sbatch: not found on PATH"), std::string::npos) << missing.err;
  EXPECT_EQ(count_lines(missing.err), 1) << missing.err;

  write(dir_ + "/refuse/sbatch",
        "#!/bin/sh\necho 'sbatch: error: Batch job submission failed: Invalid account' >&2\n"
        "exit 1\n",
        true);
  auto refused = cnp(config_ + exe, "PATH=" + dir_ + "/refuse:$PATH");
  EXPECT_EQ(refused.code, 1);
  EXPECT_NE(refused.err.find("sbatch refused " + dir_ +
                             "/results/ml/slurm/ml.sbatch: sbatch: "
                             "error: Batch job submission failed: Invalid account"),
            std::string::npos)
      << refused.err;
  EXPECT_EQ(count_lines(refused.err), 1) << refused.err;

  // An accepting sbatch: the job id is printed; with --wait the job's exit code decides.
  write(dir_ + "/accept/sbatch",
        "#!/bin/sh\necho \"$*\" > " + dir_ +
            "/sbatch.args\necho '77;cluster'\n"
            "case \"$*\" in *--wait*) exit 3;; esac\n",
        true);
  auto accepted = cnp(config_ + exe, "PATH=" + dir_ + "/accept:$PATH");
  EXPECT_EQ(accepted.code, 0) << accepted.err;
  EXPECT_EQ(accepted.out, "77\n");
  EXPECT_EQ(slurp(dir_ + "/sbatch.args"), "--parsable " + dir_ + "/results/ml/slurm/ml.sbatch\n");
  EXPECT_TRUE(fs::exists(dir_ + "/results/ml/slurm/ml.sbatch"));

  auto waited = cnp(config_ + exe + " --wait", "PATH=" + dir_ + "/accept:$PATH");
  EXPECT_EQ(waited.code, 1);
  EXPECT_EQ(waited.out, "77\n");
  EXPECT_NE(waited.err.find("slurm job 77 ended with exit code 3 (log: " + dir_ +
                            "/results/ml/slurm/ml-77.out)"),
            std::string::npos)
      << waited.err;
}

}  // namespace
}  // namespace cnp::slurm_test
