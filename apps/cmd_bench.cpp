// `cnp bench`: forward throughput (images/s) of one variant or checkpoint architecture on
// random image-like inputs, with per-stage times and peak memory, for comparing the
// optimized and straightforward paths, devices, precisions and thread counts.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <future>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>

#include "apps/commands.h"
#include "common/error.h"
#include "model/architecture.h"
#include "model/architecture_json.h"
#include "model/checkpoint.h"
#include "model/pose_model.h"
#include "model/remap.h"

namespace {

using namespace cnp::model;

struct BenchOptions {
  std::string variant;
  std::string checkpoint;
  int batch = 8;
  int threads = 0;
  double seconds = 5.0;
  std::string device = "cpu";
  std::string precision = "fp32";
  bool flip = false;
  bool no_optimize = false;
  bool json = false;
  bool rounds_from_stdin = false;
  std::string input = "auto";  // float | crops | auto (crops on a GPU, float on the CPU)
};

// The same blocks as uint8 crops (256 x 256 x 3 BGR), for the path that normalises on the
// model's device.
std::vector<uint8_t> crop_like(int n) {
  std::mt19937 engine(7);
  std::vector<uint8_t> out(static_cast<size_t>(n) * 256 * 256 * 3);
  for (int i = 0; i < n; ++i)
    for (int c = 0; c < 3; ++c)
      for (int by = 0; by < 32; ++by)
        for (int bx = 0; bx < 32; ++bx) {
          const auto v = static_cast<uint8_t>(engine() % 256);
          for (int y = 0; y < 8; ++y)
            for (int x = 0; x < 8; ++x)
              out[((static_cast<size_t>(i) * 256 + by * 8 + y) * 256 + bx * 8 + x) * 3 + 2 - c] = v;
        }
  return out;
}

// Image-like inputs (8x8 blocks of 0..255, normalised without /255) as the real
// preprocessing produces: heatmaps stay peaky, as with real images.
std::vector<float> image_like(int n) {
  std::mt19937 engine(7);
  std::vector<float> out(static_cast<size_t>(n) * 3 * 256 * 256);
  const float mean[3] = {0.485f, 0.456f, 0.406f}, stdev[3] = {0.229f, 0.224f, 0.225f};
  for (int i = 0; i < n; ++i)
    for (int c = 0; c < 3; ++c)
      for (int by = 0; by < 32; ++by)
        for (int bx = 0; bx < 32; ++bx) {
          const float v = (static_cast<float>(engine() % 256) - mean[c]) / stdev[c];
          for (int y = 0; y < 8; ++y)
            for (int x = 0; x < 8; ++x)
              out[((static_cast<size_t>(i) * 3 + c) * 256 + by * 8 + y) * 256 + bx * 8 + x] = v;
        }
  return out;
}

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
}

double max_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux: kilobytes
}

// One line of stdin, cut after 64 characters (a batch count needs far fewer), so that a line
// without an end cannot grow without bound. False at the end of the input.
bool read_short_line(std::string& line) {
  line.clear();
  for (int c; (c = std::cin.get()) != EOF;) {
    if (c == '\n') return true;
    if (line.size() == 64) {
      line += "...";
      return true;
    }
    line.push_back(static_cast<char>(c));
  }
  return !line.empty();
}

