// Model throughput on this machine: random-weight construction time and CPU inference
// images/s per built-in variant, plain and with the flip test (2n images per forward).
// usage: bench_model [threads (0 = LibTorch default)] [batch (default 4)] [variants...]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "model/pose_model.h"

using namespace cnp::model;
using Clock = std::chrono::steady_clock;

static double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 0;
  const int batch = argc > 2 ? std::atoi(argv[2]) : 4;
  std::vector<std::string> names;
  for (int i = 3; i < argc; ++i) names.push_back(argv[i]);
  if (names.empty()) names = {"XS", "S", "M", "L"};
  const auto registry = VariantRegistry::with_builtins();
  ModelOptions options;
  options.threads = threads;
  options.flip_pairs = {{1, 4}, {2, 5}, {3, 6}, {14, 11}, {15, 12}, {16, 13}};
  std::vector<float> input(static_cast<size_t>(batch) * 3 * 256 * 256, 0.5f);
  for (size_t i = 0; i < input.size(); ++i) input[i] = static_cast<float>((i * 7919) % 255) / 60.f;
  std::printf("variant  random_s  batch  plain_img_s  flip_img_s  (threads %d)\n", threads);
  for (const auto& name : names) {
    const Architecture& arch = registry.get(name).arch;
    auto start = Clock::now();
    const auto model = PoseModel::random(arch, 1, options);
    const double build = seconds_since(start);
    std::vector<float> plain(static_cast<size_t>(batch) * arch.joints * 3), flipped(plain.size());
    model->predict(input.data(), batch, plain.data(), nullptr);  // warm-up
    const int repeats = 3;
    start = Clock::now();
    for (int r = 0; r < repeats; ++r) model->predict(input.data(), batch, plain.data(), nullptr);
    const double plain_rate = repeats * batch / seconds_since(start);
    start = Clock::now();
    for (int r = 0; r < repeats; ++r)
      model->predict(input.data(), batch, plain.data(), flipped.data());
    const double flip_rate = repeats * batch / seconds_since(start);
    std::printf("%-8s %8.2f  %5d  %11.2f  %10.2f\n", name.c_str(), build, batch, plain_rate,
                flip_rate);
  }
  return 0;
}
