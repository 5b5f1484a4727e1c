// `cnp synth OUT_DIR`: a synthetic Human3.6M (3DMPPE layout, RootNet-style box files)
// plus random-weight checkpoints of every requested variant and epoch.
#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "apps/commands.h"
#include "common/error.h"
#include "data/synth.h"
#include "model/architecture.h"
#include "model/checkpoint.h"
#include "model/pose_model.h"

namespace {

struct SynthArgs {
  cnp::data::SynthOptions options;
  std::vector<std::string> variants = {"XS", "S", "M", "L"};
  std::vector<int> epochs = {69, 70};
  bool no_checkpoints = false;
};

// Stable per (seed, variant, epoch), so reruns give identical checkpoints.
uint64_t seed_for(uint64_t seed, const std::string& variant, int epoch) {
  uint64_t h = 1469598103934665603ULL ^ seed;
  for (char ch : variant) h = (h ^ static_cast<unsigned char>(ch)) * 1099511628211ULL;
  h = (h ^ static_cast<uint64_t>(epoch)) * 1099511628211ULL;
  return h & 0x7fffffffffffffffULL;
}

int run_synth(const SynthArgs& args) {
  namespace fs = std::filesystem;
  const auto start = std::chrono::steady_clock::now();
  const cnp::data::SynthSummary summary = cnp::data::write_synthetic_h36m(args.options);
  const double data_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::vector<std::string> checkpoints;
  if (!args.no_checkpoints) {
    const auto registry = cnp::model::VariantRegistry::with_builtins();
    for (const auto& name : args.variants) {
      const auto& variant = registry.get(name);
      for (int epoch : args.epochs) {
        auto model = cnp::model::PoseModel::random(variant.arch,
                                                   seed_for(args.options.seed, name, epoch), {});
        cnp::model::NamedTensors tensors = model->state_dict();
        for (auto& entry : tensors) entry.first = "module." + entry.first;
        const std::string path = (fs::path(args.options.out_dir) / "checkpoints" / name /
                                  ("snapshot_" + std::to_string(epoch) + ".pth.tar"))
                                     .string();
        cnp::model::write_checkpoint_zip(path, tensors, epoch,
                                         "snapshot_" + std::to_string(epoch) + ".pth", "network");
        checkpoints.push_back(path);
      }
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "synthetic Human3.6M in " << args.options.out_dir << "\n"
            << "  images: " << summary.images << " (" << args.options.image_size << "x"
            << args.options.image_size << ")\n"
            << "  samples (sample_every 64): protocol 1: " << summary.protocol1_samples
            << ", protocol 2: " << summary.protocol2_samples << "\n"
            << "  files:\n";
  for (const auto& f : summary.files) std::cout << "    " << f << "\n";
  for (const auto& f : checkpoints) std::cout << "    " << f << "\n";
  std::cout << "  seconds: data " << data_seconds << ", total " << seconds << "\n";
  return 0;
}

cnp::apps::CommandRegistration registration({
    "synth",
    "Write a synthetic Human3.6M (3DMPPE layout, box files) and random-weight checkpoints",
    [](CLI::App& sub) -> std::function<int()> {
      auto args = std::make_shared<SynthArgs>();
      sub.add_option("OUT_DIR", args->options.out_dir, "Output directory")->required();
      sub.add_option("--kept-frames", args->options.kept_frames,
                     "Frames per sequence kept by 64-subsampling (frames 64k)")
          ->capture_default_str();
      sub.add_option("--dropped-per-kept", args->options.dropped_per_kept,
                     "Frames after each kept one that the subsampling drops")
          ->capture_default_str();
      sub.add_option("--image-size", args->options.image_size, "Square image side (pixels)")
          ->capture_default_str();
      sub.add_option("--seed", args->options.seed, "Random seed")->capture_default_str();
      sub.add_option("--variants", args->variants, "Checkpoint variants")
          ->delimiter(',')
          ->capture_default_str();
      sub.add_option("--epochs", args->epochs, "Checkpoint epochs")
          ->delimiter(',')
          ->capture_default_str();
      sub.add_flag("--no-checkpoints", args->no_checkpoints, "Write the data set only");
      sub.add_option("--threads", args->options.threads, "JPEG writer threads (0: all cores)")
          ->capture_default_str();
      return [args] { return run_synth(*args); };
    },
});

}  // namespace
