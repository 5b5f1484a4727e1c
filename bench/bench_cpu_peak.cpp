// This CPU's fp32 multiply-add ceiling: GFLOP/s of independent FMA chains held in registers,
// with AVX-512 (16 lanes) and AVX2 (8 lanes), on `--threads` threads at once (a core's
// clock drops as more cores run wide vector code). engine_vs_reference.py divides each
// forward pass's GFLOP/s by it, so a speed ratio can be read against what the hardware
// allows. Hand-written: it measures this machine, which no library reports.
//
//   bench_cpu_peak [--threads N] [--seconds S] [--json]
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr int kChains = 12;  // > FMA latency (4) x FMA ports (2): the ports never wait

// Each runs `iterations` x kChains FMAs and returns a sum, so that nothing is optimised away.
// Chains start from different values: identical ones were merged into one by the compiler.
// (Two functions, not a template: a target attribute does not reach lambdas or templates.)
__attribute__((target("avx512f"))) float avx512_chains(int64_t iterations) {
  __m512 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(0.001f * static_cast<float>(i + 1));
  const __m512 scale = _mm512_set1_ps(0.999999f), shift = _mm512_set1_ps(1e-7f);
  for (int64_t n = 0; n < iterations; ++n)
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_fmadd_ps(acc[i], scale, shift);
  for (int i = 1; i < kChains; ++i) acc[0] = _mm512_add_ps(acc[0], acc[i]);
  return _mm512_cvtss_f32(acc[0]);
}

__attribute__((target("avx2,fma"))) float avx2_chains(int64_t iterations) {
  __m256 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_ps(0.001f * static_cast<float>(i + 1));
  const __m256 scale = _mm256_set1_ps(0.999999f), shift = _mm256_set1_ps(1e-7f);
  for (int64_t n = 0; n < iterations; ++n)
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], scale, shift);
  for (int i = 1; i < kChains; ++i) acc[0] = _mm256_add_ps(acc[0], acc[i]);
  return _mm256_cvtss_f32(acc[0]);
}

// Per-thread GFLOP/s, `threads` running at once; the median of 5 rounds of `seconds` / 5.
double peak_per_thread(float (*chains)(int64_t), int lanes, int threads, double seconds) {
  // Calibrate: iterations for about seconds / 5 on one thread.
  int64_t iterations = 1 << 20;
  for (;;) {
    const auto start = std::chrono::steady_clock::now();
    volatile float sink = chains(iterations);
    (void)sink;
    const double t =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (t > 0.02) {
      iterations = static_cast<int64_t>(iterations * (seconds / 5) / t) + 1;
      break;
    }
    iterations *= 4;
  }
  std::vector<double> rounds;
  for (int round = 0; round < 5; ++round) {
    std::vector<double> rates(threads);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        const auto start = std::chrono::steady_clock::now();
        volatile float sink = chains(iterations);
        (void)sink;
        const double s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        rates[t] = 2.0 * lanes * kChains * static_cast<double>(iterations) / s / 1e9;
      });
    for (auto& th : pool) th.join();
    double sum = 0;
    for (double r : rates) sum += r;
    rounds.push_back(sum / threads);
  }
  std::sort(rounds.begin(), rounds.end());
  return rounds[2];
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1;
  double seconds = 1.0;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--threads" && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if (arg == "--seconds" && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else if (arg == "--json") {
      json = true;
    } else {
      std::fprintf(stderr, "usage: bench_cpu_peak [--threads N] [--seconds S] [--json]\n");
      return 2;
    }
  }
  if (threads < 1 || threads > 1024 || !(seconds > 0 && seconds < 600)) {
    std::fprintf(stderr, "bench_cpu_peak: --threads must be 1..1024 and --seconds 0..600\n");
    return 2;
  }
  __builtin_cpu_init();
  const bool has512 = __builtin_cpu_supports("avx512f");
  const bool has2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const double avx512 = has512 ? peak_per_thread(avx512_chains, 16, threads, seconds) : 0;
  const double avx2 = has2 ? peak_per_thread(avx2_chains, 8, threads, seconds) : 0;
  auto field = [](double v) { return v > 0 ? std::to_string(v) : std::string("null"); };
  if (json) {
    std::printf(
        "{\"threads\": %d, \"avx512_gflops_per_thread\": %s, "
        "\"avx2_gflops_per_thread\": %s}\n",
        threads, field(avx512).c_str(), field(avx2).c_str());
  } else {
    std::printf("fp32 FMA peak, %d thread(s) at once, GFLOP/s per thread: AVX-512 %s, AVX2 %s\n",
                threads, has512 ? std::to_string(avx512).c_str() : "n/a",
                has2 ? std::to_string(avx2).c_str() : "n/a");
  }
  return 0;
}
