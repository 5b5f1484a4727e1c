// Data benchmarks: `synth` time for the default set, samples/s producing normalised
// inputs from JPEGs vs from the HDF5 cache, and annotation JSON parse MB/s.
// usage: bench_data [WORK_DIR] [JSON_MB] (defaults: /tmp/cnp_bench_data, 200)
#include <time.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "bench/bench_clock.h"
#include "common/files.h"
#include "data/cache.h"
#include "data/h36m.h"
#include "data/preprocess.h"
#include "data/synth.h"

namespace {
namespace fs = std::filesystem;
using cnp::data::kCropBytes;
using cnp::data::kInputFloats;

using cnp::bench::process_cpu_seconds;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Decode + crop + normalise every sample with `threads` threads; returns samples/s.
double from_images(const std::string& root, const std::vector<cnp::data::Sample>& samples,
                   int threads) {
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      std::vector<uint8_t> crop(kCropBytes);
      std::vector<float> input(kInputFloats);
      for (size_t i = t; i < samples.size(); i += threads) {
        cnp::data::crop_image_file(cnp::data::image_path(root, samples[i]), samples[i].bbox,
                                   crop.data());
        cnp::data::normalize_crop(crop.data(), input.data());
      }
    });
  }
  for (auto& th : pool) th.join();
  return samples.size() / seconds_since(start);
}

// Read crops in batches of 32 and normalise them (one thread); returns samples/s.
double from_cache(const std::string& path) {
  const auto start = std::chrono::steady_clock::now();
  cnp::data::CacheReader reader(path);
  const int64_t n = static_cast<int64_t>(reader.samples().size());
  const int64_t batch = 32;
  std::vector<uint8_t> crops(batch * kCropBytes);
  std::vector<float> input(batch * kInputFloats);
  for (int64_t begin = 0; begin < n; begin += batch) {
    const int64_t count = std::min(batch, n - begin);
    reader.read_crops(begin, count, crops.data());
    for (int64_t k = 0; k < count; ++k) {
      cnp::data::normalize_crop(crops.data() + k * kCropBytes, input.data() + k * kInputFloats);
    }
  }
  return n / seconds_since(start);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string work = argc > 1 ? argv[1] : "/tmp/cnp_bench_data";
  const double json_mb = argc > 2 ? std::stod(argv[2]) : 200.0;
  cnp::remove_tree(work);

  // 1. The default synthetic set (1000 px, frames {0, 1}).
  cnp::data::SynthOptions synth;
  synth.out_dir = work + "/synth";
  auto start = std::chrono::steady_clock::now();
  const auto summary = cnp::data::write_synthetic_h36m(synth);
  std::cout << "synth default (" << summary.images << " images, 1000x1000, "
            << std::thread::hardware_concurrency() << " threads): " << seconds_since(start)
            << " s\n";

  // 2. Normalised inputs from images vs from the cache (protocol 2, 480 samples).
  cnp::data::TestSetOptions options;
  options.root = synth.out_dir;
  options.protocol = 2;
  const auto set = cnp::data::load_test_set(options);
  double cpu = process_cpu_seconds();
  std::cout << "from images, 1 thread:  " << from_images(options.root, set.samples, 1)
            << " samples/s wall, ";
  std::cout << set.samples.size() / (process_cpu_seconds() - cpu) << " samples per CPU second\n";
  std::cout << "from images, 2 threads: " << from_images(options.root, set.samples, 2)
            << " samples/s\n";
  start = std::chrono::steady_clock::now();
  const std::string cache = cnp::data::ensure_cache(work + "/cache", options, set, 2);
  std::cout << "cache build (2 threads): " << set.samples.size() / seconds_since(start)
            << " samples/s, " << fs::file_size(cache) / 1e6 << " MB\n";
  from_cache(cache);  // warm the page cache like a second sweep job would
  cpu = process_cpu_seconds();
  std::cout << "from cache, 1 thread:   " << from_cache(cache) << " samples/s wall, ";
  std::cout << set.samples.size() / (process_cpu_seconds() - cpu) << " samples per CPU second\n";

  // 3. JSON parsing: annotation files of about json_mb MB in total.
  cnp::data::SynthOptions big;
  big.out_dir = work + "/json";
  big.write_images = false;
  big.frames = 20;
  auto total_bytes = [&] {
    uintmax_t bytes = 0;
    const std::string dir = big.out_dir + "/annotations";
    for (const auto& name : cnp::list_directory(dir)) bytes += fs::file_size(dir + "/" + name);
    return bytes;
  };
  cnp::data::write_synthetic_h36m(big);
  big.frames = std::max(20, static_cast<int>(20 * json_mb * 1e6 / total_bytes()));
  cnp::remove_tree(big.out_dir);
  cnp::data::write_synthetic_h36m(big);
  const double mb = total_bytes() / 1e6;
  cnp::data::TestSetOptions json_options;
  json_options.root = big.out_dir;
  json_options.protocol = 2;
  json_options.check_images = false;
  start = std::chrono::steady_clock::now();
  cpu = process_cpu_seconds();
  const auto big_set = cnp::data::load_test_set(json_options);
  const double t = seconds_since(start);
  cpu = process_cpu_seconds() - cpu;
  std::cout << "reader (SAX) on " << mb << " MB of annotations (" << big.frames
            << " frames/sequence, " << big_set.samples.size() << " samples kept): " << t
            << " s wall, " << mb / t << " MB/s wall, " << mb / cpu << " MB/s per CPU second\n";
  const std::string data_file = cnp::data::annotation_path(big.out_dir, 9, "data");
  const std::string text = cnp::read_file(data_file);
  start = std::chrono::steady_clock::now();
  cpu = process_cpu_seconds();
  auto dom = nlohmann::json::parse(text);
  const double t_dom = seconds_since(start);
  cpu = process_cpu_seconds() - cpu;
  std::cout << "nlohmann DOM parse of one data file (" << text.size() / 1e6
            << " MB): " << text.size() / 1e6 / t_dom << " MB/s wall, " << text.size() / 1e6 / cpu
            << " MB/s per CPU second (for comparison)\n";
  cnp::remove_tree(work);
  return dom.is_object() ? 0 : 1;
}
