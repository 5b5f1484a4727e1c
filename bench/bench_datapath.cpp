// The data path that feeds a GPU, per core: JPEG -> uint8 crop (TurboJPEG decode + OpenCV
// warpAffine), HDF5 cache -> uint8 crop, and uint8 crop -> normalised float input on the CPU
// (on a GPU that last step is tensor work on the device: scripts/gpu_check.sh). Rates are
// single-threaded and reported per CPU second (wall time on a shared machine lies), then turned
// into what a node of N cores can feed when the GPU makes the normalised and flipped copies.
// usage: bench_datapath [WORK_DIR] [NODE_CORES] (defaults: /tmp/cnp_bench_datapath, 16)
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "bench/bench_clock.h"
#include "data/cache.h"
#include "data/h36m.h"
#include "data/preprocess.h"
#include "data/synth.h"

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

}  // namespace

int main(int argc, char** argv) {
  const std::string work = argc > 1 ? argv[1] : "/tmp/cnp_bench_datapath";
  const int node_cores = argc > 2 ? std::stoi(argv[2]) : 16;
  fs::remove_all(work);
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
  fs::remove_all(work);
  return 0;
}
