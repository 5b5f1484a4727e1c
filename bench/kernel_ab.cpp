// The A/B harness behind bench/kernel_ab.sh (built by that script, not by CMake): one ISA's
// CPU kernels from two source trees, A and B, compiled into namespaces of their own
// (CNP_AB_A, CNP_AB_B), run on the same data in alternation, one backbone block per stage as
// the fused path runs it on one thread (depthwise, 1x1 up with ReLU, 1x1 down with the
// residual, tile by tile), then the soft-argmax decoder.
//
// Why pairs: on a shared machine the speed of a whole run moves by 30% from one minute to the
// next, so two runs of bench_kernels cannot tell a 5% change. Here each measurement takes a
// few milliseconds and A and B alternate (order swapped every pair), so a pair sees the same
// machine; the median of the pairs' time ratios is what the script prints, with its quartiles.
// It also prints the largest difference between A's and B's outputs: a change meant to be
// exact must show 0.
//
//   kernel_ab [--pairs 21] [--images 8] [--channels 48,96,192,384] [--dw-kernel 7|3]
//             [--expect-identical]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "model/inference_kernels.h"

#if !defined(CNP_AB_A) || !defined(CNP_AB_B)
#error "kernel_ab.sh defines CNP_AB_A and CNP_AB_B, the namespaces of the two builds"
#endif

#define CNP_AB_DECLARE(NS)                                                                         \
  namespace cnp::model::kernels::NS {                                                              \
  void depthwise_conv_nhwc(const float*, const float*, const float*, float*, int64_t, int64_t,     \
                           int64_t, int, bool, int64_t, int64_t);                                  \
  void pack_gemm_weights(const float*, int64_t, int64_t, float*);                                  \
  void gemm_bias(const float*, int64_t, const float*, int64_t, const float*, float*, const float*, \
                 bool, int64_t, int64_t);                                                          \
  void soft_argmax_nhwc(const float*, int64_t, int64_t, int64_t, int64_t, bool, float*, int64_t,   \
                        int64_t);                                                                  \
  }
CNP_AB_DECLARE(CNP_AB_A)
CNP_AB_DECLARE(CNP_AB_B)

namespace {

namespace kernels = cnp::model::kernels;
using Clock = std::chrono::steady_clock;

// One build's entry points.
struct Build {
  decltype(&kernels::CNP_AB_A::depthwise_conv_nhwc) depthwise;
  decltype(&kernels::CNP_AB_A::pack_gemm_weights) pack;
  decltype(&kernels::CNP_AB_A::gemm_bias) gemm;
  decltype(&kernels::CNP_AB_A::soft_argmax_nhwc) decode;
};
const Build kBuilds[2] = {
    {kernels::CNP_AB_A::depthwise_conv_nhwc, kernels::CNP_AB_A::pack_gemm_weights,
     kernels::CNP_AB_A::gemm_bias, kernels::CNP_AB_A::soft_argmax_nhwc},
    {kernels::CNP_AB_B::depthwise_conv_nhwc, kernels::CNP_AB_B::pack_gemm_weights,
     kernels::CNP_AB_B::gemm_bias, kernels::CNP_AB_B::soft_argmax_nhwc}};

double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5)];
}

// `pairs` timings of run(0) (A) and run(1) (B) back to back, the order swapped every pair,
// after one warm-up run of each; run(b) returns seconds.
struct Pairs {
  std::vector<double> ratio, time_a, time_b;  // ratio = time A / time B: B's speed against A's
};
template <class Run>
Pairs time_pairs(int pairs, const Run& run) {
  run(0);
  run(1);
  Pairs out;
  for (int p = 0; p < pairs; ++p) {
    double ta, tb;
    if (p % 2) {
      tb = run(1);
      ta = run(0);
    } else {
      ta = run(0);
      tb = run(1);
    }
    out.ratio.push_back(ta / tb);
    out.time_a.push_back(ta);
    out.time_b.push_back(tb);
  }
  return out;
}

// One line: A's and B's rates (work / median time, in `unit`), the ratio's median and
// quartiles, and the largest |B - A| over the outputs. Returns whether they are bit-identical
// (a NaN on either side counts as a difference).
bool report(const char* label, double work, const char* unit, const Pairs& pairs,
            const std::vector<float>& out_a, const std::vector<float>& out_b) {
  double max_diff = 0;
  for (size_t i = 0; i < out_a.size(); ++i) {
    const double d = std::fabs(static_cast<double>(out_a[i]) - out_b[i]);
    if (!(d <= max_diff)) max_diff = d;
  }
  std::printf(
      "%s  A %6.1f  B %6.1f %s  B speed / A: median %.3f (quartiles %.3f-%.3f)  max |B-A| "
      "%.3g\n",
      label, work / quantile(pairs.time_a, 0.5), work / quantile(pairs.time_b, 0.5), unit,
      quantile(pairs.ratio, 0.5), quantile(pairs.ratio, 0.25), quantile(pairs.ratio, 0.75),
      max_diff);
  return max_diff == 0 &&
         std::memcmp(out_a.data(), out_b.data(), out_a.size() * sizeof(float)) == 0;
}