// --rounds-from-stdin: after the warm-up, one JSON line saying what runs, then for each line of
// stdin (a batch count) that many batches and one JSON line with their wall and CPU seconds,
// until stdin ends. bench/engine_vs_reference.py --pairs alternates short rounds of cnp and the
// reference this way, so that a shared machine's load changes hit both alike.
int serve_rounds(const std::string& name, const PoseModel& model, int batch, double gmacs_per_image,
                 const std::function<void()>& run_batch) {
  nlohmann::ordered_json ready;
  ready["variant"] = name;
  ready["batch"] = batch;
  ready["optimized"] = model.optimized();
  ready["cpu_kernels"] = PoseModel::cpu_kernels();
  ready["gmacs_per_image"] = gmacs_per_image;
  std::cout << ready.dump() << std::endl;
  std::string line;
  for (int round = 1; read_short_line(line); ++round) {
    int count = 0;
    size_t used = 0;
    try {
      count = std::stoi(line, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != line.size() || count < 1 || count > 1000000)
      throw cnp::Error("cnp bench: stdin line " + std::to_string(round) +
                       ": expected a batch count from 1 to 1000000, got '" + line + "'");
    const auto start = std::chrono::steady_clock::now();
    const double cpu_start = cpu_seconds();
    for (int i = 0; i < count; ++i) run_batch();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    nlohmann::ordered_json out;
    out["round"] = round;
    out["batches"] = count;
    out["seconds"] = seconds;
    out["cpu_seconds"] = cpu_seconds() - cpu_start;
    out["images_per_second"] = batch * count / seconds;
    out["max_rss_mb"] = max_rss_mb();
    std::cout << out.dump() << std::endl;
  }
  return 0;
}

int run_bench(const BenchOptions& o) {
  if (o.variant.empty() == o.checkpoint.empty())
    throw cnp::Error("cnp bench: give exactly one of --variant or --checkpoint");
  if (o.batch < 1) throw cnp::Error("cnp bench: --batch must be at least 1");
  if (o.threads < 0) throw cnp::Error("cnp bench: --threads must be 0 (default) or more");
  if (!(o.seconds > 0)) throw cnp::Error("cnp bench: --seconds must be positive");
  if (o.input != "auto" && o.input != "float" && o.input != "crops")
    throw cnp::Error("cnp bench: --input must be float, crops or auto");

  ModelOptions options;
  options.device = o.device;
  options.precision = o.precision;
  options.threads = o.threads;
  options.optimize = !o.no_optimize;
  options.flip_pairs = {{1, 4}, {2, 5}, {3, 6}, {14, 11}, {15, 12}, {16, 13}};

  const auto registry = VariantRegistry::with_builtins();
  std::string name = o.variant;
  std::unique_ptr<PoseModel> model;
  if (!o.checkpoint.empty()) {
    const Checkpoint checkpoint = read_checkpoint(o.checkpoint);
    const InferredArchitecture inferred =
        infer_architecture(remap_keys(checkpoint.tensors), o.checkpoint);
    const auto matches = registry.matching(inferred.arch, inferred.upsample_known);
    Architecture arch = inferred.arch;
    name = "custom";
    if (!matches.empty()) {
      arch = matches.front()->arch;
      name = matches.front()->name;
    }
    options.variant = name;
    model = PoseModel::load(arch, checkpoint, options);
  } else {
    options.variant = name;
    model = PoseModel::random(registry.get(o.variant).arch, 1, options);
  }

  const int n = o.batch;
  const int joints = model->architecture().joints;
  const bool crops_input = o.input == "crops" || (o.input == "auto" && o.device != "cpu");
  std::vector<float> plain(static_cast<size_t>(n) * joints * 3), flipped(plain.size());
  float* flipped_out = o.flip ? flipped.data() : nullptr;
  std::vector<float> input;
  std::vector<uint8_t> crops;
  using Clock = std::chrono::steady_clock;
  // Crops: the next batch is staged (pinned copy, transfer on the copy stream) on another
  // thread while this one computes, as the sweep's batch producer does.
  double staging_ms = 0;
  auto stage = [&] {
    const auto t0 = Clock::now();
    auto staged = model->stage_crops(crops.data(), n, nullptr);
    staging_ms += std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    return staged;
  };
  std::shared_ptr<StagedCrops> staged;
  if (crops_input) {
    crops = crop_like(n);
    model->predict_staged(*stage(), plain.data(), flipped_out);  // warm-up
    staged = stage();
  } else {
    input = image_like(n);
    model->predict(input.data(), n, plain.data(), flipped_out);  // warm-up
  }
  staging_ms = 0;

  StageTimes total, one;
  auto run_batch = [&] {
    if (crops_input) {
      auto next = std::async(std::launch::async, stage);
      model->predict_staged(*staged, plain.data(), flipped_out, &one);
      staged = next.get();
    } else {
      model->predict(input.data(), n, plain.data(), flipped_out, &one);
    }
    total.input_ms += one.input_ms;
    total.backbone_ms += one.backbone_ms;
    total.head_ms += one.head_ms;
    total.decode_ms += one.decode_ms;
  };
  // Multiply-adds this path does per image (the flip test doubles the images), as GFLOP/s:
  // against the CPU's FMA peak (bench_cpu_peak) it says how much speed is left to find.
  const auto& arch = model->architecture();
  const double gmacs_per_image =
      (model->optimized() ? optimized_mac_count(arch) : mac_count(arch)) * 1e-9;
  if (o.rounds_from_stdin) return serve_rounds(name, *model, n, gmacs_per_image, run_batch);

  int batches = 0;
  const auto start = Clock::now();
  const double cpu_start = cpu_seconds();
  double elapsed = 0;
  while (batches < 2 || elapsed < o.seconds) {
    run_batch();
    ++batches;
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  }
  const double images_per_second = n * batches / elapsed;
  const double cpu = cpu_seconds() - cpu_start;
  const double gflops_per_second = 2 * gmacs_per_image * images_per_second * (o.flip ? 2 : 1);
  const double backbone = total.backbone_ms / batches, head = total.head_ms / batches,
               decode = total.decode_ms / batches, input_stage = total.input_ms / batches;

  if (o.json) {
    nlohmann::ordered_json out;
    out["variant"] = name;
    out["architecture"] = architecture_to_json(model->architecture());
    out["checkpoint"] = o.checkpoint.empty() ? nlohmann::ordered_json(nullptr)
                                             : nlohmann::ordered_json(o.checkpoint);
    out["batch"] = n;
    out["threads"] = o.threads;
    out["device"] = o.device;
    out["precision"] = o.precision;
    out["flip"] = o.flip;
    out["optimized"] = model->optimized();
    out["cpu_kernels"] = cnp::model::PoseModel::cpu_kernels();
    out["images_per_second"] = images_per_second;
    out["gmacs_per_image"] = gmacs_per_image;
    out["gflops_per_second"] = gflops_per_second;
    out["batches"] = batches;
    out["seconds"] = elapsed;
    // Processor time of all threads: on a shared machine, images per CPU-second vary
    // less than images per wall-second (busy-waiting threads count too).
    out["cpu_seconds"] = cpu;
    out["input"] = crops_input ? "crops" : "float";
    out["stages"] = {{"input_ms", input_stage},
                     {"backbone_ms", backbone},
                     {"head_ms", head},
                     {"decode_ms", decode}};
    // Host time to stage one batch (copy into pinned memory, start the transfer), on the
    // staging thread, overlapped with the forward.
    out["staging_ms"] = crops_input ? nlohmann::ordered_json(staging_ms / batches)
                                    : nlohmann::ordered_json(nullptr);
    out["max_rss_mb"] = max_rss_mb();
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::printf("%s: batch %d, threads %d, %s %s, flip %s, %s path, %s CPU kernels\n", name.c_str(),
              n, o.threads, o.device.c_str(), o.precision.c_str(), o.flip ? "on" : "off",
              model->optimized() ? "optimized" : "straightforward",
              cnp::model::PoseModel::cpu_kernels());
  std::printf("%.2f images/s (%d batches in %.1f s), %.1f GFLOP/s (%.3f GMACs per image)\n",
              images_per_second, batches, elapsed, gflops_per_second, gmacs_per_image);
  std::printf(
      "per batch: input %.1f ms, backbone %.1f ms, head %.1f ms, decode %.1f ms; max RSS %.0f MB\n",
      input_stage, backbone, head, decode, max_rss_mb());
  return 0;
}

cnp::apps::CommandRegistration registration({
    "bench",
    "Forward throughput (images/s) of a variant or a checkpoint's architecture",
    [](CLI::App& sub) -> std::function<int()> {
      auto o = std::make_shared<BenchOptions>();
      sub.add_option("--variant", o->variant, "Built-in variant (XS, S, M, L), random weights");
      sub.add_option("--checkpoint", o->checkpoint,
                     "Checkpoint whose architecture (and weights) to run");
      sub.add_option("--batch", o->batch, "Images per forward (default 8)");
      sub.add_option("--threads", o->threads, "Intra-op threads (default: LibTorch's)");
      sub.add_option("--seconds", o->seconds, "Measure for at least this long (default 5)");
      sub.add_option("--device", o->device, "cpu, cuda or cuda:N (default cpu)");
      sub.add_option("--precision", o->precision, "fp32, bf16 or fp16 (default fp32)");
      sub.add_flag("--flip", o->flip, "Flip test: one forward of 2n images");
      sub.add_flag("--no-optimize", o->no_optimize, "Straightforward network (no rewrites)");
      sub.add_flag("--json", o->json, "Print one JSON object");
      sub.add_flag("--rounds-from-stdin", o->rounds_from_stdin,
                   "Run as many batches as each stdin line says, one JSON line per round "
                   "(for bench/engine_vs_reference.py --pairs); --seconds is not used");
      sub.add_option("--input", o->input,
                     "float (normalised on the host) or crops (uint8, normalised on the model's "
                     "device, next batch staged meanwhile); default: crops on a GPU, else float");
      return [o] { return run_bench(*o); };
    },
});

}  // namespace
