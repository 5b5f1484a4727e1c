// Script rendering for `cnp slurm submit`. The template is plain bash with {{KEY}} holes,
// filled here by a hand-written replace: the project has no text-template library and the
// values are few and pre-quoted, so a dependency would buy nothing.
#include <algorithm>
#include <regex>
#include <set>
#include <sstream>

#include "common/error.h"
#include "common/version.h"
#include "slurm/embedded_template.h"
#include "slurm/submit.h"

namespace cnp::slurm {

std::string shell_quote(const std::string& word) {
  std::string out = "'";
  for (char c : word) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

bool valid_time_limit(const std::string& time) {
  static const std::regex pattern(
      R"(^(\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d+|\d+-\d+:\d{1,2}|\d+-\d+:\d{1,2}:\d{1,2})$)");
  return std::regex_match(time, pattern);
}

namespace {

// Names that go into #SBATCH lines: no spaces or shell/quote characters, nothing Slurm
// would split or the script would misread.
void check_word(const std::string& option, const std::string& value) {
  static const std::regex pattern(R"(^[A-Za-z0-9_.,+@:=\-]+$)");
  if (!std::regex_match(value, pattern))
    throw Error("--" + option + " '" + value +
                "': only letters, digits and _ . , + @ : = - are allowed");
}

void check_positive(const std::string& option, int value, bool zero_ok) {
  if (value < 0 || (!zero_ok && value == 0))
    throw Error("--" + option + " " + std::to_string(value) + ": must be " +
                (zero_ok ? "0 or more" : "at least 1"));
}

// A count that was given must be a real count: 0 or less is not "the default".
void check_count(const std::string& option, const std::optional<int>& value) {
  if (value && *value < 1)
    throw Error("--" + option + " " + std::to_string(*value) +
                ": must be at least 1 (leave the option out for its default)");
}

int ranks_per_node(const SubmitOptions& o) {
  if (o.ntasks_per_node) return *o.ntasks_per_node;
  return o.gpus_per_node.value_or(1);
}

}  // namespace

void validate_options(const SubmitOptions& o) {
  if (o.configs.empty()) throw Error("no sweep file given");
  if (o.configs.size() > 1 && !o.array)
    throw Error(std::to_string(o.configs.size()) +
                " sweep files given: pass --array to run them as a job array (one per index)");
  check_positive("nodes", o.nodes, false);
  check_count("ntasks-per-node", o.ntasks_per_node);
  check_count("gpus-per-node", o.gpus_per_node);
  check_count("cpus-per-task", o.cpus_per_task);
  check_positive("signal-seconds", o.signal_seconds, true);
  if (o.gpus_per_node && o.ntasks_per_node && *o.ntasks_per_node != *o.gpus_per_node)
    throw Error("--ntasks-per-node " + std::to_string(*o.ntasks_per_node) +
                " with --gpus-per-node " + std::to_string(*o.gpus_per_node) +
                ": the sweep runs one rank per GPU, so they must be equal");
  if (!o.time.empty() && !valid_time_limit(o.time))
    throw Error("--time '" + o.time + "': expected minutes, M:S, H:M:S, D-H, D-H:M or D-H:M:S");
  if (!o.partition.empty()) check_word("partition", o.partition);
  if (!o.account.empty()) check_word("account", o.account);
  if (o.launcher != "auto" && o.launcher != "srun" && o.launcher != "mpirun")
    throw Error("--launcher '" + o.launcher + "': expected auto, srun or mpirun");
  for (const auto& kv : o.overrides) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) throw Error("--set '" + kv + "': expected KEY=VALUE");
    if (kv.find('\n') != std::string::npos) throw Error("--set '" + kv + "': contains a newline");
  }
  for (const auto& c : o.configs)
    if (c.find('\n') != std::string::npos) throw Error("sweep file name contains a newline");
}