struct Options {
  int pairs = 21, images = 8;
  std::vector<int64_t> channels{48, 96, 192, 384};  // ConvNeXtPose-S (M and L share them)
  int dw_kernel = 7;                                // the head's depthwise convs are 3 x 3
  bool expect_identical = false;
};

// One stage's block, each layer measured in `pairs` alternating pairs. Returns false where A's
// and B's outputs differ.
bool compare_stage(const Options& opt, int stage, int64_t side, int64_t c) {
  const int64_t hidden = 4 * c, rows = opt.images * side, pixels = rows * side;
  // The tiles OptimizedNetwork::fused_rows cuts on one thread: about fused_tile_rows rows,
  // within a row of each other (parallel_parts).
  const int64_t tile_rows = kernels::fused_tile_rows(rows, side, 1),
                tiles = (rows + tile_rows - 1) / tile_rows;
  std::mt19937 rng(static_cast<unsigned>(1 + stage));
  std::uniform_real_distribution<float> uniform(-0.1f, 0.1f);
  auto random = [&](int64_t n) {
    std::vector<float> v(n);
    for (float& x : v) x = uniform(rng);
    return v;
  };
  const auto x = random(pixels * c), dw_weight = random(opt.dw_kernel * opt.dw_kernel * c),
             dw_bias = random(c);
  const auto w1 = random(hidden * c), b1 = random(hidden), w2 = random(c * hidden), b2 = random(c);
  // Per build: its packed weights and whole-stage outputs (the comparison, untimed). The timed
  // runs of both write to one set of tile scratch (as the fused path has it) and one output:
  // with separate buffers, identical code measured up to 1.36x apart for a memory-bound 3 x 3
  // depthwise, by where its buffers happened to lie.
  struct Buffers {
    std::vector<float> packed1, packed2, dw_all, hidden_all, out_all;
  } buf[2];
  std::vector<float> dw_tile(tile_rows * side * c), hidden_tile(tile_rows * side * hidden),
      out(pixels * c);
  for (int b = 0; b < 2; ++b) {
    // Panels are at most 32 wide in either ISA's layout: this size holds both.
    buf[b].packed1.assign((hidden + 31) / 32 * 32 * c, 0.0f);
    buf[b].packed2.assign((c + 31) / 32 * 32 * hidden, 0.0f);
    kBuilds[b].pack(w1.data(), hidden, c, buf[b].packed1.data());
    kBuilds[b].pack(w2.data(), c, hidden, buf[b].packed2.data());
  }
  // Layer `layer` over all tiles through build `b`, into the tile scratch, or into whole-stage
  // buffers where `all`.
  auto run = [&](int b, int layer, bool all) {
    const Build& k = kBuilds[b];
    Buffers& o = buf[b];
    const auto start = Clock::now();
    for (int64_t t = 0; t < tiles; ++t) {
      const int64_t row = t * rows / tiles, end = (t + 1) * rows / tiles, n = (end - row) * side,
                    first = row * side;
      float* dw_out = all ? o.dw_all.data() + first * c : dw_tile.data();
      float* hidden_out = all ? o.hidden_all.data() + first * hidden : hidden_tile.data();
      float* block_out = (all ? o.out_all.data() : out.data()) + first * c;
      if (layer == 0)
        k.depthwise(x.data(), dw_weight.data(), dw_bias.data(), dw_out, side, side, c,
                    opt.dw_kernel, false, row, end);
      else if (layer == 1)
        k.gemm(dw_out, c, o.packed1.data(), hidden, b1.data(), hidden_out, nullptr, true, 0, n);
      else
        k.gemm(hidden_out, hidden, o.packed2.data(), c, b2.data(), block_out, x.data() + first * c,
               false, 0, n);
    }
    return std::chrono::duration<double>(Clock::now() - start).count();
  };
  // The comparison: the whole block through each build.
  for (int b = 0; b < 2; ++b) {
    buf[b].dw_all.assign(pixels * c, 0.0f);
    buf[b].hidden_all.assign(pixels * hidden, 0.0f);
    buf[b].out_all.assign(pixels * c, 0.0f);
    for (int layer = 0; layer < 3; ++layer) run(b, layer, true);
  }
  static const char* const kNames[3] = {"depthwise", "1x1 up", "1x1 down"};
  const double flop[3] = {2.0 * pixels * c * opt.dw_kernel * opt.dw_kernel,
                          2.0 * pixels * c * hidden, 2.0 * pixels * c * hidden};
  bool identical = true;
  std::printf("stage %d  %3lld x %-3lld %4lld ch, %lld tiles of <= %lld px\n", stage,
              static_cast<long long>(side), static_cast<long long>(side), static_cast<long long>(c),
              static_cast<long long>(tiles),
              static_cast<long long>((rows + tiles - 1) / tiles * side));
  for (int layer = 0; layer < 3; ++layer) {
    const Pairs pairs = time_pairs(opt.pairs, [&](int b) { return run(b, layer, false); });
    const std::vector<float>& out_a = layer == 0   ? buf[0].dw_all
                                      : layer == 1 ? buf[0].hidden_all
                                                   : buf[0].out_all;
    const std::vector<float>& out_b = layer == 0   ? buf[1].dw_all
                                      : layer == 1 ? buf[1].hidden_all
                                                   : buf[1].out_all;
    char label[32];
    std::snprintf(label, sizeof label, "  %-9s", kNames[layer]);
    identical = report(label, flop[layer] / 1e9, "GFLOP/s", pairs, out_a, out_b) && identical;
  }
  return identical;
}

