// The data path that feeds a GPU, per core: JPEG -> uint8 crop (TurboJPEG decode + OpenCV
// warpAffine), HDF5 cache -> uint8 crop, and uint8 crop -> normalised float input on the CPU
// (on a GPU that last step is tensor work on the device: scripts/gpu_check.sh). Rates are
// single-threaded and reported per CPU second (wall time on a shared machine lies), then turned
// into what a node of N cores can feed when the GPU makes the normalised and flipped copies.
// With a DEVICE (cpu, cuda or cuda:N) it also times the last step as the sweep runs it on that
// device: PoseModel::stage_crops (pinned copy, transfer on a copy stream) then prepare_staged
// (normalise and flip on the device), batches of 64, in samples per wall second.
// usage: bench_datapath [WORK_DIR] [NODE_CORES] [DEVICE]
//        (defaults: /tmp/cnp_bench_datapath, 16, none)
#include <execinfo.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "bench/bench_clock.h"
#include "common/files.h"
#include "data/cache.h"
#include "data/h36m.h"
#include "data/preprocess.h"
#include "data/synth.h"
#include "model/architecture.h"
#include "model/pose_model.h"

namespace {

namespace fs = std::filesystem;
using cnp::data::kCropBytes;
using cnp::data::kInputFloats;

// Runs `step` over every sample `rounds` times; samples per CPU second of this thread.
template <typename Step>
double per_cpu_second(int64_t samples, int rounds, Step step) {
  const double start = cnp::bench::thread_cpu_seconds();
  for (int r = 0; r < rounds; ++r)
    for (int64_t i = 0; i < samples; ++i) step(i);
  return samples * rounds / (cnp::bench::thread_cpu_seconds() - start);
}

// Samples per wall second of stage_crops + prepare_staged (flip on) over the crops, in batches
// of 64, on `device`: the device path's own rate, which the forward of the batch before hides.
double device_input_rate(const std::string& device, const std::vector<uint8_t>& crops, int64_t n) {
  cnp::model::ModelOptions options;
  options.device = device;
  const auto model = cnp::model::PoseModel::random(
      cnp::model::VariantRegistry::with_builtins().get("XS").arch, 1, options);
  constexpr int kBatch = 64;
  const int64_t batches = std::max<int64_t>(1, n / kBatch), rounds = 20;
  auto run = [&](int64_t b) {
    const int64_t first = (b % batches) * kBatch, count = std::min<int64_t>(kBatch, n - first);
    model->prepare_staged(
        *model->stage_crops(crops.data() + first * kCropBytes, static_cast<int>(count), nullptr),
        true);
    return count;
  };
  run(0);  // warm-up: allocators, kernels
  int64_t samples = 0;
  const double start = cnp::bench::wall_seconds();
  for (int64_t b = 0; b < batches * rounds; ++b) samples += run(b);
  return samples / (cnp::bench::wall_seconds() - start);
}

// GPU nodes rarely have a debugger: a crash prints its stack (symbols via -rdynamic) and dies.
void print_stack_and_die(int signal) {
  void* frames[64];
  backtrace_symbols_fd(frames, backtrace(frames, 64), STDERR_FILENO);
  std::signal(signal, SIG_DFL);
  std::raise(signal);
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGSEGV, print_stack_and_die);
  std::signal(SIGBUS, print_stack_and_die);
  std::cout << std::unitbuf;  // each figure reaches the log even if a later step crashes
  const std::string work = argc > 1 ? argv[1] : "/tmp/cnp_bench_datapath";
  const int node_cores = argc > 2 ? std::stoi(argv[2]) : 16;
  const std::string device = argc > 3 ? argv[3] : "";
  cnp::remove_tree(work);
  cnp::data::SynthOptions synth;  // 1000 x 1000 JPEGs, like Human3.6M's frames
  synth.out_dir = work + "/synth";
  cnp::data::write_synthetic_h36m(synth);
  cnp::data::TestSetOptions options;
  options.root = synth.out_dir;
  options.protocol = 2;
  const auto set = cnp::data::load_test_set(options);
  const int64_t n = static_cast<int64_t>(set.samples.size());
  std::vector<uint8_t> crops(static_cast<size_t>(n) * kCropBytes);
  std::vector<float> input(kInputFloats);

  const double jpeg = per_cpu_second(n, 1, [&](int64_t i) {
    cnp::data::crop_image_file(cnp::data::image_path(options.root, set.samples[i]),
                               set.samples[i].bbox, crops.data() + i * kCropBytes);
  });
  const std::string cache = cnp::data::ensure_cache(work + "/cache", options, set, 1);
  cnp::data::CacheReader reader(cache);
  std::vector<uint8_t> crop(kCropBytes);
  reader.read_crops(0, n, crops.data());  // page cache warm, as for every pass after the first
  const double from_cache =
      per_cpu_second(n, 5, [&](int64_t i) { reader.read_crops(i, 1, crop.data()); });
  const double normalise = per_cpu_second(n, 5, [&](int64_t i) {
    cnp::data::normalize_crop(crops.data() + i * kCropBytes, input.data());
  });

  std::cout << "data path per core (" << n << " samples of 1000x1000 JPEGs, per CPU second)\n"
            << "  JPEG -> uint8 crop:            " << jpeg << " samples/s\n"
            << "  HDF5 cache -> uint8 crop:      " << from_cache << " samples/s\n"
            << "  uint8 -> normalised (CPU):     " << normalise << " samples/s\n"
            << "a " << node_cores << "-core node, normalising and flipping on the GPU:\n"
            << "  from the cache: " << node_cores << " x " << from_cache << " = "
            << node_cores * from_cache << " samples/s (target 10000)\n"
            << "  from JPEGs:     " << node_cores << " x " << jpeg << " = " << node_cores * jpeg
            << " samples/s\n";
  if (!device.empty()) {
    const double rate = device_input_rate(device, crops, n);
    std::cout << "uint8 -> normalised + flipped on " << device
              << " (the sweep's staged path, batches of 64): " << rate << " samples/s (wall)\n";
  }
  cnp::remove_tree(work);
  return 0;
}