std::string fill_template(const std::string& templ,
                          const std::vector<std::pair<std::string, std::string>>& values) {
  // One left-to-right scan, so values are inserted verbatim and never rescanned.
  std::string out;
  size_t pos = 0;
  for (size_t open = templ.find("{{"); open != std::string::npos; open = templ.find("{{", pos)) {
    const size_t close = templ.find("}}", open);
    if (close == std::string::npos) throw Error("sbatch template: unterminated '{{'");
    const std::string key = templ.substr(open + 2, close - open - 2);
    auto it =
        std::find_if(values.begin(), values.end(), [&](const auto& kv) { return kv.first == key; });
    if (it == values.end())
      throw Error("sbatch template: placeholder {{" + key + "}} has no value");
    out.append(templ, pos, open - pos);
    out += it->second;
    pos = close + 2;
  }
  out.append(templ, pos, std::string::npos);
  return out;
}

Script render_script(const SubmitOptions& o, const std::vector<SweepTarget>& sweeps,
                     const std::string& working_dir) {
  validate_options(o);
  if (sweeps.size() != o.configs.size()) throw Error("internal: sweeps and sweep files differ");
  {
    std::set<std::string> outputs;
    for (const auto& s : sweeps)
      if (!outputs.insert(s.output).second)
        throw Error(s.config + ": output directory " + s.output +
                    " is shared with another sweep of the array");
  }

  Script script;
  const SweepTarget& first = sweeps.front();
  script.job_name = first.name;
  for (size_t i = 1; i < sweeps.size(); ++i) script.job_name += "+" + sweeps[i].name;
  if (script.job_name.size() > 100)
    script.job_name = first.name + "+" + std::to_string(sweeps.size() - 1);
  const std::string dir = first.output + "/slurm/";
  // The array's script and logs live with its first sweep; each task's log names its index.
  const std::string stem = o.array ? first.name + "-array" : first.name;
  script.path = dir + stem + ".sbatch";
  script.log_out = dir + stem + (o.array ? "-%A_%a" : "-%j") + ".out";
  script.log_err = dir + stem + (o.array ? "-%A_%a" : "-%j") + ".err";

  const int rpn = ranks_per_node(o);
  std::ostringstream lines;
  auto line = [&](const std::string& text) { lines << "#SBATCH " << text << "\n"; };
  line("--job-name=" + shell_quote(script.job_name));
  line("--nodes=" + std::to_string(o.nodes));
  line("--ntasks-per-node=" + std::to_string(rpn));
  line("--ntasks=" + std::to_string(rpn * o.nodes));
  if (o.gpus_per_node) line("--gres=gpu:" + std::to_string(*o.gpus_per_node));
  if (o.cpus_per_task) line("--cpus-per-task=" + std::to_string(*o.cpus_per_task));
  if (!o.time.empty()) line("--time=" + o.time);
  if (!o.partition.empty()) line("--partition=" + o.partition);
  if (!o.account.empty()) line("--account=" + o.account);
  if (o.array) line("--array=0-" + std::to_string(sweeps.size() - 1));
  line("--chdir=" + shell_quote(working_dir));
  line("--output=" + shell_quote(script.log_out));
  line("--error=" + shell_quote(script.log_err));
  line("--open-mode=append");
  if (o.signal_seconds > 0) line("--signal=B:USR1@" + std::to_string(o.signal_seconds));
  line(o.requeue ? "--requeue" : "--no-requeue");
  std::string sbatch_lines = lines.str();
  sbatch_lines.pop_back();

  std::string configs;
  for (const auto& s : sweeps) configs += (configs.empty() ? "" : " ") + shell_quote(s.config);
  std::string outputs;
  for (const auto& s : sweeps) outputs += (outputs.empty() ? "" : " ") + shell_quote(s.output);
  std::string args;
  for (const auto& kv : o.overrides)
    args += (args.empty() ? "--set " : " --set ") + shell_quote(kv);

  script.text = fill_template(embedded_sbatch_template(), {{"VERSION", CNP_VERSION},
                                                           {"SBATCH_LINES", sbatch_lines},
                                                           {"CONFIGS", configs},
                                                           {"OUTPUTS", outputs},
                                                           {"SWEEP_EXE", shell_quote(o.sweep_exe)},
                                                           {"SWEEP_ARGS", args},
                                                           {"LAUNCHER", o.launcher},
                                                           {"REQUEUE", o.requeue ? "1" : "0"}});
  return script;
}

}  // namespace cnp::slurm