// The decoder on one batch of logits, ConvNeXtPose's 18 joints: M's and L's shape (64 depth
// bins on a 32 x 32 grid, upsampled to 64 x 64 on the fly) and XS's and S's (32 bins, 32 x 32).
// Returns false where A's and B's coordinates differ.
bool compare_decoder(const Options& opt, int64_t depth, bool upsample) {
  const int64_t joints = 18, side = 32, items = opt.images * joints;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> logits(opt.images * side * side * joints * depth);
  for (float& v : logits) v = normal(rng);
  std::vector<float> coords[2] = {std::vector<float>(items * 3), std::vector<float>(items * 3)};
  auto run = [&](int b) {
    const auto start = Clock::now();
    kBuilds[b].decode(logits.data(), joints, depth, side, side, upsample, coords[b].data(), 0,
                      items);
    return std::chrono::duration<double>(Clock::now() - start).count();
  };
  const Pairs pairs = time_pairs(opt.pairs, run);
  const int64_t out_side = upsample ? 2 * side : side;
  char label[64];
  std::snprintf(label, sizeof label, "decoder  %lld x %lld x %lld per joint",
                static_cast<long long>(depth), static_cast<long long>(out_side),
                static_cast<long long>(out_side));
  return report(label, items * depth * out_side * out_side / 1e6, "Mvoxel/s", pairs, coords[0],
                coords[1]);
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--pairs" && i + 1 < argc) {
      opt.pairs = std::atoi(argv[++i]);
    } else if (arg == "--images" && i + 1 < argc) {
      opt.images = std::atoi(argv[++i]);
    } else if (arg == "--channels" && i + 1 < argc) {
      opt.channels.clear();
      for (const char* p = argv[++i]; *p;) {
        char* end = nullptr;
        opt.channels.push_back(std::strtoll(p, &end, 10));
        if (end == p) break;
        p = *end == ',' ? end + 1 : end;
      }
    } else if (arg == "--dw-kernel" && i + 1 < argc) {
      opt.dw_kernel = std::atoi(argv[++i]);
    } else if (arg == "--expect-identical") {
      opt.expect_identical = true;
    } else {
      std::fprintf(stderr,
                   "usage: kernel_ab [--pairs 21] [--images 8] [--channels 48,96,192,384] "
                   "[--dw-kernel 7|3] [--expect-identical]\n");
      return 2;
    }
  }
  if (opt.pairs < 1 || opt.pairs > 1000 || opt.images < 1 || opt.images > 64 ||
      (opt.dw_kernel != 3 && opt.dw_kernel != 7) || opt.channels.size() != 4 ||
      std::any_of(opt.channels.begin(), opt.channels.end(),
                  [](int64_t c) { return c < 1 || c > 4096; })) {
    std::fprintf(stderr,
                 "kernel_ab: --pairs must be 1..1000, --images 1..64, --dw-kernel 7 or 3, "
                 "--channels four counts of 1..4096\n");
    return 2;
  }
  std::printf("%d images, one thread, %d pairs in alternating order; medians\n", opt.images,
              opt.pairs);
  bool identical = true;
  int64_t side = 64;  // 256 x 256 input, stem stride 4
  for (int stage = 0; stage < 4; ++stage, side /= 2)
    identical = compare_stage(opt, stage, side, opt.channels[stage]) && identical;
  identical = compare_decoder(opt, 64, true) && identical;
  identical = compare_decoder(opt, 32, false) && identical;
  if (opt.expect_identical && !identical) {
    std::fprintf(stderr, "kernel_ab: A's and B's outputs differ (--expect-identical)\n");
    return 1;
  }
  return 0;
}
