#include "pipeline/sweep_plan.h"
#include "pipeline/rank_timing.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <future>
#include <iostream>
#include <set>
#include <sstream>
#include <tuple>

#include "common/error.h"
#include "common/files.h"
#include "data/h36m.h"
#include "model/checkpoint.h"
#include "model/pose_model.h"
#include "model/remap.h"

namespace cnp::pipeline {

namespace fs = std::filesystem;

bool SampleSetKey::operator<(const SampleSetKey& other) const {
  return std::tie(bbox, bbox_root, protocol) <
         std::tie(other.bbox, other.bbox_root, other.protocol);
}

namespace {

std::string join_ints(const std::vector<int>& values, const char* separator = ",") {
  std::string out;
  for (size_t i = 0; i < values.size(); ++i)
    out += (i ? separator : "") + std::to_string(values[i]);
  return out;
}

SampleSetKey sample_set_key(const jobs::Pass& pass) {
  SampleSetKey key;
  key.bbox = pass.bbox;
  key.bbox_root = pass.bbox == "detected" ? pass.bbox_root : "";
  key.protocol = *std::max_element(pass.protocols.begin(), pass.protocols.end());
  return key;
}

int64_t checkpoint_bytes(const model::Checkpoint& checkpoint) {
  int64_t bytes = 0;
  for (const auto& [name, tensor] : checkpoint.tensors)
    bytes += static_cast<int64_t>(tensor.bytes.size());
  return bytes;
}

std::vector<int> subjects_of(int protocol) {
  return data::protocol_subjects(protocol);
}

}  // namespace

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

namespace {

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

}  // namespace

std::string check_output_folder(const std::string& output) {
  const fs::path path(output);
  std::error_code ec;
  if (fs::exists(path, ec) && !fs::is_directory(path, ec)) {
    return "output: " + output + " is a file, not a folder";
  }
  // The nearest existing ancestor must be a folder we can create files in: try it
  // (access() says yes to root even on a read-only file system).
  fs::path existing = fs::absolute(path.empty() ? fs::path(".") : path, ec);
  while (!fs::exists(existing, ec) && existing.has_relative_path()) {
    existing = existing.parent_path();
  }
  if (!fs::is_directory(existing, ec)) {
    return "output: " + output + " cannot be created: " + existing.string() +
           " is a file, not a folder";
  }
  const std::string probe =
      (existing / (".cnp_write_probe." + std::to_string(::getpid()))).string();
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) {
    return "output: " + output + " is not writable (" + existing.string() + ": " +
           std::strerror(errno) + ")";
  }
  ::close(fd);
  ::unlink(probe.c_str());
  return "";
}

