// Checkpoint load time: read_checkpoint on a ~30 MB checkpoint, N times.
//
// usage: bench_checkpoint [CHECKPOINT] [N]
// Without CHECKPOINT it writes a synthetic one (variant-L-sized: 260 float32
// tensors, 8.4M elements, ~33 MB) with write_checkpoint_zip to a temp folder.
// A torch-written one (with optimizer state, ~100 MB on disk) comes from
//   /usr/bin/python3 tests/checkpoint/make_fixtures.py formats /tmp/ckpt
// -> /tmp/ckpt/ConvNeXtPose_L.tar
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "model/checkpoint.h"

namespace {

std::string synthetic_checkpoint() {
  using cnp::model::DType;
  using cnp::model::TensorData;
  cnp::model::NamedTensors tensors;
  int64_t total = 0;
  for (int k = 0; total < 8'400'000; ++k) {
    TensorData t;
    t.dtype = DType::Float32;
    t.shape = {k % 10 == 0 ? 1152 : 192, k % 3 == 0 ? 128 : 4, 1, 1};
    t.bytes.assign(static_cast<size_t>(t.numel()) * 4, static_cast<uint8_t>(k));
    total += t.numel();
    tensors.emplace_back("module.backbone.tensor_" + std::to_string(k), std::move(t));
  }
  std::string path =
      (std::filesystem::temp_directory_path() / "bench_checkpoint_synthetic.pth").string();
  cnp::model::write_checkpoint_zip(path, tensors, 83, "snapshot_83.pth");
  return path;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::string path = argc > 1 ? argv[1] : synthetic_checkpoint();
    int n = argc > 2 ? std::atoi(argv[2]) : 10;
    double file_mb = std::filesystem::file_size(path) / 1e6;
    auto ck = cnp::model::read_checkpoint(path);  // warm the page cache
    auto start = std::chrono::steady_clock::now();
    for (int k = 0; k < n; ++k) ck = cnp::model::read_checkpoint(path);
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                    .count() /
                n;
    std::printf("bench_checkpoint: %s (%.1f MB file, %zu tensors, %.1f MB of weights, format %s)\n",
                path.c_str(), file_mb, ck.tensors.size(), ck.total_elements() * 4 / 1e6,
                ck.format.c_str());
    std::printf("bench_checkpoint: %.1f ms per read_checkpoint (mean of %d)\n", ms, n);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_checkpoint: %s\n", e.what());
    return 1;
  }
  return 0;
}
