// The CPU kernels of one ConvNeXt block per backbone stage, on one thread, as the optimized
// network's fused path runs them: per tile of image rows, the 7x7 depthwise conv, the first
// 1x1 conv (ReLU) and the second (residual). Prints GFLOP/s of each, so that a kernel change can
// be judged without the noise of the whole forward, and against bench_cpu_peak's ceiling.
// Set CNP_CPU_ISA=avx2 (or generic) to measure the other builds.
//
//   bench_kernels [--variant S] [--images 4] [--repeats 11]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "model/architecture.h"
#include "model/inference_kernels.h"

namespace {

namespace kernels = cnp::model::kernels;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// One stage's block: `side` x `side` maps of `c` channels, hidden width 4c, in the tiles that
// OptimizedNetwork::fused_rows cuts on one thread.
void bench_stage(int64_t images, int64_t side, int64_t c, int repeats) {
  const int64_t hidden = 4 * c, rows = images * side, pixels = rows * side;
  // The tiles OptimizedNetwork::fused_rows cuts on one thread: about fused_tile_rows rows,
  // within a row of each other (parallel_parts).
  const int64_t tile_rows = kernels::fused_tile_rows(rows, side, 1),
                tiles = (rows + tile_rows - 1) / tile_rows;
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> uniform(-0.1f, 0.1f);
  auto random = [&](int64_t n) {
    std::vector<float> v(n);
    for (float& x : v) x = uniform(rng);
    return v;
  };
  const auto x = random(pixels * c), dw_weight = random(49 * c), dw_bias = random(c);
  const auto w1 = random(hidden * c), b1 = random(hidden), w2 = random(c * hidden), b2 = random(c);
  std::vector<float> packed1(kernels::gemm_packed_size(hidden, c)),
      packed2(kernels::gemm_packed_size(c, hidden));
  kernels::pack_gemm_weights(w1.data(), hidden, c, packed1.data());
  kernels::pack_gemm_weights(w2.data(), c, hidden, packed2.data());
  std::vector<float> out(pixels * c), dw_out(tile_rows * side * c),
      hidden_out(tile_rows * side * hidden);

  std::vector<double> dw_s, pw1_s, pw2_s;
  for (int r = 0; r < repeats; ++r) {
    double dw = 0, pw1 = 0, pw2 = 0;
    for (int64_t tile = 0; tile < tiles; ++tile) {
      const int64_t row = tile * rows / tiles, end = (tile + 1) * rows / tiles,
                    n = (end - row) * side;
      auto t = Clock::now();
      kernels::depthwise_conv_nhwc(x.data(), dw_weight.data(), dw_bias.data(), dw_out.data(), side,
                                   side, c, 7, false, row, end);
      dw += seconds_since(t);
      t = Clock::now();
      kernels::gemm_bias(dw_out.data(), c, packed1.data(), hidden, b1.data(), hidden_out.data(),
                         nullptr, true, 0, n);
      pw1 += seconds_since(t);
      t = Clock::now();
      kernels::gemm_bias(hidden_out.data(), hidden, packed2.data(), c, b2.data(),
                         out.data() + row * side * c, x.data() + row * side * c, false, 0, n);
      pw2 += seconds_since(t);
    }
    dw_s.push_back(dw);
    pw1_s.push_back(pw1);
    pw2_s.push_back(pw2);
  }
  const double pw_flop = 2.0 * pixels * c * hidden, dw_flop = 2.0 * pixels * c * 49;
  std::printf(
      "%4lld x %-4lld %4lld ch  tiles <= %3lld px | depthwise %6.1f | 1x1 up %6.1f | 1x1 down "
      "%6.1f GFLOP/s | block %.2f ms\n",
      static_cast<long long>(side), static_cast<long long>(side), static_cast<long long>(c),
      static_cast<long long>((rows + tiles - 1) / tiles * side), dw_flop / median(dw_s) / 1e9,
      pw_flop / median(pw1_s) / 1e9, pw_flop / median(pw2_s) / 1e9,
      (median(dw_s) + median(pw1_s) + median(pw2_s)) * 1e3);
}

}  // namespace

int main(int argc, char** argv) {
  std::string variant = "S";
  int images = 4, repeats = 11;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--variant" && i + 1 < argc) {
      variant = argv[++i];
    } else if (arg == "--images" && i + 1 < argc) {
      images = std::atoi(argv[++i]);
    } else if (arg == "--repeats" && i + 1 < argc) {
      repeats = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: bench_kernels [--variant S] [--images 4] [--repeats 11]\n");
      return 2;
    }
  }
  if (images < 1 || images > 64 || repeats < 1 || repeats > 1000) {
    std::fprintf(stderr, "bench_kernels: --images must be 1..64 and --repeats 1..1000\n");
    return 2;
  }
  try {
    kernels::check_isa_setting();
    if (!kernels::gemm_available()) {
      std::fprintf(stderr,
                   "bench_kernels: the GEMM kernel needs AVX2 or AVX-512, which this CPU or "
                   "CNP_CPU_ISA rules out\n");
      return 1;
    }
    const auto arch = cnp::model::VariantRegistry::with_builtins().get(variant).arch;
    std::printf("%s blocks, %d images, one thread, %s kernels, medians of %d\n", variant.c_str(),
                images, kernels::kernel_isa(), repeats);
    int64_t side = 64;  // 256 x 256 input, stem stride 4
    for (int stage = 0; stage < 4; ++stage, side /= 2)
      bench_stage(images, side, arch.dims[stage], repeats);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_kernels: %s\n", e.what());
    return 1;
  }
  return 0;
}