std::vector<std::string> validate_plan(Plan& plan, const ValidationOptions& options) {
  std::vector<std::string> problems;
  const auto& config = plan.config;

  if (const std::string output_problem = check_output_folder(config.output);
      !output_problem.empty()) {
    problems.push_back(output_problem);
  }
  if (config.runtime.precision == "fp16" && !options.device.empty() &&
      options.device.rfind("cuda", 0) != 0) {
    problems.push_back("runtime.precision: fp16 needs a CUDA device, but runtime.device '" +
                       config.runtime.device + "' resolves to " + options.device +
                       " here (use fp32 or bf16)");
  }

  // Every variant predicts the data set's joints: its output is read as joints x 3.
  std::set<std::string> variant_names;
  for (const auto& job : plan.jobs) variant_names.insert(job.variant);
  for (const auto& name : variant_names) {
    const model::Variant* variant = plan.registry.find(name);
    if (variant && variant->arch.joints != plan.joints) {
      problems.push_back("variant " + name + " predicts " + std::to_string(variant->arch.joints) +
                         " joints but the data set has " + std::to_string(plan.joints) +
                         " (model.variants." + name + ".joints)");
    }
  }

  // Checkpoints: exist, read, architecture equals the variant the sweep asks for.
  std::map<std::string, std::set<std::string>> asked;  // checkpoint -> variants
  int64_t kept_bytes = 0;
  for (const auto& job : plan.jobs) asked[job.checkpoint].insert(job.variant);
  for (const auto& [path, variants] : asked) {
    CheckpointInfo info;
    info.path = path;
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      problems.push_back(path + ": is a folder, not a checkpoint file (model.checkpoint for " +
                         *variants.begin() + ")");
      plan.checkpoints[path] = info;
      continue;
    }
    if (!file_exists(path)) {
      problems.push_back(path + ": checkpoint not found (model.checkpoint for " +
                         *variants.begin() + ")");
      plan.checkpoints[path] = info;
      continue;
    }
    model::Checkpoint checkpoint;
    try {
      // The file is read once: its bytes are hashed (the resume ledger's key) on their own
      // thread while they are parsed here, so the hash is of the bytes that were checked. A
      // failed parse still waits for the hash (the future's destructor) before the bytes go.
      std::string bytes;
      {
        TimeInto timed(this_rank_timing().checkpoint_read_s);
        bytes = model::read_checkpoint_file(path);
      }
      std::future<std::string> hash =
          std::async(std::launch::async, [&bytes] { return sha256_hex(bytes); });
      {
        TimeInto timed(this_rank_timing().checkpoint_read_s);
        checkpoint = model::parse_checkpoint(bytes, path);
      }
      info.format = checkpoint.format;
      info.epoch_field = checkpoint.epoch;
      info.inferred = model::infer_architecture(model::remap_keys(checkpoint.tensors), path);
      for (const auto* variant :
           plan.registry.matching(info.inferred.arch, info.inferred.upsample_known)) {
        info.matches.push_back(variant->name);
      }
      TimeInto timed(this_rank_timing().checkpoint_read_s);
      info.sha256 = hash.get();
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
    // Every tensor present with its shape: the loader's own check (missing keys),
    // on the CPU in fp32, one checkpoint at a time.
    for (const auto& variant_name : variants) {
      const model::Variant* variant = plan.registry.find(variant_name);
      if (!variant || !architecture_matches(info.inferred, variant->arch)) continue;
      try {
        // Only the strict key and shape check is wanted here: the straightforward network
        // checks the same keys without the optimized path's BatchNorm folding and weight
        // packing, which the pass does again anyway.
        model::ModelOptions load_options;
        load_options.optimize = false;
        load_options.threads = 1;
        load_options.variant = variant_name;
        TimeInto timed(this_rank_timing().model_build_s);
        model::PoseModel::load(variant->arch, checkpoint, load_options);
      } catch (const std::exception& e) {
        problems.push_back(e.what());
      }
    }
    if (info.readable &&
        kept_bytes + checkpoint_bytes(checkpoint) <= options.keep_checkpoint_bytes) {
      kept_bytes += checkpoint_bytes(checkpoint);
      info.kept = std::make_shared<const model::Checkpoint>(std::move(checkpoint));
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
      TimeInto timed(this_rank_timing().data_wait_s);
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

  // A checkpoint's own `epoch` field that disagrees with the epoch of its file name is
  // suspicious but not fatal (some scripts save epoch + 1): warn, and the job file
  // records both.
  for (const auto& job : plan.jobs) {
    const auto it = plan.checkpoints.find(job.checkpoint);
    if (it == plan.checkpoints.end() || !it->second.epoch_field) continue;
    if (*it->second.epoch_field != job.epoch) {
      const std::string warning = job.checkpoint + ": its 'epoch' field is " +
                                  std::to_string(*it->second.epoch_field) +
                                  " but the sweep runs it as epoch " + std::to_string(job.epoch);
      if (std::find(plan.warnings.begin(), plan.warnings.end(), warning) == plan.warnings.end())
        plan.warnings.push_back(warning);
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
      plan.job_current[j] =
          !options.no_resume &&
          jobs::job_result_is_current(config.output, plan.jobs[j], plan.settings_keys[j]);
    } catch (const std::exception& e) {
      problems.push_back(e.what());
    }
  }
  return problems;
}

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

PassSelection select_passes(const Plan& plan) {
  PassSelection selection;
  selection.compute.assign(plan.passes.size(), 0);
  selection.flip.assign(plan.passes.size(), 0);
  for (size_t p = 0; p < plan.passes.size(); ++p) {
    for (size_t j : plan.passes[p].jobs) {
      if (plan.job_current[j]) continue;
      selection.compute[p] = 1;
      if (plan.jobs[j].flip) selection.flip[p] = 1;
    }
  }
  return selection;
}

std::string format_dry_run(const Plan& plan, int ranks, const std::vector<char>& pass_compute) {
  std::ostringstream out;
  const auto& config = plan.config;
  out << "sweep " << config.name << ": " << plan.jobs.size() << " jobs, " << plan.passes.size()
      << " forward passes, " << ranks << " rank(s), output " << config.output << "\n";
  out << "checkpoints:\n";
  std::map<std::string, std::set<std::string>> variants_of;  // one scan: linear in the jobs
  for (const auto& job : plan.jobs) variants_of[job.checkpoint].insert(job.variant);
  for (const auto& [path, info] : plan.checkpoints) {
    std::string variants;
    for (const auto& name : variants_of[path]) variants += (variants.empty() ? "" : ",") + name;
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
  for (const auto& warning : plan.warnings) out << "warning: " << warning << "\n";
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
  return out.str();
}

}  // namespace cnp::pipeline
